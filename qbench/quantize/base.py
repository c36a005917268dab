"""The Recipe base class and its registry.

A recipe takes the exported fp32 graph (torch.export(...).module()) and returns the graph to lower.
Importing a recipe module is cheap: torch/torchao are imported inside `apply`.

Each recipe declares what the pipeline needs to know about it (the class attributes below); prepare,
check and sensitivity ask these instead of testing the recipe's kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

from qbench.registry import Registry

if TYPE_CHECKING:
    from qbench.quantize.calibration import InputData


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Recipe:
    Options: ClassVar[type[BaseModel]] = NoOptions
    # calibration data is required (the suite check refuses a model without any)
    needs_calibration: ClassVar[bool] = False
    # calibration data is read when there is some, so it is part of the artifact's cache key
    uses_calibration: ClassVar[bool] = False
    # learns from a dataset's train split (which must then not be empty) instead of calibration data
    trains: ClassVar[bool] = False
    # False for the eager reference (measured as a torch program, on the host only)
    lowers_to_pte: ClassVar[bool] = True
    # False for fp32 and eager: their numerics compare the exported program, not a quantized one
    quantizes: ClassVar[bool] = True
    # the quantized graph is a PT2E graph the numeric debugger reads (what `qbench sensitivity` needs)
    pt2e_graph: ClassVar[bool] = False
    # a quantizing recipe that is not PT2E says why, for sensitivity's refusal
    why_not_pt2e: ClassVar[str | None] = None
    # the fp32 baseline every other recipe's speedup is measured against
    baseline: ClassVar[bool] = False

    def apply(self, graph, options: BaseModel, data: "InputData", reference):
        """Return (module to lower, record). `reference` is the fp32 eager module (QAT distils from it);
        never mutate it: it is shared by every recipe of the model.

        The record (e.g. QAT's training record, int4's kept linears) lands in the cell's `extra` JSON.
        A recipe with `trains = True` needs a non-empty train split when the model has a dataset
        (data.train); `data.progress(text)` reports what a long recipe is doing.
        """
        raise NotImplementedError

    def dataset_splits(self) -> tuple[str, ...]:
        """The dataset splits that must not be empty for this recipe (eval for accuracy, and what it
        learns from)."""
        return ("eval",) + (("train",) if self.trains else ("calibration",) if self.needs_calibration else ())

    def options_for_one_export(self, options: BaseModel, data: "InputData") -> BaseModel:
        """The options to use when every variant must come from the one export of the model (the
        numeric debugger pairs nodes of one export only): unchanged unless the recipe re-exports."""
        return options


RECIPES: Registry[Recipe] = Registry("recipe kind")
