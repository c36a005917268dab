"""How far a cell's outputs are from the fp32 eager model on the same held-out inputs.

SQNR (dB) = 10·log10(Σ ref² / Σ (ref − out)²): ~40+ dB is excellent for int8, below ~20 dB is
usually a visible accuracy loss. Top-1 agreement is reported for classifiers only.

A model with structured outputs (dicts, tuples, nests) is compared leaf by leaf (`compare_leaves`),
each leaf named by its path as in qbench/models/outputs.py.

Outputs that hold NaN or inf are a finding, not a number: every figure is None, and `nonfinite`
counts them on each side (the fp32 reference, the program), so a cell can say whether the model
itself or only its exported/quantized program produces them. An empty output has no figures either
(`reason` says so); an output whose shape changes between calls is an error naming both shapes.
"""

from __future__ import annotations

import math
from typing import Sequence

from qbench.errors import CellError

FIGURES = ("sqnr_db", "max_abs_error", "cosine_similarity", "top1_agreement")


def compare_outputs(reference: Sequence, outputs: Sequence, classifier: bool, program: str = "program") -> dict:
    """reference/outputs: one output per held-out sample (one output leaf of the model), as torch
    tensors or numpy arrays. numpy (sums in float64): a device's outputs come back as bytes, and
    judging them should not need torch's import. Figures are None (with `reason`) when the outputs
    are empty or hold NaN/inf; `nonfinite` is then {"values", "fp32", "program"} counts. `program`:
    what the outputs came from, in the reason's words (e.g. "quantized program")."""
    import numpy as np

    ref = _stacked(reference, "the fp32 model's")
    out = _stacked(outputs, "the program's")
    if ref.shape != out.shape:
        raise ValueError(f"output shapes differ: reference {tuple(ref.shape)} vs program {tuple(out.shape)}")
    result = {**{k: None for k in FIGURES}, "samples": len(reference)}
    if ref.size == 0:
        return {**result, "reason": f"empty output (shape {_shape(reference[0])}): nothing to compare"}
    bad_ref, bad_out = int((~np.isfinite(ref)).sum()), int((~np.isfinite(out)).sum())
    if bad_ref or bad_out:
        finding = {"values": int(ref.size), "fp32": bad_ref, "program": bad_out}
        return {**result, "nonfinite": finding, "reason": nonfinite_text(finding, program)}
    return {**result, **_figures(ref, out, classifier)}


def _figures(ref, out, classifier: bool) -> dict:
    import numpy as np

    diff = ref - out
    noise, signal = float(np.square(diff).sum()), float(np.square(ref).sum())
    norms = float(np.linalg.norm(ref)) * float(np.linalg.norm(out))
    figures = {
        "sqnr_db": math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else None),
        "max_abs_error": float(np.abs(diff).max()),
        "cosine_similarity": float(ref.ravel() @ out.ravel()) / max(norms, 1e-8),  # eps as torch's
    }
    if figures["sqnr_db"] is None:
        figures["reason"] = "the fp32 output is all zeros: SQNR is undefined"
    if classifier:
        figures["top1_agreement"] = float((ref.argmax(axis=1) == out.argmax(axis=1)).mean())
    return figures


def nonfinite_text(finding: dict, program: str = "program") -> str:
    """'NaN/inf in 3 of 80 values in fp32 (the model itself)' / '... only in the quantized program (fp32 has none)'."""
    fp32, bad, total = finding["fp32"], finding["program"], finding["values"]
    if fp32:
        tail = f"; the {program}: {bad}" if bad != fp32 else ""
        return f"NaN/inf in {fp32} of {total} values in fp32 (the model itself{tail})"
    return f"NaN/inf in {bad} of {total} values only in the {program} (fp32 has none)"


def _stacked(per_sample: Sequence, whose: str):
    """One output per held-out sample as float64 rows; a shape that changes between calls is named."""
    import numpy as np

    rows = [_rows(x) for x in per_sample]
    shapes = list(dict.fromkeys(_shape(x) for x in per_sample))
    if len(shapes) > 1:
        raise ValueError(f"{whose} output changes shape between calls ({' then '.join(shapes[:3])}): "
                         "numerics need an output whose shape depends only on the input's")
    return np.concatenate(rows).astype(np.float64)


def _shape(x) -> str:
    return "[" + ", ".join(str(d) for d in tuple(x.shape)) + "]"


def _rows(x):
    """One output as float32 rows [batch, features] (a 0/1-dimensional output is one row)."""
    import numpy as np

    a = x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float32)
    return a.reshape(a.shape[0] if a.ndim > 1 else 1, -1)


def compare_leaves(reference: Sequence[Sequence], outputs: Sequence[Sequence], names: Sequence[str],
                   task: str = "auto", program: str = "program") -> dict[str, dict]:
    """Per output leaf: {name: compare_outputs(...)}.

    reference/outputs: per held-out sample, the model's flat output leaves (eager pytree leaves, or
    the program's / a runner's flat outputs, same order); names: one per leaf. Leaves that are not
    tensors on both sides (None, numbers) are skipped. `task` is the model's (auto: top-1 agreement
    for leaves shaped like logits); `program` as in compare_outputs.
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
        try:
            result[name] = _named(compare_outputs(refs, outs, classifier, program), name)
        except ValueError as exc:  # one line for the cell (not numpy's text), naming the output
            raise CellError("numerics", _named({"reason": str(exc)}, name)["reason"]) from None
    return result


def _named(figures: dict, name: str) -> dict:
    """A leaf's `reason` says which output it is about (not needed for a model's one bare output)."""
    from qbench.models.outputs import SOLE_OUTPUT

    if figures.get("reason") and name != SOLE_OUTPUT:
        figures["reason"] = f"output {name!r}: {figures['reason']}"
    return figures


def cell_findings(per_output: dict[str, dict]) -> dict:
    """What a cell's `extra` says about its numerics beyond the figures: `nonfinite`, one entry per
    output leaf holding NaN/inf ({output, values, fp32, program}), and `numerics_reason`, every
    leaf's reason for missing figures in one line."""
    found = {}
    nonfinite = [{"output": name, **fig["nonfinite"]} for name, fig in per_output.items() if fig.get("nonfinite")]
    if nonfinite:
        found["nonfinite"] = nonfinite
    reasons = [fig["reason"] for fig in per_output.values() if fig.get("reason")]
    if reasons:
        found["numerics_reason"] = "; ".join(reasons)
    return found


def looks_like_classifier(output) -> bool:
    """[batch, classes] logits with more than one class."""
    return output.dim() == 2 and output.shape[1] > 1


def first_output(out):
    return out[0] if isinstance(out, (tuple, list)) else out
