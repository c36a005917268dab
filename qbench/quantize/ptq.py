"""`ptq`: static post-training int8 (PT2E prepare -> calibrate -> convert with XNNPACKQuantizer)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from qbench.quantize.base import RECIPES, Recipe
from qbench.quantize.skip import SkipSpec
from qbench.quantize.xnnpack import calibrate, make_quantizer


class PtqOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    per_channel: bool = Field(True, description="weights: one scale per output channel (false: per tensor)")
    skip: SkipSpec = Field(default_factory=SkipSpec, description="modules kept in fp32 (mixed precision)")


class Ptq(Recipe):
    Options = PtqOptions
    needs_calibration = True
    uses_calibration = True
    pt2e_graph = True

    def apply(self, graph, options: PtqOptions, data, reference):
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        prepared = prepare_pt2e(graph, make_quantizer(per_channel=options.per_channel, skip=options.skip))
        calibrate(prepared, data.calibration)
        return convert_pt2e(prepared), {}


RECIPES.register("ptq")(Ptq())
