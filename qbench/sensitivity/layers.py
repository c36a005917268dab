"""Per-layer numerics of a quantized PT2E graph against its fp32 graph, with torchao's numeric debugger.

torchao 0.18's PT2E debugger (torchao.quantization.pt2e._numeric_debugger) does the matching:
`prepare_for_propagation_comparison` puts an OutputLogger after every node of a graph, keyed by the
node's origin in the exported graph (its `from_node` chain: prepare_pt2e/convert_pt2e keep it, so a
dequantize inserted after `linear_3` is keyed as `linear_3`); `extract_results_from_loggers` and
`compare_results` pair the fp32 and quantized tensors. We read the paired tensors and score them with
qbench's own formula (collectors/numerics.py) so per-layer and cell figures mean the same thing.
`generate_numeric_debug_handle` is not needed: torchao 0.18 keys by node source, not by debug handle
("kept for backward compatibility" in its source).

ExecuTorch's Inspector.calculate_numeric_gap is not used here: it compares one program's AOT graph
(ETRecord) with the same program's runtime intermediate outputs (ETDump debug buffer) — the gap of
the runtime, not of quantization — and inside an XNNPACK delegate only the delegate's outputs are
visible, so it cannot name the int8 layer that lost accuracy against fp32.

A "layer" is the innermost module (`features.3.conv.1`, `bert.encoder.layer.0.attention.self`) that
owns a quantized op; keeping it fp32 via `skip: {modules: [...]}` also keeps any child module fp32.
"""

from __future__ import annotations

import math


def _is_qdq(node) -> bool:
    """quantize/dequantize/choose_qparams nodes inserted by convert_pt2e."""
    name = str(node.target)
    return node.op == "call_function" and ("quantize_per" in name or "choose_qparams" in name
                                           or "dequantize_affine" in name or "quantize_affine" in name)


def _op_name(node) -> str:
    """`aten.conv2d.default` -> `conv2d`."""
    target = node.target
    name = getattr(target, "__name__", None) or str(target)
    parts = str(name).split(".")
    return parts[-2] if len(parts) > 1 and parts[-1] in ("default", "Tensor", "Scalar", "int") else parts[-1]


def _annotated(node) -> bool:
    """The quantizer chose to quantize this op: convert_pt2e keeps the annotation in node.meta."""
    a = node.meta.get("quantization_annotation")
    return a is not None and bool(a.input_qspec_map or a.output_qspec is not None)


def quantized_layers(quantized) -> list[dict]:
    """[{module, op, nodes}] for every module that owns an op the quantizer annotated, in graph order
    (`op` is its first annotated op; `nodes` every op of the module). Ops that merely read an int8
    tensor in fp32 (layer_norm, gelu) make no layer: keeping them fp32 would change nothing. The
    module root ('') is never a layer (skipping it would keep the whole model fp32)."""
    from qbench.quantize.skip import innermost_module

    layers: dict[str, dict] = {}
    for node in quantized.graph.nodes:
        if node.op != "call_function" or _is_qdq(node):
            continue
        path = innermost_module(node)
        if not path:
            continue
        if path in layers:
            layers[path]["nodes"].append(node.name)
        elif _annotated(node):
            layers[path] = {"module": path, "op": _op_name(node), "nodes": [node.name]}
    return list(layers.values())


def layer_numerics(reference_graph, quantized, batches) -> list[dict]:
    """Per layer in graph order: module, op, sqnr_db, cosine, max_abs_error of the layer's output
    (its last logged node) in the quantized graph against the fp32 graph, on `batches`; and
    input_sqnr_db, the worst SQNR among the layer's inputs (how much error it inherited)."""
    import torch
    from torchao.quantization.pt2e._numeric_debugger import (
        compare_results,
        extract_results_from_loggers,
        prepare_for_propagation_comparison,
    )

    reference_graph = _bn_folded(reference_graph)
    ref_logged = prepare_for_propagation_comparison(reference_graph)
    q_logged = prepare_for_propagation_comparison(quantized)
    with torch.no_grad():
        for batch in batches:
            ref_logged(*batch)
            q_logged(*batch)
    summaries = compare_results(_tensors_only(extract_results_from_loggers(ref_logged)),
                                _tensors_only(extract_results_from_loggers(q_logged)))
    by_name = {info.name: s for info, s in summaries.items()}
    ref_nodes = {n.name: n for n in reference_graph.graph.nodes}
    scores: dict[str, dict | None] = {}

    def score(name: str) -> dict | None:
        if name not in scores:
            scores[name] = _score(by_name[name]) if name in by_name else None
        return scores[name]

    rows = []
    for layer in quantized_layers(quantized):
        out = next((score(n) for n in reversed(layer["nodes"]) if score(n) is not None), None)
        first = ref_nodes.get(layer["nodes"][0])
        inherited = [score(a.name) for a in (first.all_input_nodes if first is not None else [])]
        inherited = [s["sqnr_db"] for s in inherited if s is not None and s["sqnr_db"] is not None]
        rows.append({"module": layer["module"], "op": layer["op"],
                     "sqnr_db": out["sqnr_db"] if out else None, "cosine": out["cosine"] if out else None,
                     "max_abs_error": out["max_abs_error"] if out else None,
                     "input_sqnr_db": _finite(min(inherited)) if inherited else 200.0})
    return rows


def _bn_folded(graph):
    """A copy of the fp32 graph with batch norms folded into their convs, as prepare_pt2e folds them
    in the quantized graph (torchao's own `_fuse_conv_bn_`): otherwise a conv's fp32 output (before
    its batch norm) would be compared with the quantized conv's (after it)."""
    import copy

    from torchao.quantization.pt2e.utils import _fuse_conv_bn_

    folded = copy.deepcopy(graph)
    _fuse_conv_bn_(folded)
    folded.recompile()
    return folded


def _tensors_only(results: dict) -> dict:
    """Drop loggers of nodes whose output is not a floating tensor (`_assert_tensor_metadata` returns
    None, shape arithmetic returns ints): compare_results refuses to pair those."""
    def floating(x) -> bool:
        return hasattr(x, "dtype") and x.dtype.is_floating_point

    return {info: entry for info, entry in results.items() if entry[2] and all(floating(x) for x in entry[2])}


def _score(summary) -> dict | None:
    """One node's logged tensors over all batches -> SQNR/cosine/max error (first tensor of a tuple)."""
    from qbench.collectors.numerics import compare_outputs, first_output

    refs, outs = [], []
    for r in summary.results:
        ref, act = first_output(r.ref), first_output(r.actual)
        if not (hasattr(ref, "dtype") and ref.dtype.is_floating_point and ref.numel()):
            return None
        refs.append(ref.reshape(1, -1))
        outs.append(act.reshape(1, -1))
    if not refs:
        return None
    c = compare_outputs(refs, outs, classifier=False)
    return {"sqnr_db": _finite(c["sqnr_db"]), "cosine": c["cosine_similarity"], "max_abs_error": c["max_abs_error"]}


def _finite(x: float) -> float:
    """JSON has no infinity: an exact layer reports 200 dB (beyond any real int8 figure)."""
    return 200.0 if x == math.inf else x
