"""Model sources build real modules; their fingerprints follow their content."""

from __future__ import annotations

import sys

import pytest
import torch

from qbench.models import SOURCES, split_source
from qbench.models.loading import build_model, model_fingerprint
from qbench.suite.schema import ModelSpec


@pytest.fixture(autouse=True)
def _in_suite_dir(suite_dir, monkeypatch):
    monkeypatch.chdir(suite_dir)  # the loader resolves paths from the suite's folder; here it is cwd


def spec(source: str, **kw) -> ModelSpec:
    return ModelSpec(name="m", source=source, inputs=[{"shape": [1, 64]}], **kw)


def test_python_file_factory_and_weights(suite_dir):
    model = build_model(spec("python:models/tiny.py:tiny_mlp"))
    state = {k: torch.full_like(v, 0.5) for k, v in model.state_dict().items()}
    torch.save(state, suite_dir / "w.pt")
    loaded = build_model(spec("python:models/tiny.py:tiny_mlp", weights="w.pt"))
    assert all(torch.equal(v, state[k]) for k, v in loaded.state_dict().items())
    assert not loaded.training


def test_python_dotted_module_factory(suite_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(suite_dir))
    model = build_model(spec("python:models.tiny:tiny_mlp"))
    assert isinstance(model, torch.nn.Module)
    sys.modules.pop("models.tiny", None)


def test_pt2_program_source(suite_dir):
    model = build_model(spec("python:models/tiny.py:tiny_mlp"))
    x = torch.randn(1, 64)
    torch.export.save(torch.export.export(model, (x,)), str(suite_dir / "p.pt2"))
    from_pt2 = build_model(spec("pt2:p.pt2"))
    assert torch.allclose(from_pt2(x), model(x))


def test_fingerprint_changes_with_the_factory_file(suite_dir):
    before = model_fingerprint(spec("python:models/tiny.py:tiny_mlp"))
    (suite_dir / "models" / "tiny.py").write_text((suite_dir / "models" / "tiny.py").read_text() + "\n# changed\n")
    after = model_fingerprint(spec("python:models/tiny.py:tiny_mlp"))
    assert before["source"] != after["source"]


def test_torchvision_unknown_name_suggests(suite_dir):
    problem = SOURCES.get("torchvision").check("mobilenet_v9")
    assert problem.startswith("torchvision has no model 'mobilenet_v9' (did you mean: mobilenet_v2")


def test_timm_when_absent_or_present(suite_dir):
    problem = SOURCES.get("timm").check("resnet18")
    try:
        import timm  # noqa: F401
    except ImportError:
        assert problem == "timm is not installed (pip install timm)"
    else:
        assert problem is None


@pytest.mark.parametrize("bad", ["torchvision", "torchvision:", ":x"])
def test_split_source_rejects_malformed(bad):
    with pytest.raises(ValueError):
        split_source(bad)


def test_random_weight_architectures_are_the_same_network_on_every_build(suite_dir):
    tv = ModelSpec(name="m", source="torchvision:mobilenet_v3_small", inputs=[{"shape": [1, 3, 64, 64]}])
    torch.manual_seed(123)
    a = build_model(tv)
    after_build = torch.rand(1)
    b = build_model(tv)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name  # weights and recalibrated batch-norm statistics alike
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), after_build)  # the caller's random stream was left alone
