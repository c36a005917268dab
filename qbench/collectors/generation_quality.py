"""How far a quantized causal LM's generations are from the fp32 eager model's, from a program's
own outputs (the host runtime at prepare time, or the device's runner).

- token_agreement: share of the greedy tokens (the prefill's and each decode step's argmax) equal
  to the fp32 eager model's greedy tokens on the same seeded prompt; generations diverge after a first
  mismatch, as they would for a user.
- logits SQNR per step: the program's logits against the eager model's logits for the *same*
  history (the program's own tokens fed to the eager model), so a divergence does not count twice.
"""

from __future__ import annotations

import math


def greedy(step, prompt: list[int], new_tokens: int) -> tuple[list[int], list]:
    """Prefill then `new_tokens` decode steps: (tokens [new_tokens + 1], logits per step as numpy).
    `step(ids, start)` runs the model on token ids at positions start.. and returns the last logits."""
    logits = [step(prompt, 0)]
    tokens = [int(logits[0].argmax())]
    for k in range(new_tokens):
        logits.append(step([tokens[-1]], len(prompt) + k))
        tokens.append(int(logits[-1].argmax()))
    return tokens, logits


def forced(step, prompt: list[int], tokens: list[int]) -> list:
    """Logits per step when the history is `tokens` (teacher forcing), as greedy() steps."""
    out = [step(prompt, 0)]
    for k, token in enumerate(tokens[:-1]):
        out.append(step([token], len(prompt) + k))
    return out


def sqnr_db(reference, actual) -> float:
    import numpy as np

    ref, act = np.asarray(reference, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    noise = float(((ref - act) ** 2).sum())
    signal = float((ref ** 2).sum())
    return math.inf if noise == 0 else 10 * math.log10(signal / noise) if signal > 0 else -math.inf


def compare(eager_step, prompt: list[int], tokens: list[int], logits: list) -> dict:
    """Quality figures of a program's (tokens, logits) against the eager model (eager_step: a fresh
    cache's step function; it is called for two generations, resetting by position 0)."""
    import statistics

    eager_tokens, _ = greedy(eager_step, prompt, len(tokens) - 1)
    agree = sum(a == b for a, b in zip(tokens, eager_tokens)) / len(tokens)
    references = forced(eager_step, prompt, tokens)
    per_step = [sqnr_db(r, a) for r, a in zip(references, logits)]
    finite = [min(s, 999.0) for s in per_step]
    return {"token_agreement": agree, "tokens": len(tokens),
            "first_mismatch": next((i for i, (a, b) in enumerate(zip(tokens, eager_tokens)) if a != b), None),
            "logits_sqnr_db": {"median": statistics.median(finite), "min": min(finite),
                               "per_step": [round(s, 2) for s in finite]}}


def torch_step(module):
    """A step function over a torch generation module (models/causal_lm.py)."""
    import torch

    def step(ids, start):
        with torch.no_grad():
            out = module(torch.tensor([ids], dtype=torch.long), torch.arange(start, start + len(ids), dtype=torch.long))
        return out[0].numpy()

    return step


def method_step(method):
    """A step function over a loaded ExecuTorch method."""
    import torch

    def step(ids, start):
        out = method.execute([torch.tensor([ids], dtype=torch.long),
                              torch.arange(start, start + len(ids), dtype=torch.long)])
        return out[0][0].numpy().copy()

    return step


REFERENCE = "generation_reference.npz"  # in the artifact: the fp32 eager model's greedy tokens and logits


def save_reference(folder, eager_step, prompt: list[int], new_tokens: int) -> None:
    import numpy as np

    tokens, logits = greedy(eager_step, prompt, new_tokens)
    np.savez(folder / REFERENCE, tokens=np.asarray(tokens, dtype=np.int64), logits=np.stack(logits).astype(np.float32))


def against_reference(reference, tokens: list[int], logits) -> dict:
    """A device's generation (its tokens, logits [steps, vocab]) against the saved eager reference:
    token agreement over every step, logits SQNR over the steps before the first mismatch (where
    both saw the same history)."""
    import statistics

    import numpy as np

    ref_tokens, ref_logits = reference["tokens"].tolist(), reference["logits"]
    agree = sum(a == b for a, b in zip(tokens, ref_tokens)) / len(ref_tokens)
    mismatch = next((i for i, (a, b) in enumerate(zip(tokens, ref_tokens)) if a != b), None)
    same = len(ref_tokens) if mismatch is None else mismatch + 1  # step `mismatch` still had the same history
    per_step = [min(sqnr_db(ref_logits[i], np.asarray(logits[i])), 999.0) for i in range(same)]
    return {"token_agreement": agree, "tokens": len(ref_tokens), "first_mismatch": mismatch,
            "logits_sqnr_db": {"median": statistics.median(per_step), "min": min(per_step), "steps": same}}
