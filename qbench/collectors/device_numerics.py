"""Numerics and accuracy from the outputs of the device that was timed, not only the host's.

int8 kernels differ by CPU (NEON vs AVX rounding paths; qemu's `max` CPU even gave wrong int8
outputs), so each cell's runner, on its device, runs the held-out inputs (and the dataset's eval
split, where there is one) once more, in one process (`--input-sets N`); the outputs come back and
are compared with the fp32 eager reference the host computed at prepare time.

At prepare time (`save_inputs`) the artifact folder gets:
  heldout.bin / heldout_reference.npy   the held-out input sets, raw, and fp32 eager first outputs
  eval.bin / eval_labels.npy / eval_valid.npy   the eval split in fixed batches, where it has class labels
`compare` turns the device's outputs into the cell's `device_numerics`, and `disagreement` says
whether they differ from the host's figures beyond a tolerance.
"""

from __future__ import annotations

import math
from pathlib import Path

HELDOUT, REFERENCE = "heldout.bin", "heldout_reference.npy"
EVAL, LABELS, VALID = "eval.bin", "eval_labels.npy", "eval_valid.npy"
KEYS = ("sqnr_db", "max_abs_error", "cosine_similarity", "top1_agreement", "accuracy", "agrees_with_host")

# Beyond these the device's figures "disagree" with the host's (a different kernel path, a broken CPU
# feature, a miscompiled build). Both SQNRs above HIGH_SQNR_DB are the same thing (fp32 rounding).
SQNR_TOLERANCE_DB = 1.5
HIGH_SQNR_DB = 60.0


def _raw(tensors) -> bytes:
    return b"".join(t.contiguous().numpy().tobytes() for t in tensors)


def save_inputs(folder: Path, model, held_out, evaluation, batch: int, output: str | None = None) -> None:
    """Write the device-numerics inputs and references beside the .pte (called while preparing).
    `output`: the headline leaf of a model with structured outputs (the suite's `output:`)."""
    import numpy as np
    import torch

    from qbench.models.outputs import select_output

    with torch.no_grad():
        refs = [select_output(model(*b), output).detach().float().numpy() for b in held_out]
    (folder / HELDOUT).write_bytes(b"".join(_raw(b) for b in held_out))
    np.save(folder / REFERENCE, np.stack(refs))
    if evaluation is not None and evaluation.labels is not None and evaluation.has_class_labels:
        from qbench.datasets.batches import fixed_batches

        batches = fixed_batches(evaluation, batch)
        (folder / EVAL).write_bytes(b"".join(_raw(b) for b, _ in batches))
        np.save(folder / LABELS, evaluation.labels.long().numpy())
        np.save(folder / VALID, np.array([v for _, v in batches], dtype=np.int64))


def first_outputs(raw: bytes, sets: int, outputs: list[dict], index: int = 0):
    """The runner's --outputs bytes for `sets` input sets -> output `index` (the headline leaf; the
    first by default) of each set, stacked (float32). A `none` leaf has no bytes."""
    import numpy as np

    sizes = [0 if o["dtype"] == "none" else int(np.prod(o["shape"])) * np.dtype(o["dtype"]).itemsize
             for o in outputs]
    per_set = sum(sizes)
    if len(raw) != per_set * sets:
        raise ValueError(f"the runner wrote {len(raw)} output bytes, expected {per_set} x {sets} sets")
    leaf, start = outputs[index], sum(sizes[:index])
    return np.stack([np.frombuffer(raw[k * per_set + start: k * per_set + start + sizes[index]], dtype=leaf["dtype"])
                     .reshape(leaf["shape"]).astype(np.float32) for k in range(sets)])


def compare(reference, device, classifier: bool, eval_out=None, labels=None, valid=None) -> dict:
    """The `device_numerics` figures (agrees_with_host is filled by `judge`)."""
    from qbench.collectors.numerics import compare_outputs

    num = compare_outputs(list(reference), list(device), classifier, program="device's program")
    result = {k: num.get(k) for k in ("sqnr_db", "max_abs_error", "cosine_similarity", "top1_agreement")}
    if result["sqnr_db"] is not None and math.isinf(result["sqnr_db"]):
        result["sqnr_db"] = 999.0  # JSON and SQLite have no infinity (as the host's column)
    result["samples"] = num["samples"]
    result.update({k: num[k] for k in ("nonfinite", "reason") if num.get(k)})
    result["accuracy"] = None
    if eval_out is not None:
        import numpy as np

        preds = np.concatenate([o[:v].reshape(v, -1).argmax(axis=1) for o, v in zip(eval_out, valid)])
        result["accuracy"] = float((preds == labels[: len(preds)]).mean())
        result["accuracy_samples"] = int(len(preds))
    result["agrees_with_host"] = None
    return result


def judge(device: dict, host_numerics: dict, host_accuracy: float | None) -> dict:
    """Fill agrees_with_host (and `disagreement`, the reason) by comparing with the host's figures.
    NaN/inf outputs are never agreement: not judged (None) when both sides' figures are missing for
    the same reason, a disagreement when only one side has them."""
    if device.get("nonfinite") or host_numerics.get("nonfinite"):
        return _judge_nonfinite(device, host_numerics)
    if all(device.get(k) is None for k in ("sqnr_db", "max_abs_error", "cosine_similarity", "top1_agreement", "accuracy")):
        device["agrees_with_host"], device["disagreement"] = None, None  # nothing to compare (`reason`)
        return device
    reasons = []
    hs, ds = host_numerics.get("sqnr_db"), device.get("sqnr_db")
    if hs is not None and ds is not None:
        hs = 999.0 if math.isinf(hs) else hs
        if not (hs >= HIGH_SQNR_DB and ds >= HIGH_SQNR_DB) and abs(hs - ds) > SQNR_TOLERANCE_DB:
            reasons.append(f"SQNR {ds:.1f} dB on the device vs {hs:.1f} dB on the host")
    n = device.get("samples") or 1
    ht, dt = host_numerics.get("top1_agreement"), device.get("top1_agreement")
    if ht is not None and dt is not None and abs(ht - dt) > 1.0 / n + 1e-9:
        reasons.append(f"top-1 agreement {dt:.2f} on the device vs {ht:.2f} on the host")
    ha, da = host_accuracy, device.get("accuracy")
    if ha is not None and da is not None:
        m = device.get("accuracy_samples") or 1
        if abs(ha - da) > 1.0 / m + 1e-9:
            reasons.append(f"accuracy {da:.4f} on the device vs {ha:.4f} on the host")
    device["agrees_with_host"] = not reasons
    device["disagreement"] = "; ".join(reasons) or None
    return device


def _judge_nonfinite(device: dict, host_numerics: dict) -> dict:
    on_device, on_host = device.get("nonfinite"), host_numerics.get("nonfinite")
    if on_device and on_host:
        device["agrees_with_host"] = None
        device["disagreement"] = None
        device["reason"] = f"not compared (NaN/inf on the host too): {device.get('reason')}"
        return device
    device["agrees_with_host"] = False
    device["disagreement"] = (f"the device's outputs hold NaN/inf, the host's do not ({device.get('reason')})"
                              if on_device else f"the host's outputs hold NaN/inf, the device's do not "
                              f"({host_numerics.get('reason')})")
    return device
