"""The grid of cells (model × recipe × device × sweep point).

A sweep point (suite/sweep.py) is one value of each list-valued `threads`, `affinity` and `batch`;
a suite without lists has one point, unnamed, so its cells are model × recipe × device as always.
`batch` changes the program (one .pte per batch: a variant), threads and affinity only how it runs.

The order trials run in (interleaved across a device's cells, A B A B, so drift and heat do not favour
whichever recipe ran first; repeated and replaced until precise) is pipeline/adaptive.py's TrialPlan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qbench.pipeline.check import CheckedSuite, ResolvedRecipe
from qbench.suite import sweep
from qbench.suite.generation import model_points
from qbench.suite.schema import ModelSpec
from qbench.text import cell_label, safe


@dataclass(frozen=True, eq=False)
class Variant:
    """A (model, recipe[, batch]) pair: prepared once, measured on every device. Identity = the names
    (and the batch when the suite sweeps it)."""

    model: ModelSpec
    recipe: ResolvedRecipe
    batch: int | None = None  # swept batch only (then `model`'s inputs already carry it)
    generate: str = ""  # a swept `generate:` point's label (then `model.generate` holds single values)

    def _key(self):
        return (self.model.name, self.recipe.name, self.batch, self.generate)

    def __eq__(self, other):
        return isinstance(other, Variant) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    @property
    def label(self) -> str:
        point = " ".join(p for p in (f"batch={self.batch}" if self.batch is not None else "", self.generate) if p)
        return f"{safe(self.model.name)}/{safe(self.recipe.name)}" + (f" [{point}]" if point else "")


@dataclass(frozen=True)
class Cell:
    variant: Variant
    device: str
    sweep: str = ""  # the point's label, e.g. `threads=2 batch=4` ('' = nothing swept)
    threads: Any = None  # swept values (None: the device profile's or the suite's single value)
    affinity: Any = None  # a cluster name or a tuple of cores (hashable: cells key dicts)

    @property
    def label(self) -> str:
        return cell_label(self.variant.model.name, self.variant.recipe.name, self.device, self.sweep)


def with_batch(spec: ModelSpec, batch: int | None) -> ModelSpec:
    """The model spec whose inputs' first dimension is `batch` (as is for None)."""
    if batch is None:
        return spec
    inputs = [i.model_copy(update={"shape": [batch, *i.shape[1:]]}) for i in spec.inputs]
    return spec.model_copy(update={"inputs": inputs})


def variants(checked: CheckedSuite) -> list[Variant]:
    bench = checked.suite.benchmark
    batches = sweep.values(bench, "batch")
    swept = len(batches) > 1
    return [Variant(with_batch(point, b), r, b if swept else None, glabel)
            for m in checked.suite.models for point, glabel in model_points(m) for b in batches for r in checked.recipes]


def cells(checked: CheckedSuite) -> list[Cell]:
    bench = checked.suite.benchmark
    swept = sweep.swept_axes(bench)
    points = sweep.points(bench)
    by_key = {v._key(): v for v in variants(checked)}
    out = []
    for d in checked.device_names:
        for m in checked.suite.models:
            for _, glabel in model_points(m):
                for r in checked.recipes:
                    for p in points:
                        v = by_key[(m.name, r.name, p.get("batch"), glabel)]
                        cores = p.get("affinity")
                        label = " ".join(x for x in (sweep.label(p, swept), glabel) if x)
                        out.append(Cell(v, d, label, p.get("threads"), tuple(cores) if isinstance(cores, list) else cores))
    return out
