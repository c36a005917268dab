"""`int4-weight`: linear layers with int4 weights and int8 dynamic activations ("8da4w").

torchao's `quantize_` with Int8DynamicActivationIntxWeightConfig(weight_dtype=int4, PerGroup(32)),
then `unwrap_tensor_subclass` — what ExecuTorch's own XNNPACK recipe (TORCHAO_INT8_DYNAMIC_ACT_INT4_WEIGHT)
does. It is a source transform of the eager model, not a PT2E pass, so it starts from `reference`.
Only nn.Linear is quantized; everything else stays fp32 (and still runs in XNNPACK). A linear whose
input size is not a multiple of the group size is left in fp32 and listed in the cell's `extra`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from qbench.quantize.base import RECIPES, Recipe
from qbench.quantize.skip import SkipSpec


class Int4WeightOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    group_size: PositiveInt = Field(32, description="int4 weights share a scale per group of this many "
                                                     "input channels")
    per_channel: bool = Field(False, description="one scale per output channel instead of per group")
    skip: SkipSpec = Field(default_factory=SkipSpec, description="modules kept in fp32 (mixed precision)")


class Int4Weight(Recipe):
    Options = Int4WeightOptions
    # no calibration: weights only; activation ranges are computed per inference
    why_not_pt2e = ("which torchao applies to the eager model (quantize_ with tensor subclasses), not as a PT2E "
                    "graph: the numeric debugger has no fp32 node to pair each int4 linear with")

    def apply(self, graph, options: Int4WeightOptions, data, reference):
        import copy

        import torch
        from torchao.quantization.granularity import PerAxis, PerGroup
        from torchao.quantization.quant_api import Int8DynamicActivationIntxWeightConfig, quantize_
        from torchao.utils import unwrap_tensor_subclass

        from qbench.quantize.skip import module_skipped

        model = copy.deepcopy(reference)
        quantized, kept = [], []

        def wanted(module, fqn: str) -> bool:
            if not isinstance(module, torch.nn.Linear):
                return False
            if module_skipped(options.skip, module, fqn):
                kept.append({"module": fqn, "why": "skip"})
                return False
            if not options.per_channel and module.in_features % options.group_size:
                kept.append({"module": fqn, "why": f"in_features {module.in_features} not a multiple of {options.group_size}"})
                return False
            quantized.append(fqn)
            return True

        granularity = PerAxis(0) if options.per_channel else PerGroup(options.group_size)
        quantize_(model, Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4, weight_granularity=granularity),
                  filter_fn=wanted)
        if not quantized:
            from qbench.errors import CellError

            raise CellError("quantize", "int4-weight found no nn.Linear to quantize"
                            + (f" (kept in fp32: {', '.join(k['module'] for k in kept)})" if kept else ""))
        unwrap_tensor_subclass(model)  # plain tensors + parametrization: what torch.export can trace
        return model, {"int4": {"linears": len(quantized), "kept_fp32": kept}}


RECIPES.register("int4-weight")(Int4Weight())
