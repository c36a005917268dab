"""Two bad blocks that only matter together: `first` and `second` each carry a 10⁴× activation
outlier (bad_layer_model.Spiky). Keeping either alone in fp32 leaves the other's error, so every
single-layer figure sits near the full-int8 one and the one-at-a-time ranking cannot tell the two
apart from the harmless layers; only the pair kept fp32 recovers the output."""

from __future__ import annotations

import torch
from torch import nn

from bad_layer_model import OUTLIER, Spiky


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
