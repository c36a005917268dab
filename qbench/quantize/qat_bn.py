"""Batch-norm epsilon for PT2E QAT: make a model's own eps survive torchao's conv-bn fusion.

torchao 0.18's QAT conv-bn pattern (pt2e/qat_utils.py, "TODO: allow setting eps") rebuilds every
conv -> batch_norm pair with eps = 1e-5 and does not copy the model's value over. Models built with
another eps (torchvision's MobileNetV3 and EfficientNets use 1e-3) then normalise channels of small
variance by the wrong amount: a random-weight mobilenet_v3_small came out of prepare_qat_pt2e at
-44 dB SQNR against its fp32 self, before a single training step (PTQ: +17 dB).

The fix keeps the function exactly the same in inference: sqrt(var + eps) == sqrt(var' + 1e-5) with
var' = var + eps - 1e-5. So each batch norm's running variance absorbs the difference and its eps
becomes the one torchao assumes. (While statistics are still updating in training, batch variances
get 1e-5 instead of eps; the default schedule freezes them from the start.)
"""

from __future__ import annotations

TORCHAO_QAT_BN_EPS = 1e-5

# op name -> (index of running_var, index of eps) in its arguments
_BN_ARGS = {
    "aten.batch_norm.default": (4, 7),
    "aten._native_batch_norm_legit.default": (4, 7),
    "aten._native_batch_norm_legit_no_training.default": (4, 6),
}


def align_bn_eps(graph) -> int:
    """Rewrite `graph` (an exported GraphModule, owned by the caller) in place; returns how many
    batch norms changed. Norms whose eps is below torchao's are left alone (var' could go negative)."""
    changed = 0
    for node in graph.graph.nodes:
        spec = _BN_ARGS.get(str(node.target)) if node.op == "call_function" else None
        if spec is None or len(node.args) <= spec[1]:
            continue
        var_at, eps_at = spec
        eps, var_node = node.args[eps_at], node.args[var_at]
        if not isinstance(eps, float) or eps <= TORCHAO_QAT_BN_EPS or getattr(var_node, "op", None) != "get_attr":
            continue
        import torch

        with torch.no_grad():
            graph.get_buffer(var_node.target).add_(eps - TORCHAO_QAT_BN_EPS)
        node.args = (*node.args[:eps_at], TORCHAO_QAT_BN_EPS, *node.args[eps_at + 1:])
        changed += 1
    if changed:
        graph.recompile()
    return changed
