"""A transformer encoder block (pre-norm, as in BERT-style encoders), random weights, seeded.

Written out instead of nn.TransformerEncoderLayer so the exported graph is plain linear/matmul/
softmax/layer_norm, which is what a mobile encoder lowers to.
"""

import math

import torch
from torch import nn


class EncoderBlock(nn.Module):
    def __init__(self, dim: int = 256, heads: int = 4, ff: int = 1024):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim), dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.ff(self.norm2(x))


def encoder_block() -> nn.Module:
    torch.manual_seed(0)
    return EncoderBlock()
