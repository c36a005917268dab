"""QAT keeps a model's own batch-norm eps (torchao's conv-bn fusion assumes 1e-5; MobileNetV3 uses 1e-3)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from qbench.quantize.qat_bn import align_bn_eps
from qbench.quantize.xnnpack import make_quantizer


def _sqnr(ref, out) -> float:
    return float(10 * torch.log10(ref.pow(2).mean() / (ref - out).pow(2).mean()))


def _net(eps: float) -> nn.Module:
    """conv -> BN(eps) -> hardswish, with some channels of tiny variance as in MobileNetV3's SE paths."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, bias=False), nn.BatchNorm2d(16, eps=eps), nn.Hardswish(),
                        nn.Conv2d(16, 8, 1))
    with torch.no_grad():
        net[0].weight[:8] *= 1e-2  # half the channels have variance ~1e-5: eps matters there
        net[1].momentum = None  # cumulative statistics over the passes below
        net.train()
        for _ in range(8):
            net(torch.randn(4, 3, 16, 16))
    net[1].momentum = 0.1
    return net.eval()


def _fake_quant_sqnr(net, align: bool) -> float:
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    graph = torch.export.export(copy.deepcopy(net), (x,)).module()
    if align:
        assert align_bn_eps(graph) == 1
    prepared = prepare_qat_pt2e(graph, make_quantizer(per_channel=True, qat=True))
    move_exported_model_to_eval(prepared)
    with torch.no_grad():
        prepared(x)
        return _sqnr(net(x), prepared(x))


def test_aligned_graph_computes_exactly_what_the_model_does():
    net = _net(eps=1e-3)
    x = torch.randn(2, 3, 16, 16)
    graph = torch.export.export(copy.deepcopy(net), (x,)).module()
    assert align_bn_eps(graph) == 1
    torch.testing.assert_close(graph(x), net(x), rtol=1e-5, atol=1e-6)
    assert net[1].eps == 1e-3  # the caller's model is untouched


def test_qat_fake_quant_matches_fp32_only_with_the_eps_aligned():
    net = _net(eps=1e-3)
    assert _fake_quant_sqnr(net, align=False) < 10  # torchao's fusion normalises with eps 1e-5
    assert _fake_quant_sqnr(net, align=True) > 25


def test_default_eps_is_left_alone():
    net = _net(eps=1e-5)
    graph = torch.export.export(copy.deepcopy(net), (torch.randn(1, 3, 16, 16),)).module()
    assert align_bn_eps(graph) == 0
