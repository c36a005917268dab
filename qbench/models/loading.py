"""Build a suite's model: source -> fresh fp32 module, optional state_dict, eval mode."""

from __future__ import annotations

from pathlib import Path

from qbench.suite.schema import ModelSpec


INIT_SEED = 0


class BuiltModels:
    """The fp32 models of one run, each built at most once (the suite check's preflight and every
    recipe of that model share it). Consumers must not mutate a model: recipes export a deep copy."""

    def __init__(self):
        self._built: dict[str, object] = {}

    def get(self, spec: ModelSpec):
        if spec.name not in self._built:
            self._built[spec.name] = build_model(spec)
        return self._built[spec.name]

    def __contains__(self, spec: ModelSpec) -> bool:
        return spec.name in self._built

    def clear(self) -> None:
        self._built.clear()


def build_model(spec: ModelSpec):
    import torch

    # Seeded, without disturbing the caller's random stream: a random-weight architecture (or a
    # factory that initialises randomly) is then the same network in every build, so fp32 and int8
    # cells, cached artifacts and reruns all measure one model.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(INIT_SEED)
        return _build(spec)


def _build(spec: ModelSpec):
    import torch

    from qbench.models import SOURCES, split_source

    kind, ref = split_source(spec.source)
    model = SOURCES.get(kind).build(ref)
    if spec.weights:
        state = torch.load(Path(spec.weights).expanduser(), map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    if isinstance(model, torch.nn.Module) and not isinstance(model, torch.fx.GraphModule):
        if needs_bn_recalibration(spec):
            recalibrate_batch_norm(model, spec)  # train-mode passes: dropout draws from the stream
        model.eval()
    return model


# Sources that give architectures with random weights (no download here).
RANDOM_WEIGHT_SOURCES = ("torchvision", "timm")


def needs_bn_recalibration(spec: ModelSpec) -> bool:
    from qbench.models import split_source

    return spec.weights is None and split_source(spec.source)[0] in RANDOM_WEIGHT_SOURCES


def recalibrate_batch_norm(model, spec: ModelSpec, batches: int = 8) -> None:
    """Give a random-weight model the batch-norm statistics of its own activations.

    Freshly initialised BN layers assume mean 0 / variance 1, which random weights do not produce:
    a random mobilenet_v2 then outputs ~1e-9 and any int8 numerics against it are meaningless.
    A few seeded forward passes in train mode (cumulative averages) fix the statistics, so the
    activations have the ranges a trained network would. Latency is unaffected.
    """
    import torch

    from qbench.inputs import random_inputs

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the passes below
    model.train()
    with torch.no_grad():
        for batch in random_inputs(spec.inputs, batches, seed=4321):
            model(*batch)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum  # the exported graph (and QAT's conv-bn fusion) expect the usual value
    model.eval()


def model_fingerprint(spec: ModelSpec) -> dict:
    """What identifies a model's computation for the artifact cache."""
    from qbench.models import SOURCES, split_source
    from qbench.hashing import file_sha256

    kind, ref = split_source(spec.source)
    weights = None
    if spec.weights:
        weights = file_sha256(Path(spec.weights).expanduser())
    return {
        "source": SOURCES.get(kind).fingerprint(ref),
        "weights": weights,
        "inputs": [s.model_dump() for s in spec.inputs],
        "task": spec.task,
        "bn_recalibrated": needs_bn_recalibration(spec),
    }
