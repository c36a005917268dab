"""Structured outputs: leaves named by path in torch.export's order; per-leaf numerics; the `output:`
key; model sources that would download weights are stopped at the suite check."""

from __future__ import annotations

import socket

import pytest
import torch

from qbench.collectors.numerics import compare_leaves
from qbench.errors import SuiteError
from qbench.models.outputs import headline_name, output_leaves, select_output
from tests.helpers import write_suite

NESTED = '''
import torch


class Nested(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        y = self.lin(x)
        return {"out": y, "extras": (y.sum(1), None, {"logits": y * 2})}


def nested():
    return Nested()


def downloads_backbone():
    import torchvision

    # weights=None but the default ImageNet backbone: torchvision fetches it through torch.hub
    return torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None)


def fetches_with_urllib():
    import urllib.request

    urllib.request.urlopen("https://example.com/weights.pt", timeout=5)
'''


class Nested(torch.nn.Module):
    def forward(self, x):
        return {"out": x * 2, "extras": (x.sum(1), None, {"logits": x + 1})}


def test_leaves_are_named_by_path_in_the_exported_programs_order():
    x = torch.randn(2, 3)
    leaves = output_leaves(Nested()(x))
    assert [n for n, _ in leaves] == ["out", "extras.0", "extras.1", "extras.2.logits"]
    assert leaves[2][1] is None
    program = torch.export.export(Nested(), (x,))
    assert program.call_spec.out_spec.num_leaves == len(leaves)  # leaf i is the program's output i
    flat = torch.utils._pytree.tree_leaves(program.module()(x))
    assert [o is None for o in flat] == [v is None for _, v in leaves]
    assert all(torch.equal(a, b) for a, (_, b) in zip(flat, leaves) if b is not None)
    assert [n for n, _ in output_leaves(torch.ones(1))] == ["output"]
    assert [n for n, _ in output_leaves((torch.ones(1), [torch.ones(1)]))] == ["0", "1.0"]


def test_headline_is_the_chosen_tensor_leaf_or_the_first():
    out = Nested()(torch.randn(2, 3))
    leaves = output_leaves(out)
    assert headline_name(leaves, None) == "out"
    assert torch.equal(select_output(out, "extras.2.logits"), out["extras"][2]["logits"])
    with pytest.raises(ValueError, match=r"no tensor output 'aux'; its outputs are: out, extras.0, extras.2.logits"):
        headline_name(leaves, "aux")


def test_every_leaf_is_compared_and_none_leaves_are_skipped():
    gen = torch.Generator().manual_seed(0)
    refs = [[torch.randn(1, 10, generator=gen), None, torch.randn(1, 2, 4, 4, generator=gen)] for _ in range(3)]
    outs = [[r[0], None, r[2] + 0.01] for r in refs]
    figures = compare_leaves(refs, outs, ["logits", "none", "mask"])
    assert set(figures) == {"logits", "mask"}
    assert figures["logits"]["sqnr_db"] == float("inf") and figures["logits"]["top1_agreement"] == 1.0
    assert 20 < figures["mask"]["sqnr_db"] < 60 and figures["mask"]["top1_agreement"] is None
    with pytest.raises(ValueError, match="the program returns 2 outputs, the model 3"):
        compare_leaves(refs, [o[:2] for o in outs], ["logits", "none", "mask"])


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """The network fails here anyway; stub it so the test says so whatever the machine, and give
    torch.hub an empty cache so no previously downloaded checkpoint is found."""
    def no_network(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def check(folder, models: str, **kw):
    from qbench.pipeline.check import check_suite
    from qbench.suite.loader import load_suite

    (folder / "nested.py").write_text(NESTED)
    path = write_suite(folder, f"""
        name: t
        models:
        {models}
        recipes: [{{name: fp32, kind: fp32}}]
        """)
    return check_suite(load_suite(path), **kw)


DOWNLOAD = "this source tries to download weights; qbench runs offline — pass `weights:` a local state_dict"


def test_a_source_that_downloads_fails_the_check_with_the_offline_line(tmp_path, offline):
    models = """
          - {name: hub, source: "python:nested.py:downloads_backbone", inputs: [{shape: [1, 3, 32, 32]}]}
          - {name: url, source: "python:nested.py:fetches_with_urllib", inputs: [{shape: [1, 4]}]}
    """
    with pytest.raises(SuiteError) as err:
        check(tmp_path, models)
    lines = str(err.value).splitlines()[1:]
    assert len(lines) == 2
    assert lines[0].endswith(f"/suite.yaml:4: models[0].source: {DOWNLOAD}")
    assert lines[1].endswith(f"/suite.yaml:5: models[1].source: {DOWNLOAD}")


def test_torchvision_segmentation_builds_offline_with_a_random_backbone(tmp_path, offline):
    models = """
          - {name: seg, source: "torchvision:lraspp_mobilenet_v3_large", inputs: [{shape: [1, 3, 32, 32]}]}
          - {name: nested, source: "python:nested.py:nested", inputs: [{shape: [2, 4]}], output: extras.2.logits}
    """
    checked = check(tmp_path, models)
    assert [m.output for m in checked.suite.models] == [None, "extras.2.logits"]


def test_output_naming_no_leaf_is_a_suite_error(tmp_path):
    models = """
          - {name: nested, source: "python:nested.py:nested", inputs: [{shape: [2, 4]}], output: aux}
    """
    with pytest.raises(SuiteError) as err:
        check(tmp_path, models)
    assert str(err.value).splitlines()[1].endswith(
        "/suite.yaml:4: models[0].output: model 'nested': the model has no tensor output 'aux'; "
        "its outputs are: out, extras.0, extras.2.logits")


def test_the_eager_runner_reports_every_leaf_of_a_nested_output(tmp_path):
    import json
    import subprocess
    import sys

    from qbench.runners import eager_runner

    x = torch.randn(2, 3)
    torch.export.save(torch.export.export(Nested(), (x,)), str(tmp_path / "m.pt2"))
    proc = subprocess.run([sys.executable, eager_runner.__file__, "--model", str(tmp_path / "m.pt2"), "--warmup", "0",
                           "--warmup-seconds", "0", "--iterations", "1", "--min-seconds", "0", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-1000:]
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["outputs"] == [{"dtype": "float32", "shape": [2, 3]}, {"dtype": "float32", "shape": [2]},
                                 {"dtype": "none", "shape": []}, {"dtype": "float32", "shape": [2, 3]}]


def test_a_runners_outputs_file_splits_into_named_leaves():
    from qbench.models.outputs import describe, read_runner_outputs

    out = {"out": torch.randn(1, 2, 3), "extras": (torch.arange(4), None)}
    leaves = output_leaves(out)
    blob = b"".join(v.contiguous().numpy().tobytes() for _, v in leaves if v is not None)
    reported = [{"dtype": d["dtype"], "shape": d["shape"]} for d in describe(leaves)]  # as a runner reports
    read = read_runner_outputs(blob, reported)
    assert torch.equal(read[0], out["out"]) and torch.equal(read[1], out["extras"][0]) and read[2] is None
    with pytest.raises(ValueError, match="outputs file has"):
        read_runner_outputs(blob[:-4], reported)
