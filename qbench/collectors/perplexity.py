"""Perplexity of a causal LM on windows of token ids: exp(mean NLL of each window's tokens after its
first), from the fp32 eager model (one forward per window) or a program's teacher-forced steps (the
host runtime here; a device's runner computes the same NLLs itself, contract.md "Scoring mode")."""

from __future__ import annotations

import math

TOKENS = "perplexity_tokens.bin"  # in the artifact: the windows' int64 token ids, pushed to each device


def perplexity(nll_sum: float, tokens: int) -> float:
    return math.exp(nll_sum / tokens) if tokens else math.nan


def eager_nlls(hf_model, windows: list[list[int]]) -> list[float]:
    """The fp32 eager model's NLL of each scored token (full causal forward per window)."""
    import torch

    out = []
    with torch.no_grad():
        for window in windows:
            ids = torch.tensor([window], dtype=torch.long)
            logits = hf_model(input_ids=ids, use_cache=False).logits[0, :-1].double()
            nll = torch.logsumexp(logits, -1) - logits.gather(1, ids[0, 1:, None])[:, 0]
            out.extend(nll.tolist())
    return out


def step_nlls(step, windows: list[list[int]]) -> list[float]:
    """NLL of each scored token by teacher forcing through `step(ids, start) -> last logits` (as the
    runners do: each window from position 0, one token per step)."""
    import numpy as np

    out = []
    for window in windows:
        for i in range(len(window) - 1):
            logits = np.asarray(step([window[i]], i), dtype=np.float64).reshape(-1)
            top = logits.max()
            out.append(float(np.log(np.exp(logits - top).sum()) + top - logits[window[i + 1]]))
    return out


def write_tokens(folder, windows: list[list[int]]) -> None:
    import numpy as np

    np.asarray(windows, dtype="<i8").tofile(folder / TOKENS)
