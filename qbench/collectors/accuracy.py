"""Task accuracy of a cell on a dataset's eval split: top-1/top-5 for classifiers with integer labels,
or the user's `metric: python:FILE.py:FN` called as FN(outputs, labels) -> float.

`run` executes one fixed-size batch (the exported .pte through executorch.runtime, or the eager
model for the eager reference); outputs of the padding in the last batch are dropped.
"""

from __future__ import annotations

import math
from typing import Callable

from qbench.errors import CellError


def score(run: Callable[[tuple], object], data, batch: int, *, model: str, metric=None,
          metric_ref: str | None = None) -> dict | None:
    """None when there is nothing to score against (no labels and no metric)."""
    import torch

    from qbench.collectors.numerics import first_output
    from qbench.datasets.batches import fixed_batches

    if data.labels is None and metric is None:
        return None
    if metric is None:
        _check_class_labels(data, model)
    outputs = []
    with torch.no_grad():
        for inputs, valid in fixed_batches(data, batch):
            outputs.append(first_output(run(inputs))[:valid].detach().float())
    out = torch.cat(outputs)
    result = {"samples": len(data), "top1": None, "top5": None, "metric": None, "metric_name": None}
    if metric is not None:
        result["metric"] = _call_metric(metric, metric_ref, out, data, model)
        result["metric_name"] = metric_ref
        return result
    classes = _classes(out, data, model)
    labels = data.labels.long()
    result["top1"] = (out.argmax(dim=1) == labels).float().mean().item()
    if classes > 5:  # top-5 of five classes or fewer is always 1
        top5 = out.topk(5, dim=1).indices
        result["top5"] = (top5 == labels[:, None]).any(dim=1).float().mean().item()
    return result


def _check_class_labels(data, model: str) -> None:
    if not data.has_class_labels:
        raise CellError("accuracy", f"dataset {data.name!r}: labels have shape {list(data.labels.shape)} and dtype "
                                    f"{str(data.labels.dtype).replace('torch.', '')}; top-1 needs one integer class "
                                    f"per sample: give model {model!r} a `metric: python:FILE.py:FN`")


def _classes(out, data, model: str) -> int:
    if out.dim() != 2 or out.shape[1] < 2:
        raise CellError("accuracy", f"dataset {data.name!r} has class labels, but model {model!r} outputs shape "
                                    f"{list(out.shape[1:])} per sample, not one score per class: "
                                    "give the model a `metric: python:FILE.py:FN`")
    classes = int(out.shape[1])
    lo, hi = int(data.labels.min()), int(data.labels.max())
    if lo < 0 or hi >= classes:
        raise CellError("accuracy", f"dataset {data.name!r}: labels go from {lo} to {hi}, but model {model!r} "
                                    f"outputs {classes} classes (labels must be 0..{classes - 1})")
    return classes


def _call_metric(metric, ref, out, data, model: str) -> float:
    where = f"(model {model!r}, dataset {data.name!r})"
    try:
        value = metric(out, data.labels)
    except Exception as exc:
        text = str(exc).strip().splitlines()
        raise CellError("accuracy", f"metric {ref} raised {type(exc).__name__}: {text[0] if text else ''} {where}"
                        .replace(":  (", ": (")) from exc
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise CellError("accuracy", f"metric {ref} returned {type(value).__name__}, not a number {where}") from None
    if not math.isfinite(value):
        raise CellError("accuracy", f"metric {ref} returned {value} {where}")
    return value
