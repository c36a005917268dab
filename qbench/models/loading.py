"""Build a suite's model: source -> fresh fp32 module, optional state_dict, eval mode."""

from __future__ import annotations

from pathlib import Path

from qbench.suite.schema import ModelSpec


def build_model(spec: ModelSpec, base_dir: Path):
    import torch

    from qbench.models import SOURCES, split_source

    kind, ref = split_source(spec.source)
    model = SOURCES.get(kind).build(ref, base_dir)
    if spec.weights:
        path = Path(spec.weights) if Path(spec.weights).is_absolute() else base_dir / spec.weights
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    if isinstance(model, torch.nn.Module) and not isinstance(model, torch.fx.GraphModule):
        model.eval()
    return model


def model_fingerprint(spec: ModelSpec, base_dir: Path) -> dict:
    """What identifies a model's computation for the artifact cache."""
    from qbench.models import SOURCES, split_source
    from qbench.models.base import file_digest

    kind, ref = split_source(spec.source)
    weights = None
    if spec.weights:
        path = Path(spec.weights) if Path(spec.weights).is_absolute() else base_dir / spec.weights
        weights = file_digest(path)
    return {
        "source": SOURCES.get(kind).fingerprint(ref, base_dir),
        "weights": weights,
        "inputs": [s.model_dump() for s in spec.inputs],
        "task": spec.task,
    }
