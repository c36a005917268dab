"""Per-layer numerics on a conv → batch-norm net: the fp32 side is compared after the same BN folding
prepare_pt2e does, so a conv's figure is int8 rounding, not 'before BN vs after BN'."""

from __future__ import annotations

import copy

import torch
from torch import nn


def test_conv_layers_compare_like_for_like_after_bn_folding():
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from qbench.quantize.xnnpack import calibrate, make_quantizer
    from qbench.sensitivity.layers import layer_numerics

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8))
    with torch.no_grad():  # batch norms far from identity, so a before/after-BN mix-up would show
        for bn in (net[1], net[4]):
            bn.running_mean.uniform_(-2, 2)
            bn.running_var.uniform_(0.01, 0.1)
    net.eval()
    batches = [(torch.randn(1, 3, 12, 12),) for _ in range(6)]
    graph = torch.export.export(net, batches[0]).module()
    prepared = prepare_pt2e(copy.deepcopy(graph), make_quantizer(per_channel=True))
    calibrate(prepared, batches[:4])
    rows = layer_numerics(graph, convert_pt2e(prepared), batches[4:])
    assert [(r["module"], r["op"]) for r in rows] == [("0", "conv2d"), ("2", "relu"), ("3", "conv2d")]
    assert all(r["sqnr_db"] > 25 and r["cosine"] > 0.99 for r in rows), rows
