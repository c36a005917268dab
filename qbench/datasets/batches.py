"""Samples -> the model's declared inputs: shape/dtype checks, fixed-size batches (the .pte's batch is
baked in at export) and shuffled training batches."""

from __future__ import annotations

import math
from typing import Iterator, Sequence

from qbench.datasets.base import Dataset
from qbench.errors import CellError


def fit_to_inputs(data: Dataset, specs: Sequence, model: str) -> Dataset:
    """Per-sample shapes must equal the declared shape without its batch axis; a sample with the same
    number of elements is reshaped (8×8 images into a flat MLP input); dtypes follow the declaration."""
    import torch

    if len(data.inputs) != len(specs):
        raise CellError("dataset", f"dataset {data.name!r} gives {len(data.inputs)} input array(s) per sample, "
                                   f"model {model!r} declares {len(specs)} input(s)")
    out = []
    for j, (t, spec) in enumerate(zip(data.inputs, specs)):
        want = list(spec.shape[1:])
        have = list(t.shape[1:])
        if have != want:
            if math.prod(have) != math.prod(want):
                raise CellError("dataset", f"dataset {data.name!r}: input {j} of a sample has shape {have}, "
                                           f"model {model!r} declares {spec.shape} (per sample {want})")
            t = t.reshape(t.shape[0], *want)
        out.append(t.to(getattr(torch, spec.dtype)).contiguous())
    return Dataset(data.name, tuple(out), data.labels)


def fixed_batches(data: Dataset, batch: int) -> list[tuple[tuple, int]]:
    """(inputs, valid) pairs of exactly `batch` samples; the last is padded by repeating the first
    samples, and only its first `valid` outputs count."""
    import torch

    n, out = len(data), []
    for start in range(0, n, batch):
        idx = [(start + k) % n for k in range(batch)]
        valid = min(batch, n - start)
        sel = torch.as_tensor(idx)
        out.append((tuple(t[sel] for t in data.inputs), valid))
    return out


def training_batches(data: Dataset, batch_size: int, generator) -> Iterator[tuple[tuple, "object"]]:
    """One shuffled epoch of (inputs, labels); a last batch smaller than half a batch is dropped
    (a batch of one breaks batch-norm statistics)."""
    import torch

    n = len(data)
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        sel = order[start:start + batch_size]
        if start and len(sel) < max(2, batch_size // 2):
            return
        yield tuple(t[sel] for t in data.inputs), (None if data.labels is None else data.labels[sel])
