"""The search behind the suggestion, in process on tiny models (bad_layer_model.py): two layers that
only matter together (pair_net), the headline leaf of a model returning a dict (dict_net), and a QAT
recipe."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import write_suite

HERE = Path(__file__).parent
SUITE = """
name: search
models:
  - {name: pairnet, source: "python:bad_layer_model.py:pair_net", inputs: [{shape: [4, 16]}], task: other}
  - {name: dictnet, source: "python:bad_layer_model.py:dict_net", inputs: [{shape: [4, 16]}], task: other, output: out}
calibration: {kind: random, samples: 8, seed: 1}
numerics: {samples: 4}
recipes:
  - {name: int8, kind: ptq, per_channel: true}
  # lr ~0: Adam's first steps move every weight by ~lr, and the fp32 outlier column (1e-5) times a
  # 1e4 activation would turn that into error; QAT fine-tunes the fp32 layers of a mixed recipe too
  - {name: qat, kind: qat, steps: 2, lr: 1.0e-9}
devices: [host]
"""


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    from qbench.pipeline.check import check_suite
    from qbench.suite.loader import load_suite

    root = tmp_path_factory.mktemp("search")
    shutil.copy(HERE / "bad_layer_model.py", root / "bad_layer_model.py")
    return check_suite(load_suite(write_suite(root, SUITE)), preflight=False)


def _analyze(checked, model: str, recipe: str, target: str, **kw) -> dict:
    from qbench.sensitivity.analysis import analyze, find_cell, open_cell
    from qbench.sensitivity.target import parse_target

    t = parse_target(target)
    spec, resolved = find_cell(checked, model, recipe)
    return analyze(open_cell(checked, spec, resolved, t), t, **kw)


def test_the_search_finds_two_layers_that_only_help_together(checked):
    """sqnr>=40: keeping `second` fp32 alone gives ~33 dB, `first` alone changes nothing at all (the
    other block's error dominates), so the one-at-a-time figures rank `first` level with harmless
    layers and the old greedy (only layers that helped alone, in rank order) stopped at [second],
    target not met. Re-evaluating the candidates on top of [second] finds `first`."""
    doc = _analyze(checked, "pairnet", "int8", "sqnr>=40", max_layers=4)
    layers = {r["module"]: r for r in doc["layers"]}
    full = doc["baseline"]["int8"]["sqnr_db"]
    assert full < 25
    assert layers["second"]["metric_if_fp32"] < 40 and layers["first"]["metric_if_fp32"] < full + 0.5
    helped_alone = [m for m, r in layers.items() if r["metric_if_fp32"] is not None and r["metric_if_fp32"] > full + 0.5]
    assert helped_alone == ["second"]  # what the one-at-a-time ranking sees
    s = doc["suggestion"]
    assert sorted(s["skip"]) == ["first", "second"] and s["met"] and s["predicted"]["sqnr_db"] >= 40
    assert [step["added"] for step in s["steps"]] == [["second"], ["first"]]
    assert all(len(step["tried"]) > 1 for step in s["steps"])  # each step re-evaluated several candidates


def test_role_groups_put_the_same_module_of_repeated_blocks_together():
    from qbench.sensitivity.analysis import role_groups

    modules = ["bert.embeddings", "bert.encoder.layer.0.attention.self", "bert.encoder.layer.0.output",
               "bert.encoder.layer.1.attention.self", "bert.encoder.layer.1.output", "pooler.dense"]
    assert role_groups(modules) == [
        {"group": "bert.encoder.layer.*.attention.self",
         "modules": ["bert.encoder.layer.0.attention.self", "bert.encoder.layer.1.attention.self"]},
        {"group": "bert.encoder.layer.*.output",
         "modules": ["bert.encoder.layer.0.output", "bert.encoder.layer.1.output"]},
    ]


def test_a_model_returning_a_dict_is_analysed_on_its_headline_output(checked):
    """`output: out` is the bad MLP's output (full int8 ~18 dB); the first leaf `aux` would have
    looked fine. Keeping `spiky` fp32 recovers the headline."""
    doc = _analyze(checked, "dictnet", "int8", "sqnr>=30", max_layers=1)
    assert doc["baseline"]["int8"]["sqnr_db"] < 25
    assert doc["suggestion"]["skip"] == ["spiky"] and doc["suggestion"]["met"]


def test_qat_recipes_get_per_layer_numerics_and_the_same_skip(checked):
    """QAT's converted graph is a PT2E graph: the debugger pairs its layers with fp32, and skip:
    keeps a layer out of fake-quant training as it keeps it out of PTQ."""
    doc = _analyze(checked, "dictnet", "qat", "sqnr>=30", max_layers=1)
    assert doc["recipe_kind"] == "qat"
    layers = {r["module"]: r for r in doc["layers"]}
    assert all(r["sqnr_db"] is not None for r in layers.values())
    assert layers["spiky"]["sqnr_db"] < layers["stem"]["sqnr_db"]
    assert doc["suggestion"]["skip"] == ["spiky"] and doc["suggestion"]["met"]
    assert "kind: qat" in doc["suggestion"]["recipe_yaml"]
