"""Per-cell statistics and the comparison of a new run against a baseline (numpy only; no qbench
imports, so every layer that measures, stores, gates or shows a figure uses these same statistics).

Latency samples are raw per-iteration nanoseconds from several *trials* (separate runner processes).
Two facts shape the comparison:

- samples inside one trial are autocorrelated (frequency/thermal drift, cache and allocator state);
- trials differ from each other by more than the within-trial noise (process placement, DVFS state).

So 300 samples from 3 processes hold far less than 300 independent draws' worth of information about
the latency a fresh process will see. Treating them as independent gives a confidence interval that
is much too narrow, and an unlucky process placement becomes a "regression". `ratio_of_medians`
therefore resamples whole trials first when trial labels are given (the hierarchical bootstrap).

Conventions: a latency ratio is new / base, so > 1 means the new run is slower. Medians, not means:
latency distributions are right-skewed with rare large outliers (preemption, page faults) that
should not move a nightly verdict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "FASTER",
    "NO_CHANGE",
    "SLOWER",
    "Comparison",
    "RatioEstimate",
    "accuracy_drop",
    "compare",
    "flag_growth",
    "is_significant",
    "mann_whitney",
    "median_ci",
    "ratio_of_medians",
    "relative_change",
    "summary_stats",
    "verdict",
]

Verdict = Literal["slower", "faster", "no significant change"]
SLOWER: Verdict = "slower"
FASTER: Verdict = "faster"
NO_CHANGE: Verdict = "no significant change"

_NS_PER_MS = 1e6


# --------------------------------------------------------------------------- per-cell statistics


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


# --------------------------------------------------------------------------- ratio of medians


@dataclass(frozen=True)
class RatioEstimate:
    """median(new) / median(base) with a bootstrap confidence interval [low, high]."""

    ratio: float
    low: float
    high: float
    n_base: int
    n_new: int
    method: str  # "flat", "hierarchical", or one-sided "hierarchical(base)" / "hierarchical(new)"
    confidence: float = 0.95


def ratio_of_medians(
    base: ArrayLike, new: ArrayLike, *, trials_base: ArrayLike | None = None, trials_new: ArrayLike | None = None,
    n_boot: int = 2000, confidence: float = 0.95, seed: int | None = 0, sizes_base: Mapping | None = None,
    sizes_new: Mapping | None = None, medians: tuple[float, float] | None = None,
) -> RatioEstimate:
    """new_median / base_median with a percentile-bootstrap CI; deterministic for a given seed.

    `trials_base` / `trials_new` label each sample with its trial (any hashable values, one per
    sample). With labels, that side is resampled hierarchically: draw as many trials as there are,
    with replacement, then draw each chosen trial's samples with replacement from within it.

    Why two levels: the trial (process) is the independent unit. Resampling trials carries the
    trial-to-trial variation (placement, frequency) into the CI, which a flat resample of pooled
    samples cannot see; it also carries each trial's autocorrelated wander, since a trial's own
    median moves with it. Resampling inside each trial adds the within-trial noise (iid inside a
    trial, which alone would understate autocorrelated noise; the trial level covers that).

    Known limits. The two stages count within-trial noise about twice (slightly wide), but with few
    trials the CI is still too narrow: k trials give few distinct trial resamples (10 for k=3) and
    a between-trial variance shrunk by (k-1)/k. Simulated null pairs (AR(1) noise, 5% sd, 0-5%
    trial offsets) excluded 1 in 7-15% of cases at nominal 95% with 3 trials, 4-9% with 5, 3-5%
    with 10; the flat bootstrap did so in 19-76%. So `is_significant` is optimistic at 3 trials;
    the gate stays safe because `verdict` also demands a material shift (see there). Prefer more
    trials over more iterations when a cell is noisy. A side with a single trial cannot show
    trial-to-trial variation and falls back to flat.

    The point estimate is the ratio of the pooled medians (the same medians `summary_stats`
    reports); the base and new runs are resampled independently. With few trials the bootstrap
    ratios are skewed and lumpy, so the percentile interval can put the estimate on its edge
    (`1.97× [1.97–2.39]`); the CI returned is the percentile interval made symmetric on the log
    scale around the estimate (`log_symmetric`): it contains the percentile interval, so it is never
    narrower, and a ratio and its inverse get mirror-image intervals.

    Quantile sketches (a history whose raw samples are summarised, see results/packing.py): a side
    given as each trial's sketch, with `sizes_*` = {trial label: how many samples the trial had}, is
    resampled as if every sketch value stood for size/len(sketch) samples (the same bisection, with
    weights); `medians` = (base, new): the exact pooled medians, which a sketch only approximates.
    """
    x_base, x_new = _as_samples("base", base), _as_samples("new", new)
    _check_bootstrap(confidence, n_boot)
    base_median, new_median = medians if medians else (float(np.median(x_base)), float(np.median(x_new)))
    if base_median <= 0:
        raise ValueError(f"base median must be > 0 to form a ratio, got {base_median}")

    rng = np.random.default_rng(seed)
    med_base, hier_base = _bootstrap_medians(x_base, trials_base, "trials_base", n_boot, rng, sizes_base)
    med_new, hier_new = _bootstrap_medians(x_new, trials_new, "trials_new", n_boot, rng, sizes_new)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero resampled median gives inf
        ratios = med_new / med_base
    ratio = new_median / base_median
    low, high = log_symmetric(ratio, *_percentile_interval(ratios, confidence))
    return RatioEstimate(ratio=ratio, low=float(low), high=float(high), n_base=_sample_count(x_base, sizes_base),
                         n_new=_sample_count(x_new, sizes_new), method=_METHODS[(hier_base, hier_new)],
                         confidence=confidence)


# RatioEstimate.method, by which sides were resampled hierarchically (base, new)
_METHODS = {(False, False): "flat", (True, True): "hierarchical", (True, False): "hierarchical(base)",
            (False, True): "hierarchical(new)"}


def _check_bootstrap(confidence: float, n_boot: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")


def _percentile_interval(replicates: np.ndarray, confidence: float) -> np.ndarray:
    """The central `confidence` share of the bootstrap replicates: [low, high]."""
    alpha = 1.0 - confidence
    return np.quantile(replicates, [alpha / 2, 1 - alpha / 2])


def _sample_count(x: np.ndarray, sizes: Mapping | None) -> int:
    """How many samples a side had: its sketches stand for sum(sizes) of them."""
    return int(sum(sizes.values())) if sizes else int(x.size)


def log_symmetric(estimate: float, low: float, high: float) -> tuple[float, float]:
    """[low, high] widened to be symmetric around `estimate` on the log scale (the wider side wins):
    the estimate is always the interval's geometric centre. Degenerate inputs are returned as given."""
    if not (estimate > 0 and 0 < low < math.inf and 0 < high < math.inf):
        return low, high
    h = max(math.log(high / estimate), math.log(estimate / low), 0.0)
    return estimate * math.exp(-h), estimate * math.exp(h)


def ci_half_width(median: float, low: float, high: float) -> float:
    """The relative half-width of a median's CI: its worse side around the median (one definition for
    the summary's stability column, the closing notes and the adaptive trials' precision)."""
    return max(median - low, high - median) / median if median > 0 else float("inf")


def median_ci(
    samples: ArrayLike,
    *,
    trials: ArrayLike | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    trial_sizes: Mapping | None = None,
) -> tuple[float, float, float]:
    """(median, low, high): one cell's median with the same two-level bootstrap CI as
    `ratio_of_medians` (whole trials first, then samples inside them). One trial falls back to
    flat, which cannot see trial-to-trial variation: treat that CI as a lower bound on the width.
    trial_sizes: the samples are per-trial quantile sketches of trials this big (see ratio_of_medians);
    the median returned is then the sketch's."""
    x = _as_samples("samples", samples)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    meds, _ = _bootstrap_medians(x, trials, "trials", n_boot, rng, trial_sizes)
    low, high = _percentile_interval(meds, confidence)
    return float(np.median(x)), float(low), float(high)


def _bootstrap_medians(
    x: np.ndarray, labels: ArrayLike | None, name: str, n_boot: int, rng: np.random.Generator,
    sizes: Mapping | None = None,
) -> tuple[np.ndarray, bool]:
    """n_boot bootstrap medians of x; True if the resampling was hierarchical. sizes: x holds quantile
    sketches of trials with these many samples ({label: count})."""
    if labels is None:
        draws = None if sizes is None else np.array([sum(sizes.values())])
        return _resampled_medians(x, np.array([x.size]), n_boot, rng, pick_trials=False, draws=draws), False
    lab = np.asarray(labels).ravel()
    if lab.size != x.size:
        raise ValueError(f"{name}: {lab.size} labels for {x.size} samples")
    names, trial = np.unique(lab, return_inverse=True)
    counts = np.bincount(trial)
    draws = None if sizes is None else np.array([sizes[n.item()] for n in names], dtype=np.int64)
    if counts.size == 1:
        return _resampled_medians(x, counts, n_boot, rng, pick_trials=False, draws=draws), False
    return _resampled_medians(x[np.argsort(trial, kind="stable")], counts, n_boot, rng, pick_trials=True,
                              draws=draws), True


def _resampled_medians(
    x_by_trial: np.ndarray, counts: np.ndarray, n_boot: int, rng: np.random.Generator, pick_trials: bool,
    draws: np.ndarray | None = None,
) -> np.ndarray:
    """Bootstrap medians; x_by_trial holds the samples grouped trial by trial (counts[j] of trial j).

    Each replicate fills k slots (k = number of trials): with `pick_trials`, each slot is a trial
    drawn with replacement (level 1), else slot j is trial j; each slot then draws as many samples
    as its trial has, with replacement, from within that trial (level 2).

    A median needs only how many draws fall below each value, never the draws themselves. So the
    replicate's median is found by bisection over the pooled sorted values (`_middle_positions`):
    that samples exactly the same distribution as drawing every value, in O(k log n) per replicate
    instead of O(n): a 3 µs model's 300k samples a trial cost no more than 300.
    draws: per trial, how many samples a slot draws when its values are a sketch (default: counts);
    each value then weighs draws/counts of its trial.
    """
    k = counts.size
    pooled, below, draws = _ranked_by_trial(x_by_trial, counts, draws)
    trial = rng.integers(0, k, size=(n_boot, k)) if pick_trials else np.broadcast_to(np.arange(k), (n_boot, k))
    lo = _middle_positions(below, trial, np.asarray(draws)[trial], rng)
    return 0.5 * (pooled[lo[0]] + pooled[lo[1]])


def _ranked_by_trial(x_by_trial: np.ndarray, counts: np.ndarray, draws: np.ndarray | None) -> tuple:
    """(the values sorted, below, draws per trial): below[j, m] is how many of trial j's values (by
    weight, when its values are a sketch drawn `draws[j]` times) sit at sorted positions < m."""
    k, n = counts.size, x_by_trial.size
    owner = np.repeat(np.arange(k), counts)
    order = np.argsort(x_by_trial, kind="stable")
    mine = owner[order][None, :] == np.arange(k)[:, None]
    if draws is None:
        below = np.zeros((k, n + 1), dtype=np.int64)
        np.cumsum(mine, axis=1, out=below[:, 1:])
        return x_by_trial[order], below, counts
    below = np.zeros((k, n + 1))
    np.cumsum(mine * (np.asarray(draws) / counts)[:, None], axis=1, out=below[:, 1:])
    return x_by_trial[order], below, draws


def _middle_positions(below: np.ndarray, trial: np.ndarray, size: np.ndarray, rng: np.random.Generator) -> list:
    """Per replicate (a row of `trial`: the trial in each slot, `size`: the draws of each slot), the sorted
    positions of its two middle order statistics (equal when the draws are odd), by bisection.

    The draws of a slot that lie in an interval split between its halves binomially, in proportion to
    how many of the slot's trial values each half holds (the counts of a multinomial, split interval by
    interval). The two order statistics share a bracket until the draws separate them, then each keeps
    its own (disjoint) interval, so every split is conditioned on its nearest known counts and the pair
    stays jointly exact.
    """
    n_boot, n = trial.shape[0], below.shape[1] - 1
    total = size.sum(axis=1)
    targets = ((total - 1) // 2, total // 2)
    # per target: a bracket [lo, hi) of positions with G(lo) <= target < G(hi), where G(m) is the number
    # of draws at positions < m; c_lo / c_hi hold G per slot at the bracket's ends
    lo = [np.zeros(n_boot, dtype=np.int64) for _ in targets]
    hi = [np.full(n_boot, n, dtype=np.int64) for _ in targets]
    c_lo = [np.zeros_like(size) for _ in targets]
    c_hi = [size.copy() for _ in targets]
    while any(np.any(h - l > 1) for l, h in zip(lo, hi)):
        shared = (lo[0] == lo[1]) & (hi[0] == hi[1])  # both targets still in one bracket: one draw
        drawn = []
        for t, target in enumerate(targets):
            open_ = hi[t] - lo[t] > 1
            mid = np.where(open_, (lo[t] + hi[t]) // 2, lo[t])
            c_mid = _split(below, trial, (lo[t], hi[t]), (c_lo[t], c_hi[t]), mid, rng)
            if t == 1:
                c_mid = np.where(shared[:, None], drawn[0], c_mid)
            drawn.append(c_mid)
            up = open_ & (c_mid.sum(axis=1) <= target)
            down = open_ & ~up
            lo[t], c_lo[t] = np.where(up, mid, lo[t]), np.where(up[:, None], c_mid, c_lo[t])
            hi[t], c_hi[t] = np.where(down, mid, hi[t]), np.where(down[:, None], c_mid, c_hi[t])
    return lo


def _split(below, trial, bracket, counts, mid, rng) -> np.ndarray:
    """Draws of each slot at positions < mid, given those below the bracket's ends ((lo, hi), (c_lo, c_hi))."""
    (lo_pos, hi_pos), (c_lo, c_hi) = bracket, counts
    width = below[trial, hi_pos[:, None]] - below[trial, lo_pos[:, None]]
    part = below[trial, mid[:, None]] - below[trial, lo_pos[:, None]]
    p = np.divide(part, width, out=np.zeros(width.shape), where=width > 0)
    return c_lo + rng.binomial(c_hi - c_lo, p)


# --------------------------------------------------------------------------- rank test


def mann_whitney(base: ArrayLike, new: ArrayLike) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test: (U, p_value).

    U is the statistic of `base` (rank sum of base minus n_base(n_base+1)/2), as in
    `scipy.stats.mannwhitneyu(base, new, method="asymptotic")`; the p-value is the normal
    approximation with tie correction and continuity correction.

    It treats every sample as independent, so with autocorrelated samples and trial effects its
    p-value is far too small: at a few hundred samples it calls almost any real difference, even a
    0.5% one or one made by process placement. Report it as a rank-based cross-check; the nightly
    verdict uses the (hierarchical) bootstrap CI.
    """
    x = _as_samples("base", base)
    y = _as_samples("new", new)
    n1, n2 = x.size, y.size
    n = n1 + n2
    ranks, tie_sizes = _average_ranks(np.concatenate([x, y]))
    u = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2)
    tie_term = float(np.sum(tie_sizes**3 - tie_sizes)) / (n * (n - 1))
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term))
    if sigma == 0:  # every value tied: no evidence either way
        return u, 1.0
    z = (abs(u - n1 * n2 / 2) - 0.5) / sigma
    return u, min(1.0, math.erfc(z / math.sqrt(2)))  # erfc(z/sqrt2) = 2 * normal upper tail


def _average_ranks(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks with ties given their average rank, and the size of every tie group."""
    order = np.argsort(z, kind="mergesort")
    zs = z[order]
    first = np.flatnonzero(np.r_[True, zs[1:] != zs[:-1]])  # start of each group of equal values
    sizes = np.diff(np.r_[first, zs.size])
    group_rank = first + (sizes + 1) / 2
    ranks = np.empty(z.size)
    ranks[order] = np.repeat(group_rank, sizes)
    return ranks, sizes.astype(np.float64)


# --------------------------------------------------------------------------- verdict


def verdict(estimate: RatioEstimate, threshold: float = 0.05) -> Verdict:
    """The nightly gate's call on a latency ratio.

    - "slower" only if the whole CI lies above 1 + threshold (low > 1 + threshold): the slowdown is
      both statistically significant and at least `threshold`. This is a one-sided test of
      "ratio <= 1 + threshold" at level (1 - confidence) / 2, so noise, or a real but immaterial
      slowdown, fails the gate at most 2.5% of the time with a calibrated 95% CI.
    - "faster" if high < 1 - threshold (symmetric in ratio units).
    - otherwise "no significant change". That label also covers "significant but below threshold"
      (e.g. [1.01, 1.03]) and "inconclusive" (a CI so wide it also reaches past 1 + threshold);
      see `is_significant` and the CI itself to tell them apart.

    Measured with 3 trials x 100 autocorrelated samples (5% sd) per run, hierarchical CI, 400
    simulated pairs per row; trial-offset sd 2% / 5%:
    - no change: a gate alarm (either way) in 0% / 1.0% of pairs (flat bootstrap: 0% / 10.7%);
    - a true 5% slowdown (exactly the threshold): "slower" in 5.0% / 7.2% (nominal 2.5%, because
      the CI is too narrow with 3 trials, see `ratio_of_medians`);
    - a true 10% slowdown: "slower" in 80% / 33%.
    The price of the rule: a slowdown r is caught reliably only when the CI half-width is well under
    r - threshold, which on a noisy cell takes more trials, not more iterations per trial.
    Boundaries are strict: low == 1 + threshold is not "slower".
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    if estimate.low > 1 + threshold:
        return SLOWER
    if estimate.high < 1 - threshold:
        return FASTER
    return NO_CHANGE


def is_significant(estimate: RatioEstimate) -> bool:
    """True if the CI excludes 1 (a difference at the CI's level, whatever its size)."""
    return estimate.low > 1 or estimate.high < 1


@dataclass(frozen=True)
class Comparison:
    """One latency comparison, as a report or the nightly gate consumes it."""

    ratio: float
    low: float
    high: float
    confidence: float
    p_value: float  # Mann-Whitney on pooled samples: informational, see `mann_whitney`
    verdict: Verdict
    significant: bool  # CI excludes 1 (may be True with verdict "no significant change")
    threshold: float
    n_base: int
    n_new: int
    method: str

    @property
    def regression(self) -> bool:
        return self.verdict == SLOWER

    def to_dict(self) -> dict[str, Any]:
        """For JSON, where no key may contradict the verdict: no `p_value` (on pooled samples it says
        "significant" beside "no significant change"; the bootstrap CI over trials is what judges), and
        `significant` is the verdict's (a change beyond the threshold); whether the CI merely excludes
        1.0 is `ci_excludes_one`."""
        d = asdict(self)
        d.pop("p_value")
        d["ci_excludes_one"], d["significant"] = self.significant, self.verdict != NO_CHANGE
        return d


def compare(
    base: ArrayLike,
    new: ArrayLike,
    *,
    trials_base: ArrayLike | None = None,
    trials_new: ArrayLike | None = None,
    threshold: float = 0.05,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
    sizes_base: Mapping | None = None,
    sizes_new: Mapping | None = None,
    medians: tuple[float, float] | None = None,
) -> Comparison:
    """ratio_of_medians + mann_whitney + verdict for one cell's latency samples (nanoseconds), or for
    their per-trial quantile sketches (sizes_*, medians: see ratio_of_medians)."""
    est = ratio_of_medians(
        base,
        new,
        trials_base=trials_base,
        trials_new=trials_new,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        sizes_base=sizes_base,
        sizes_new=sizes_new,
        medians=medians,
    )
    _, p = mann_whitney(base, new)
    return Comparison(
        ratio=est.ratio,
        low=est.low,
        high=est.high,
        confidence=est.confidence,
        p_value=p,
        verdict=verdict(est, threshold),
        significant=is_significant(est),
        threshold=threshold,
        n_base=est.n_base,
        n_new=est.n_new,
        method=est.method,
    )


# --------------------------------------------------------------------------- single-number metrics
# Size, memory and accuracy numbers are deterministic per build (no per-iteration noise to sample),
# so they are compared directly against a threshold, without a CI.


def relative_change(base_value: float, new_value: float) -> float:
    """(new - base) / base: +0.10 means 10% larger. A zero base gives 0.0 if new is 0, else inf."""
    base_value, new_value = _as_number("base_value", base_value), _as_number("new_value", new_value)
    if base_value == 0:
        return 0.0 if new_value == 0 else math.copysign(math.inf, new_value)
    return (new_value - base_value) / abs(base_value)


def flag_growth(base: float, new: float, threshold: float) -> bool:
    """True if a size/memory metric grew by more than `threshold` (relative, e.g. 0.05 = 5%)."""
    return relative_change(base, new) > threshold


def accuracy_drop(base: float, new: float, abs_threshold: float) -> tuple[float, bool]:
    """(drop, flagged) for a higher-is-better metric: SQNR in dB, top-1 agreement.

    drop = base - new, in the metric's own units (absolute, not relative: 3 dB of SQNR means the
    same at 20 dB as at 40 dB). flagged = drop > abs_threshold. SQNR is +inf for bit-identical
    outputs: inf -> inf is no drop; inf -> finite is an infinite drop (exactness lost), flagged.
    """
    base, new = _as_number("base", base, allow_inf=True), _as_number("new", new, allow_inf=True)
    drop = 0.0 if base == new else base - new
    return drop, drop > abs_threshold


# --------------------------------------------------------------------------- input checks


def _as_samples(name: str, values: ArrayLike) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError(f"{name}: no samples")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: samples must be finite")
    return x


def _as_number(name: str, value: float, allow_inf: bool = False) -> float:
    # NaN would compare False everywhere and silently pass the gate, so it is an error.
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return v


# A trial's samples beyond this many are thinned for a bootstrap (every k-th of the sorted values keeps
# its quantiles): a 3 µs model gives 300k samples per trial, and a CI over them would take minutes.
CI_SAMPLES_PER_TRIAL = 2000


def thin_for_ci(samples) -> np.ndarray:
    """One trial's samples, at most CI_SAMPLES_PER_TRIAL of them, quantiles kept."""
    x = np.asarray(samples, dtype=np.float64)
    return np.sort(x)[:: -(-x.size // CI_SAMPLES_PER_TRIAL)] if x.size > CI_SAMPLES_PER_TRIAL else x
