"""The Recipe interface and its registry.

A recipe takes the exported fp32 graph (torch.export(...).module()) and returns the graph to lower.
Importing a recipe module is cheap: torch/torchao are imported inside `apply`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from qbench.registry import Registry

if TYPE_CHECKING:
    from qbench.quantize.calibration import InputData


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Recipe(Protocol):
    Options: ClassVar[type[BaseModel]]
    needs_calibration: ClassVar[bool]
    lowers_to_pte: ClassVar[bool]  # False for the eager reference (measured as a torch program)

    def apply(self, graph, options: BaseModel, data: "InputData", reference):
        """Return (module to lower, record). `reference` is the fp32 eager module (QAT distils from it);
        never mutate it: it is shared by every recipe of the model.

        The record (e.g. QAT's training record, int4's kept linears) lands in the cell's `extra` JSON. A recipe with `trains = True` needs a non-empty train split when the
        model has a dataset (data.train); `data.progress(text)` reports what a long recipe is doing.
        """


RECIPES: Registry[Recipe] = Registry("recipe kind")
