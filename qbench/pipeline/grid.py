"""The grid of cells (model × recipe × device) and the order trials run in.

Trials are interleaved: trial 0 of every cell on a device, then trial 1 of every cell, ... so that
drift and heat do not favour whichever recipe ran first (A B A B, not A A B B).
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


def interleaved(cells_on_device: list[Cell], trials: int) -> list[tuple[int, Cell]]:
    """(trial, cell) pairs in measurement order for one device."""
    return [(t, c) for t in range(trials) for c in cells_on_device]
