"""Recipes for a causal LM with its KV cache (`task: text-generation`), as ExecuTorch's LLM export
quantizes one: torchao source transforms of the eager module, never PT2E (the XNNPACK partitioner
finds dependency cycles in a PT2E-quantized static-cache graph in the pinned wheels).

- fp32: as is.
- int4-weight (8da4w): the recipe itself (torchao Int8DynamicActivationIntxWeightConfig, int4 per group).
- dynamic (8da8w): the same config with int8 weights per output channel — dynamic int8 activations,
  int8 weights, ExecuTorch's LLM `8da8w`.
"""

from __future__ import annotations

from qbench.errors import CellError

# the recipe kinds quantize_generator supports (the suite check refuses the others, listing these)
GENERATION_KINDS = ("fp32", "int4-weight", "dynamic")


def quantize_generator(kind: str, options, module) -> tuple[object, dict]:
    """(the module to lower, the record for the cell's extra). `module` is not mutated."""
    if kind == "fp32":
        return module, {}
    if kind == "int4-weight":
        from qbench.quantize.int4_weight import Int4Weight

        return Int4Weight().apply(None, options, None, module)
    if kind == "dynamic":
        return _int8_dynamic(options, module)
    raise CellError("quantize", f"recipe kind {kind!r} is not supported for text-generation")


def _int8_dynamic(options, module) -> tuple[object, dict]:
    import copy

    import torch
    from torchao.quantization.granularity import PerAxis
    from torchao.quantization.quant_api import Int8DynamicActivationIntxWeightConfig, quantize_
    from torchao.utils import unwrap_tensor_subclass

    from qbench.quantize.skip import module_skipped

    model = copy.deepcopy(module)
    quantized, kept = [], []

    def wanted(m, fqn: str) -> bool:
        if not isinstance(m, torch.nn.Linear):
            return False
        if module_skipped(options.skip, m, fqn):
            kept.append({"module": fqn, "why": "skip"})
            return False
        quantized.append(fqn)
        return True

    config = Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int8, weight_granularity=PerAxis(0))
    quantize_(model, config, filter_fn=wanted)
    unwrap_tensor_subclass(model)
    return model, {"int8_dynamic": {"scheme": "8da8w (torchao)", "linears": len(quantized), "kept_fp32": kept}}
