"""Deterministic, non-overlapping splits: one seeded shuffle, then train | calibration | eval cuts.

The record (sizes, seed, a hash of each split's indices) goes into every cell's `extra`, so two
runs can be shown to have scored the same samples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from qbench.datasets.base import Dataset
from qbench.errors import CellError

SPLITS = ("train", "calibration", "eval")


@dataclass
class Splits:
    train: Dataset
    calibration: Dataset | None
    eval: Dataset
    record: dict
    indices: dict[str, list[int]]  # positions in the loaded dataset, per split


def split_sizes(total: int, spec) -> dict[str, int]:
    sizes = {}
    for name in SPLITS:
        v = getattr(spec, name)
        sizes[name] = v if isinstance(v, int) else int(round(v * total))
    return sizes


def split_dataset(data: Dataset, spec, needs: tuple[str, ...] = ("eval",)) -> Splits:
    """Split `data` by the dataset spec's `splits` and `seed`; splits in `needs` must not be empty."""
    import torch

    total = len(data)
    sizes = split_sizes(total, spec.splits)
    described = ", ".join(f"{k} {v}" for k, v in sizes.items())
    if sum(sizes.values()) > total:
        raise CellError("dataset", f"dataset {spec.name!r}: splits ask for {sum(sizes.values())} samples "
                                   f"({described}), it has {total}")
    for name in needs:
        if sizes[name] == 0:
            raise CellError("dataset", f"dataset {spec.name!r}: split {name!r} is empty ({described} of {total} samples)")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(spec.seed)).tolist()
    cuts, start = {}, 0
    for name in SPLITS:
        cuts[name] = sorted(order[start:start + sizes[name]])
        start += sizes[name]
    record = {
        "name": spec.name, "kind": spec.kind, "seed": spec.seed, "total": total,
        "sizes": sizes,
        "indices_sha256": {k: hashlib.sha256(",".join(map(str, v)).encode()).hexdigest()[:16] for k, v in cuts.items()},
    }
    return Splits(train=data.take(cuts["train"]),
                  calibration=data.take(cuts["calibration"]) if cuts["calibration"] else None,
                  eval=data.take(cuts["eval"]), record=record, indices=cuts)
