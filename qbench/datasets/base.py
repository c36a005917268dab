"""A loaded data set: input arrays (one per model input, first axis = sample) and optional labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from qbench.errors import CellError

if TYPE_CHECKING:
    import torch


@dataclass
class Dataset:
    name: str
    inputs: tuple["torch.Tensor", ...]
    labels: "torch.Tensor | None"

    def __len__(self) -> int:
        return int(self.inputs[0].shape[0])

    def take(self, indices: Sequence[int]) -> "Dataset":
        import torch

        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return Dataset(self.name, tuple(t[idx] for t in self.inputs),
                       None if self.labels is None else self.labels[idx])

    @property
    def has_class_labels(self) -> bool:
        """Labels that are class indices (one integer per sample): top-1/top-5 and cross-entropy apply."""
        import torch

        return self.labels is not None and self.labels.dim() == 1 and not torch.is_floating_point(self.labels) \
            and self.labels.dtype != torch.bool


def make_dataset(name: str, inputs, labels) -> Dataset:
    """Arrays/tensors from any source -> a checked Dataset (same sample count everywhere, not empty)."""
    import numpy as np
    import torch

    def tensor(x, what):
        try:
            return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(np.asarray(x)))
        except (TypeError, ValueError) as exc:
            raise CellError("dataset", f"dataset {name!r}: {what} is not an array: {exc}") from exc

    inputs = inputs if isinstance(inputs, (list, tuple)) else (inputs,)
    if not inputs:
        raise CellError("dataset", f"dataset {name!r} has no input arrays")
    tensors = tuple(tensor(x, f"input {i}") for i, x in enumerate(inputs))
    label_t = None if labels is None else tensor(labels, "labels")
    counts = {int(t.shape[0]) if t.dim() else 0 for t in tensors}
    if label_t is not None:
        counts.add(int(label_t.shape[0]) if label_t.dim() else 0)
    if len(counts) != 1:
        shapes = [list(t.shape) for t in tensors] + ([list(label_t.shape)] if label_t is not None else [])
        raise CellError("dataset", f"dataset {name!r}: inputs and labels differ in sample count (shapes {shapes})")
    if counts == {0}:
        raise CellError("dataset", f"dataset {name!r} has no samples")
    return Dataset(name, tensors, label_t)
