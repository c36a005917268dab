"""The grid of cells (model × recipe × device).

The order trials run in (interleaved across a device's cells, A B A B, so drift and heat do not favour
whichever recipe ran first; repeated and replaced until precise) is pipeline/adaptive.py's TrialPlan.
"""

from __future__ import annotations

from dataclasses import dataclass

from qbench.pipeline.check import CheckedSuite, ResolvedRecipe
from qbench.suite.schema import ModelSpec


@dataclass(frozen=True, eq=False)
class Variant:
    """A (model, recipe) pair: prepared once, measured on every device. Identity = the two names."""

    model: ModelSpec
    recipe: ResolvedRecipe

    def _key(self):
        return (self.model.name, self.recipe.name)

    def __eq__(self, other):
        return isinstance(other, Variant) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    @property
    def label(self) -> str:
        return f"{self.model.name}/{self.recipe.name}"


@dataclass(frozen=True)
class Cell:
    variant: Variant
    device: str

    @property
    def label(self) -> str:
        return f"{self.variant.label}@{self.device}"


def variants(checked: CheckedSuite) -> list[Variant]:
    return [Variant(m, r) for m in checked.suite.models for r in checked.recipes]


def cells(checked: CheckedSuite) -> list[Cell]:
    return [Cell(v, d) for d in checked.device_names for v in variants(checked)]
