"""Tiny models whose outputs defeat numerics, for tests/pipeline/test_nonfinite_outputs.py (loaded by
the suite as `python:` factories, so the real pipeline builds, exports and measures them)."""

import torch
from torch import nn


class NanOut(nn.Module):
    """NaN and inf in two of ten logits, in fp32 already (a model bug)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(64, 10)
        self.register_buffer("poison", torch.tensor([float("nan"), float("inf")] + [0.0] * 8))

    def forward(self, x):
        return self.fc(x) + self.poison


class QuantNan(nn.Module):
    """Finite in fp32; int8 rounds the tiny squares to 0, so the quantized program's log is -inf."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        y = self.fc(x)
        return torch.log(y * y * 1e-6)


class Empty(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(x)[:, :0]


class Shifting(nn.Module):
    """Its output loses a column on every call (a stateful model): no fixed shape to compare."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.fc(x)[:, : 10 - self.calls % 3]


def nan_out():
    return NanOut().eval()


def quant_nan():
    return QuantNan().eval()


def empty():
    return Empty().eval()


def shifting():
    return Shifting().eval()
