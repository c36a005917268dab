"""`dynamic`: int8 weights, activations quantized at run time (suits linear-heavy models).

Needs no calibration data: activation ranges are computed per inference.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from qbench.quantize.base import RECIPES, Recipe
from qbench.quantize.skip import SkipSpec
from qbench.quantize.xnnpack import calibrate, make_quantizer


class DynamicOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    per_channel: bool = Field(True, description="weights: one scale per output channel (false: per tensor)")
    skip: SkipSpec = Field(default_factory=SkipSpec, description="modules kept in fp32 (mixed precision)")


class Dynamic(Recipe):
    Options = DynamicOptions
    uses_calibration = True  # its weight observers take the first calibration batch when there is one
    pt2e_graph = True

    def apply(self, graph, options: DynamicOptions, data, reference):
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        prepared = prepare_pt2e(graph, make_quantizer(per_channel=options.per_channel, dynamic=True, skip=options.skip))
        # weight observers still need one pass; held-out data is not used for this
        calibrate(prepared, data.calibration[:1] or [data.example])
        return convert_pt2e(prepared), {}


RECIPES.register("dynamic")(Dynamic())
