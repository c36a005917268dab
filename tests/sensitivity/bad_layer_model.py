"""A tiny MLP with one deliberately bad layer: block `spiky` multiplies one channel of its hidden
activation by 1e4 and divides it back in its output projection. In fp32 that is harmless; with a
per-tensor int8 activation scale the other channels of that activation round to zero (the
activation-outlier failure of transformers, in miniature). Everything else quantizes well.

Two variants for the search's tests: `pair_net` has two such blocks that only matter together
(keeping either alone in fp32 leaves the other's error, so every single-layer figure sits near the
full-int8 one); `dict_net` returns {"aux": the first layer's output, "out": the MLP's output}, whose
first leaf quantizes well and whose headline (`output: out`) does not."""

from __future__ import annotations

import torch
from torch import nn

OUTLIER = 1e4


class Spiky(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.up = nn.Linear(width, width)
        self.down = nn.Linear(width, width)
        gain = torch.ones(width)
        gain[0] = OUTLIER
        self.register_buffer("gain", gain)

    def forward(self, x):
        h = torch.relu(self.up(x)) * self.gain  # one channel 10⁴× larger than the rest
        return self.down(h)


class BadLayerNet(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        self.stem = nn.Linear(16, width)
        self.spiky = Spiky(width)
        self.mid = nn.Linear(width, width)
        self.head = nn.Linear(width, 8)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = torch.relu(self.spiky(h))
        h = torch.relu(self.mid(h))
        return self.head(h)


def bad_layer_net() -> nn.Module:
    torch.manual_seed(0)
    model = BadLayerNet()
    with torch.no_grad():
        model.spiky.down.weight[:, 0] /= OUTLIER  # the outlier channel contributes normally in fp32
    return model.eval()


class PairNet(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        self.stem = nn.Linear(16, width)
        self.first = Spiky(width)
        self.mid = nn.Linear(width, width)
        self.second = Spiky(width)
        self.head = nn.Linear(width, 8)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = torch.relu(self.first(h))
        h = torch.relu(self.mid(h))
        h = torch.relu(self.second(h))
        return self.head(h)


def pair_net() -> nn.Module:
    torch.manual_seed(0)
    model = PairNet()
    with torch.no_grad():
        for block in (model.first, model.second):
            block.down.weight[:, 0] /= OUTLIER  # harmless in fp32
    return model.eval()


class DictNet(BadLayerNet):
    def forward(self, x):
        return {"aux": self.stem(x), "out": super().forward(x)}


def dict_net() -> nn.Module:
    model = bad_layer_net()
    model.__class__ = DictNet  # the same weights and module names
    return model
