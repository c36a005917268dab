"""Inputs generated from a model's declared input specs: tracing examples, random calibration and
held-out data. Used by model building (BN recalibration), the suite check and calibration alike."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from qbench.suite.schema import InputSpec

if TYPE_CHECKING:
    import torch

Batch = tuple  # a tuple of tensors, one per model input


def random_inputs(specs: Sequence[InputSpec], count: int, seed: int) -> list[Batch]:
    import torch

    gen = torch.Generator().manual_seed(seed)
    return [tuple(random_tensor(s, gen) for s in specs) for _ in range(count)]


def random_tensor(spec: InputSpec, gen) -> "torch.Tensor":
    import torch

    dtype = getattr(torch, spec.dtype)
    if dtype.is_floating_point:
        t = torch.randn(spec.shape, generator=gen)
        if spec.range is not None:
            lo, hi = spec.range
            t = torch.rand(spec.shape, generator=gen) * (hi - lo) + lo
        return t.to(dtype)
    if dtype == torch.bool:
        return torch.rand(spec.shape, generator=gen) > 0.5
    lo, hi = spec.range if spec.range is not None else (0, 100)
    return torch.randint(int(lo), int(hi), spec.shape, generator=gen, dtype=dtype)


def example_inputs(specs: Sequence[InputSpec]) -> Batch:
    """Deterministic example inputs used for tracing/export."""
    return random_inputs(specs, 1, seed=0)[0]
