"""XNNPACKQuantizer configuration shared by the int8 recipes.

Two guards for integer arithmetic inside float models (a transformer's position ids: `arange + 1`,
index arithmetic for its attention mask), which executorch 1.5.1's XNNPACKQuantizer treats like
float math:
* its `transform_for_annotation` lifts every scalar operand of add/mul to a *float* tensor
  constant, so `arange(16) + 0` became float32 and then failed as an index. Integer add/mul with a
  Python scalar are moved to their `.Scalar` overloads first (the same op), which it leaves alone;
* it annotates by op, not dtype, so only floating-point nodes are offered for quantization.
"""

from __future__ import annotations

from qbench.quantize.skip import SkipSpec


def make_quantizer(*, per_channel: bool, dynamic: bool = False, qat: bool = False, skip: SkipSpec | None = None):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    from qbench.quantize.skip import node_filter

    class Quantizer(XNNPACKQuantizer):
        def transform_for_annotation(self, model):
            integer_scalar_ops_to_scalar_overloads(model)
            return super().transform_for_annotation(model)

    config = get_symmetric_quantization_config(is_per_channel=per_channel, is_dynamic=dynamic, is_qat=qat)
    quantizer = Quantizer().set_global(config)
    # A node filter rather than set_module_name(name, None): executorch 1.5's XNNPACKQuantizer
    # refuses a None config by name, and the filter covers types and names alike.
    keep = node_filter(skip) if skip else None
    quantizer.set_filter_function(lambda node: is_floating(node) and (keep is None or keep(node)))
    return quantizer


def is_floating(node) -> bool:
    val = node.meta.get("val")
    return not hasattr(val, "dtype") or val.dtype.is_floating_point


def integer_scalar_ops_to_scalar_overloads(graph) -> int:
    """`aten.add/mul.Tensor(int_tensor, 3)` -> `aten.add/mul.Scalar(int_tensor, 3)`, in place; returns
    how many nodes changed. Float ops are left to the quantizer."""
    import torch

    aten = torch.ops.aten
    scalar_overload = {aten.add.Tensor: aten.add.Scalar, aten.mul.Tensor: aten.mul.Scalar}
    changed = 0
    for node in graph.graph.nodes:
        if node.op != "call_function" or node.target not in scalar_overload or is_floating(node) or len(node.args) != 2:
            continue
        a, b = node.args
        if isinstance(a, (int, float, bool)) and isinstance(b, torch.fx.Node):
            a, b = b, a  # both ops commute
        if isinstance(a, torch.fx.Node) and isinstance(b, (int, float, bool)):
            node.args, node.target = (a, b), scalar_overload[node.target]
            changed += 1
    if changed:
        graph.recompile()
    return changed


def calibrate(prepared, batches) -> None:
    import torch

    with torch.no_grad():
        for batch in batches:
            prepared(*batch)
