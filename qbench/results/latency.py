"""A cell's latency statistics from its raw per-iteration samples (all trials pooled): the one
function behind the stored columns, the summary, the reports and the notebooks."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

_NS_PER_MS = 1e6


def summary_stats(samples_ns: ArrayLike) -> dict[str, float | int]:
    """The canonical per-cell latency statistics, in milliseconds (input: nanoseconds).

    Keys: min, median, mean, std, p90, p95, p99, cv, count. Percentiles use numpy's default (linear
    interpolation between order statistics). `std` uses ddof=1: the samples are a sample of the
    runner's latency distribution, not the whole of it (it only matters for short runs). `cv` is
    std / mean (unitless). With one sample, std and cv are NaN (undefined), not 0.

    Note: std describes the spread of single iterations; because samples are autocorrelated,
    std / sqrt(count) is NOT the uncertainty of the mean. Use `ratio_of_medians` to compare runs.
    """
    x = np.asarray(samples_ns, dtype=np.float64).ravel() / _NS_PER_MS
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError("samples_ns must be a non-empty array of finite numbers")
    mean = float(np.mean(x))
    std = float(np.std(x, ddof=1)) if x.size > 1 else math.nan
    p90, p95, p99 = np.percentile(x, [90, 95, 99])
    return {
        "min": float(np.min(x)),
        "median": float(np.median(x)),
        "mean": mean,
        "std": std,
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "cv": std / mean if mean != 0 else math.nan,
        "count": int(x.size),
    }
