"""Build a suite's model: source -> fresh fp32 module, optional state_dict, eval mode."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from qbench.errors import CellError
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
    with no_downloads():
        model = SOURCES.get(kind).build(ref)
    if spec.weights:
        state = torch.load(Path(spec.weights).expanduser(), map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    if isinstance(model, torch.nn.Module) and not isinstance(model, torch.fx.GraphModule):
        if needs_bn_recalibration(spec):
            recalibrate_batch_norm(model, spec)  # train-mode passes: dropout draws from the stream
        model.eval()
    return model


DOWNLOAD_MESSAGE = "this source tries to download weights; qbench runs offline — pass `weights:` a local state_dict"


class DownloadAttempt(CellError):
    """A model source tried to fetch weights from the network while being built."""

    def __init__(self, cause: str = ""):
        super().__init__("model", DOWNLOAD_MESSAGE)
        self.cause = cause  # what was attempted (a URL, the network error)


@contextlib.contextmanager
def no_downloads():
    """Building a model never downloads: torch.hub's fetch (torchvision and timm weights) raises
    DownloadAttempt, Hugging Face is offline, and a network error from anything else (urllib in a
    factory) becomes DownloadAttempt too. Files already in torch.hub's cache still load."""
    import torch.hub

    def refuse(url, *args, **kwargs):
        raise DownloadAttempt(str(url))

    saved = torch.hub.download_url_to_file
    offline = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    torch.hub.download_url_to_file = refuse
    os.environ.update({k: "1" for k in offline})
    try:
        # what a builder prints ("Downloading: ...") goes to stderr: stdout carries `--json`
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except DownloadAttempt:
        raise
    except Exception as exc:
        if _is_network_error(exc):
            raise DownloadAttempt(f"{type(exc).__name__}: {exc}") from exc
        raise
    finally:
        torch.hub.download_url_to_file = saved
        for k, v in offline.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _is_network_error(exc: BaseException) -> bool:
    import socket
    import urllib.error

    seen = set()
    while exc is not None and id(exc) not in seen:  # the network error may be wrapped (requests, HF)
        seen.add(id(exc))
        if isinstance(exc, (urllib.error.URLError, socket.gaierror, socket.timeout, ConnectionError)):
            return True
        if type(exc).__name__ in ("OfflineModeIsEnabled", "ConnectionError", "ConnectTimeout"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


# Sources that give architectures with random weights (no download here).
RANDOM_WEIGHT_SOURCES = ("torchvision", "timm")


def needs_bn_recalibration(spec: ModelSpec) -> bool:
    from qbench.models import split_source

    return spec.weights is None and split_source(spec.source)[0] in RANDOM_WEIGHT_SOURCES


def recalibrate_batch_norm(model, spec: ModelSpec, batches: int = 8) -> None:
    """Give a random-weight model the batch-norm statistics of its own activations.

    Freshly initialised BN layers assume mean 0 / variance 1, which random weights do not produce:
    a random mobilenet_v2 then outputs ~1e-9 and any int8 numerics against it are meaningless.
    A few seeded forward passes fix the statistics, so the activations have the ranges a trained
    network would. Latency is unaffected.

    The model runs in eval mode, as the user runs it: only each BN layer normalizes with its batch's
    statistics (what train mode would do) and records them. Train mode itself would also switch
    every other module (dropout, a detector's training forward that wants targets) and refuse a BN
    input with one value per channel (a detector's 1×1 feature maps at batch 1).
    """
    import torch

    from qbench.inputs import random_inputs

    norms = [m for m in model.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return
    stats = {m: _BatchStats() for m in norms}
    hooks = [m.register_forward_hook(stats[m].hook) for m in norms]
    model.eval()
    try:
        with torch.no_grad():
            for batch in random_inputs(spec.inputs, batches, seed=4321):
                model(*batch)
    finally:
        for h in hooks:
            h.remove()
    for m, s in stats.items():
        s.store(m)


class _BatchStats:
    """One BN layer's per-channel statistics over the recalibration passes, as train mode with
    `momentum=None` keeps them: the average of each batch's mean and unbiased variance. A batch with
    one value per channel has no variance: its values are pooled across passes instead."""

    def __init__(self):
        self.means, self.variances, self.singles = [], [], []

    def hook(self, module, inputs, output):
        x = inputs[0]
        dims = [d for d in range(x.dim()) if d != 1]
        shape = [1, -1] + [1] * (x.dim() - 2)
        mean = x.mean(dims)
        if x.numel() // x.shape[1] > 1:
            self.means.append(mean)
            self.variances.append(x.var(dims, unbiased=True))
            centred = (x - mean.view(shape)) / (x.var(dims, unbiased=False) + module.eps).sqrt().view(shape)
        else:  # train mode's answer for one value: x - mean is 0
            self.singles.append(mean)
            centred = x * 0
        if module.affine:
            centred = centred * module.weight.view(shape) + module.bias.view(shape)
        return centred

    def store(self, m) -> None:
        import torch

        if self.means:
            mean, var, count = torch.stack(self.means).mean(0), torch.stack(self.variances).mean(0), len(self.means)
        elif len(self.singles) > 1:
            pooled = torch.stack(self.singles)
            mean, var, count = pooled.mean(0), pooled.var(0, unbiased=True), len(self.singles)
        else:
            return  # one value ever seen: no variance to learn; the initial statistics stay
        m.running_mean.copy_(mean)
        m.running_var.copy_(var)
        m.num_batches_tracked.fill_(count)


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
        "output": spec.output,
        "bn_recalibrated": needs_bn_recalibration(spec),
    }


def keyword_only_problem(model, name: str, inputs: int) -> str | None:
    """A forward() with required keyword-only arguments cannot be called with `inputs:`, which qbench
    passes positionally, in order (as torch.export and the .pte do): say so, and how to wrap it."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return None  # a builtin or C++ forward: the forward pass itself will say what is wrong
    required = [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if not required:
        return None
    args = ", ".join(f"x{i}" for i in range(inputs))
    passed = ", ".join(f"{k}={k}" for k in required)
    return (f"model {name!r}: forward() requires keyword-only argument(s) {', '.join(required)}, and qbench "
            f"passes `inputs:` positionally, in order: wrap it in a factory whose module takes them positionally "
            f"(and list them in `inputs:`), e.g. `def forward(self, {args}, {', '.join(required)}): return self.inner({args}, {passed})`")
