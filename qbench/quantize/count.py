"""How many layers a recipe really quantized: the finding "quantized nothing" rests on this count.

A layer counts when its compute node (linear, conv, matmul) reads a dequantized input, i.e. sits
between a q-dq pair in the converted pt2e graph. int4-weight quantizes modules in eager mode (no q-dq
nodes), so its own count of int8/int4 linears is used instead.
"""

from __future__ import annotations

# aten ops that do the arithmetic a quantizer targets
_COMPUTE = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose", "matmul", "mm", "bmm", "addmm")


def quantized_layers(module, record: dict) -> int | None:
    """Count of quantized compute layers, or None when the module has no graph to read."""
    if "int4" in record:
        return int(record["int4"].get("linears", 0))
    graph = getattr(module, "graph", None)
    if graph is None:
        return None
    return sum(1 for node in graph.nodes if _is_compute(node) and any(_is_dequantize(a) for a in node.all_input_nodes))


def _op_name(node) -> str:
    target = node.target
    name = getattr(target, "__name__", None) or str(target)
    return name.split(".")[0]  # conv2d.default -> conv2d


def _is_compute(node) -> bool:
    return node.op == "call_function" and _op_name(node).startswith(_COMPUTE)


def _is_dequantize(node) -> bool:
    return node.op == "call_function" and "dequantize" in str(node.target)
