"""Latency statistics of a cell, computed from the raw per-iteration samples of all its trials."""

from __future__ import annotations

from typing import Sequence

STAT_NAMES = ("min", "median", "mean", "std", "p90", "p99", "cv")


def latency_stats_ms(samples_ns: Sequence[int]) -> dict:
    """min/median/mean/std/p90/p99 in milliseconds and the coefficient of variation (std/mean).

    Percentiles use numpy's linear interpolation; std uses ddof=1 (a sample, not a population).
    """
    import numpy as np

    a = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if a.size == 0:
        raise ValueError("no samples")
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    mean = float(a.mean())
    return {
        "min": float(a.min()),
        "median": float(np.median(a)),
        "mean": mean,
        "std": std,
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "cv": std / mean if mean else 0.0,
        "count": int(a.size),
    }


def trial_medians_ms(samples_by_trial: dict[int, Sequence[int]]) -> dict[int, float]:
    import numpy as np

    return {t: float(np.median(np.asarray(s, dtype=np.float64))) / 1e6 for t, s in samples_by_trial.items()}
