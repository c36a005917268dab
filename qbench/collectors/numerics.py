"""How far a cell's outputs are from the fp32 eager model on the same held-out inputs.

SQNR (dB) = 10·log10(Σ ref² / Σ (ref − out)²): ~40+ dB is excellent for int8, below ~20 dB is
usually a visible accuracy loss. Top-1 agreement is reported for classifiers only.

A model with structured outputs (dicts, tuples, nests) is compared leaf by leaf (`compare_leaves`),
each leaf named by its path as in qbench/models/outputs.py.
"""

from __future__ import annotations

import math
from typing import Sequence


def compare_outputs(reference: Sequence, outputs: Sequence, classifier: bool) -> dict:
    """reference/outputs: one output per held-out sample (one output leaf of the model), as torch
    tensors or numpy arrays. numpy (sums in float64): a device's outputs come back as bytes, and
    judging them should not need torch's import."""
    import numpy as np

    ref = np.concatenate([_rows(r) for r in reference]).astype(np.float64)
    out = np.concatenate([_rows(o) for o in outputs]).astype(np.float64)
    if ref.shape != out.shape:
        raise ValueError(f"output shapes differ: reference {tuple(ref.shape)} vs program {tuple(out.shape)}")
    diff = ref - out
    noise, signal = float(np.square(diff).sum()), float(np.square(ref).sum())
    sqnr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    norms = float(np.linalg.norm(ref)) * float(np.linalg.norm(out))
    result = {
        "sqnr_db": sqnr,
        "max_abs_error": float(np.abs(diff).max()),
        "cosine_similarity": float(ref.ravel() @ out.ravel()) / max(norms, 1e-8),  # eps as torch's
        "samples": len(reference),
        "top1_agreement": None,
    }
    if classifier:
        result["top1_agreement"] = float((ref.argmax(axis=1) == out.argmax(axis=1)).mean())
    return result


def _rows(x):
    """One output as float32 rows [batch, features] (a 0/1-dimensional output is one row)."""
    import numpy as np

    a = x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float32)
    return a.reshape(a.shape[0] if a.ndim > 1 else 1, -1)


def compare_leaves(reference: Sequence[Sequence], outputs: Sequence[Sequence], names: Sequence[str],
                   task: str = "auto") -> dict[str, dict]:
    """Per output leaf: {name: compare_outputs(...)}.

    reference/outputs: per held-out sample, the model's flat output leaves (eager pytree leaves, or
    the program's / a runner's flat outputs, same order); names: one per leaf. Leaves that are not
    tensors on both sides (None, numbers) are skipped. `task` is the model's (auto: top-1 agreement
    for leaves shaped like logits).
    """
    import torch

    if any(len(o) != len(names) for o in (*outputs, *reference)):
        counts = sorted({len(o) for o in outputs if len(o) != len(names)} or {len(names)})
        raise ValueError(f"the program returns {'/'.join(map(str, counts))} outputs, the model {len(names)} "
                         f"({', '.join(names)})")
    result = {}
    for i, name in enumerate(names):
        refs, outs = [r[i] for r in reference], [o[i] for o in outputs]
        if not all(isinstance(t, torch.Tensor) for t in (*refs, *outs)):
            continue
        classifier = task == "classifier" or (task == "auto" and looks_like_classifier(refs[0]))
        result[name] = compare_outputs(refs, outs, classifier)
    return result


def looks_like_classifier(output) -> bool:
    """[batch, classes] logits with more than one class."""
    return output.dim() == 2 and output.shape[1] > 1


def first_output(out):
    return out[0] if isinstance(out, (tuple, list)) else out
