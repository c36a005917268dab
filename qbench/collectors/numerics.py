"""How far a cell's outputs are from the fp32 eager model on the same held-out inputs.

SQNR (dB) = 10·log10(Σ ref² / Σ (ref − out)²): ~40+ dB is excellent for int8, below ~20 dB is
usually a visible accuracy loss. Top-1 agreement is reported for classifiers only.
"""

from __future__ import annotations

import math
from typing import Sequence


def compare_outputs(reference: Sequence, outputs: Sequence, classifier: bool) -> dict:
    """reference/outputs: one output tensor per held-out sample (first output of the model)."""
    import torch

    ref = torch.cat([r.detach().float().reshape(r.shape[0] if r.dim() > 1 else 1, -1) for r in reference])
    out = torch.cat([o.detach().float().reshape(o.shape[0] if o.dim() > 1 else 1, -1) for o in outputs])
    if ref.shape != out.shape:
        raise ValueError(f"output shapes differ: reference {tuple(ref.shape)} vs program {tuple(out.shape)}")
    noise = (ref - out).pow(2).sum().item()
    signal = ref.pow(2).sum().item()
    sqnr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    cos = torch.nn.functional.cosine_similarity(ref.flatten(), out.flatten(), dim=0).item()
    result = {
        "sqnr_db": sqnr,
        "max_abs_error": (ref - out).abs().max().item(),
        "cosine_similarity": cos,
        "samples": len(reference),
        "top1_agreement": None,
    }
    if classifier:
        result["top1_agreement"] = (ref.argmax(dim=1) == out.argmax(dim=1)).float().mean().item()
    return result


def looks_like_classifier(output) -> bool:
    """[batch, classes] logits with more than one class."""
    return output.dim() == 2 and output.shape[1] > 1


def first_output(out):
    return out[0] if isinstance(out, (tuple, list)) else out
