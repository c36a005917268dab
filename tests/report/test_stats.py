"""Known-answer tests for qbench.stats (all seeded; the whole file runs in a few seconds)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from qbench import stats
from qbench.stats import (
    FASTER,
    NO_CHANGE,
    SLOWER,
    RatioEstimate,
    accuracy_drop,
    compare,
    flag_growth,
    is_significant,
    mann_whitney,
    median_ci,
    ratio_of_medians,
    relative_change,
    summary_stats,
    verdict,
)


def make_run(
    rng: np.random.Generator,
    *,
    trials: int = 3,
    n: int = 100,
    sigma: float = 0.05,
    rho: float = 0.5,
    tau: float = 0.02,
    scale: float = 1.0,
    offsets: list[float] | None = None,
    median_ns: float = 2e6,
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic run: `trials` processes of `n` iterations each, in nanoseconds.

    log latency = log(median_ns * scale) + trial offset + AR(1) noise: the offset is N(0, tau) per
    trial (process placement) unless `offsets` (multiplicative) are given; the AR(1) term has
    stationary sd `sigma` and lag-1 correlation `rho` (autocorrelated iterations).
    """
    log_off = np.log(offsets) if offsets is not None else rng.normal(0.0, tau, trials)
    trials = len(log_off)
    noise = np.empty((trials, n))
    noise[:, 0] = rng.normal(0.0, sigma, trials)
    innovations = rng.normal(0.0, sigma * math.sqrt(1 - rho**2), (trials, n))
    for i in range(1, n):
        noise[:, i] = rho * noise[:, i - 1] + innovations[:, i]
    samples = median_ns * scale * np.exp(np.asarray(log_off)[:, None] + noise)
    return samples.ravel(), np.repeat(np.arange(trials), n)


# --------------------------------------------------------------------------- known answers


def test_identical_distributions_give_no_change():
    rng = np.random.default_rng(11)
    base, tb = make_run(rng, trials=5)
    new, tn = make_run(rng, trials=5)
    c = compare(base, new, trials_base=tb, trials_new=tn)
    assert c.verdict == NO_CHANGE
    assert c.low <= 1.0 <= c.high
    assert not c.significant
    assert c.method == "hierarchical"
    assert abs(c.ratio - 1.0) < 0.03


def test_ten_percent_shift_is_slower():
    rng = np.random.default_rng(12)
    base, tb = make_run(rng, trials=5, tau=0.01)
    new, tn = make_run(rng, trials=5, tau=0.01, scale=1.10)  # x1.10 with its own, independent noise
    c = compare(base, new, trials_base=tb, trials_new=tn)
    assert c.verdict == SLOWER
    assert c.significant and c.low > 1.05
    assert c.ratio == pytest.approx(1.10, abs=0.02)
    assert c.low <= c.ratio <= c.high
    assert c.p_value < 1e-6

    # and the mirror image
    c = compare(new, base, trials_base=tn, trials_new=tb)
    assert c.verdict == FASTER
    assert c.ratio == pytest.approx(1 / 1.10, abs=0.02)


def test_false_alarms_on_noise_stay_within_derived_bound():
    """50 pairs of same-distribution runs at threshold 5%: count the gate's false alarms.

    Derivation of the bound. An alarm needs low > 1.05 (or high < 0.95), and the percentile CI
    contains the point estimate, so an alarm implies |ratio - 1| > 5%. For this noise model the log
    ratio of medians has sd ~= sqrt(2 * (tau^2/k + (pi/2) * sigma^2 * (1+rho)/(1-rho) / (k*n)))
    = sqrt(2 * (0.02^2/3 + 1.571 * 0.05^2 * 3 / 300)) = 0.0186, so
    P(alarm) <= P(|Z| > log(1.05)/0.0186 = 2.62) = 0.88% per pair. Over 50 independent pairs the
    count is then stochastically below Binomial(50, 0.0088): mean 0.44, P(count >= 3) = 1.0%.
    Bound asserted: at most 2 false alarms. (The bound is loose: an alarm needs the whole CI, not
    just the estimate, past 5%; the measured count is 0.)
    """
    k, n, sigma, rho, tau = 3, 100, 0.05, 0.5, 0.02
    within = math.pi / 2 * sigma**2 * (1 + rho) / (1 - rho) / (k * n)  # var of a median, AR(1)
    predicted_sd = math.sqrt(2 * (tau**2 / k + within))
    assert predicted_sd == pytest.approx(0.0186, abs=5e-4)

    rng = np.random.default_rng(2024)
    alarms, significant, log_ratios = 0, 0, []
    for i in range(50):
        base, tb = make_run(rng, trials=k, n=n, sigma=sigma, rho=rho, tau=tau)
        new, tn = make_run(rng, trials=k, n=n, sigma=sigma, rho=rho, tau=tau)
        est = ratio_of_medians(base, new, trials_base=tb, trials_new=tn, n_boot=500, seed=i)
        alarms += verdict(est, threshold=0.05) != NO_CHANGE
        significant += is_significant(est)
        log_ratios.append(math.log(est.ratio))

    # the premise of the derivation holds: the observed spread matches the predicted one
    assert np.std(log_ratios, ddof=1) == pytest.approx(predicted_sd, rel=0.35)
    assert alarms <= 2
    assert alarms == 0  # what this seed actually gives; documents the slack in the bound
    # `significant` (CI excludes 1) has no materiality margin. With only 3 trials the trial-level
    # bootstrap is anti-conservative (few distinct resamples, (k-1)/k variance shrink): 11.5% of 400
    # null pairs of this very model at nominal 95% in an offline run; this seed gives 8 of 50.
    # Checked loosely here, not at the nominal 5%.
    assert significant <= 12


def test_trial_effects_hierarchical_is_wider_and_does_not_flag():
    """Six process placements from one +-5% distribution; the new run happened to get the slow ones.

    Pooled as 300 independent samples, the flat bootstrap sees a tight 8% slowdown and fails the
    gate. The hierarchical bootstrap sees only 3 + 3 placements and reports no significant change.
    """
    rng = np.random.default_rng(3)
    base, tb = make_run(rng, offsets=[0.95, 1.00, 1.05], sigma=0.03)
    new, tn = make_run(rng, offsets=[1.04, 1.08, 1.12], sigma=0.03)

    flat = ratio_of_medians(base, new)
    hier = ratio_of_medians(base, new, trials_base=tb, trials_new=tn)
    assert flat.method == "flat" and hier.method == "hierarchical"
    assert flat.ratio == hier.ratio == pytest.approx(1.08, abs=0.01)

    assert verdict(flat) == SLOWER  # the false alarm
    assert verdict(hier) == NO_CHANGE
    # CI [1.02, 1.15] still excludes 1 (3 + 3 trials make even this CI optimistic, see
    # ratio_of_medians), but it does not show a shift of 5% or more, so the gate stays green
    assert hier.low < 1.05 < flat.low
    assert (hier.high - hier.low) > 4 * (flat.high - flat.low)
    # the rank test has the flat bootstrap's blind spot: it treats the 300 samples as independent
    assert mann_whitney(base, new)[1] < 1e-10


# --------------------------------------------------------------------------- bootstrap mechanics


def test_ratio_of_medians_is_deterministic_with_seed():
    rng = np.random.default_rng(5)
    base, tb = make_run(rng)
    new, tn = make_run(rng)
    a = ratio_of_medians(base, new, trials_base=tb, trials_new=tn, seed=7)
    b = ratio_of_medians(base, new, trials_base=tb, trials_new=tn, seed=7)
    c = ratio_of_medians(base, new, trials_base=tb, trials_new=tn, seed=8)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.ratio == c.ratio == float(np.median(new) / np.median(base))
    assert (a.n_base, a.n_new, a.confidence) == (300, 300, 0.95)


def test_unequal_trial_lengths_and_one_sided_labels():
    rng = np.random.default_rng(6)
    base, _ = make_run(rng, trials=1, n=420)
    tb = np.repeat(["t0", "t1", "t2"], [100, 200, 120])  # any hashable labels, ragged trials
    new, tn = make_run(rng, trials=4, n=80)
    est = ratio_of_medians(base, new, trials_base=tb, trials_new=tn, n_boot=500)
    assert est.method == "hierarchical"
    assert est.low < est.ratio < est.high

    assert ratio_of_medians(base, new, trials_new=tn, n_boot=200).method == "hierarchical(new)"
    assert ratio_of_medians(base, new, trials_base=tb, n_boot=200).method == "hierarchical(base)"
    # a single trial cannot show trial-to-trial variation: flat, and the very same resamples
    one = np.zeros(base.size)
    flat = ratio_of_medians(base, new, n_boot=200)
    assert ratio_of_medians(base, new, trials_base=one, n_boot=200) == flat


def test_bootstrap_medians_follow_the_exact_two_level_distribution():
    """The bisection engine draws counts, not samples: its medians must have the distribution of
    resampling every value. Two small trials (ragged, so odd and even totals) are enumerated exactly."""
    import itertools
    from collections import Counter
    from fractions import Fraction

    a, b = [0.0, 1.0, 2.0], [10.0, 11.0]
    exact: Counter = Counter()
    for slots in itertools.product((a, b), repeat=2):  # level 1: which trial fills each slot
        weight = Fraction(1, 4) / math.prod(len(t) ** len(t) for t in slots)
        for draws in itertools.product(*[itertools.product(t, repeat=len(t)) for t in slots]):
            exact[float(np.median([v for d in draws for v in d]))] += weight
    x, counts = np.array(a + b), np.array([3, 2])
    meds = stats._resampled_medians(x, counts, 200_000, np.random.default_rng(3), pick_trials=True)
    seen = Counter(meds.tolist())
    assert set(seen) <= set(exact)
    for value, p in exact.items():
        assert seen[value] / meds.size == pytest.approx(float(p), abs=0.005), value


def test_ratio_of_medians_rejects_bad_input():
    x = np.ones(10)
    with pytest.raises(ValueError, match="no samples"):
        ratio_of_medians([], x)
    with pytest.raises(ValueError, match="finite"):
        ratio_of_medians(x, [1.0, np.nan])
    with pytest.raises(ValueError, match="labels"):
        ratio_of_medians(x, x, trials_base=[0, 1])
    with pytest.raises(ValueError, match="confidence"):
        ratio_of_medians(x, x, confidence=95)
    with pytest.raises(ValueError, match="median"):
        ratio_of_medians(np.zeros(3), x)


# --------------------------------------------------------------------------- verdict


def _est(low: float, high: float, ratio: float | None = None) -> RatioEstimate:
    return RatioEstimate(ratio or (low + high) / 2, low, high, 100, 100, "flat")


@pytest.mark.parametrize(
    ("low", "high", "expected", "significant"),
    [
        (1.06, 1.12, SLOWER, True),  # significant and material
        (1.01, 1.03, NO_CHANGE, True),  # significant but below threshold
        (1.03, 1.13, NO_CHANGE, True),  # estimate past 5%, but not shown to be
        (1.05, 1.10, NO_CHANGE, True),  # boundary is strict
        (0.97, 1.04, NO_CHANGE, False),
        (0.90, 1.20, NO_CHANGE, False),  # inconclusive: CI too wide
        (0.88, 0.94, FASTER, True),
        (0.96, 0.99, NO_CHANGE, True),
    ],
)
def test_verdict_rule(low, high, expected, significant):
    est = _est(low, high)
    assert verdict(est, threshold=0.05) == expected
    assert is_significant(est) is significant


def test_verdict_threshold_zero_is_significance():
    assert verdict(_est(1.001, 1.01), threshold=0.0) == SLOWER
    with pytest.raises(ValueError):
        verdict(_est(1.0, 1.1), threshold=-0.1)


def test_comparison_to_dict_is_json_ready():
    rng = np.random.default_rng(10)
    base, tb = make_run(rng)
    new, tn = make_run(rng, scale=1.02)
    c = compare(base, new, trials_base=tb, trials_new=tn, threshold=0.05)
    d = c.to_dict()
    assert set(d) == {
        "ratio", "low", "high", "confidence", "verdict", "significant", "ci_excludes_one",
        "threshold", "n_base", "n_new", "method",
    }  # fmt: skip  (no p_value: it contradicted the verdict, see Comparison.to_dict)
    assert d["verdict"] == c.verdict and d["threshold"] == 0.05
    assert json.loads(json.dumps(d)) == d
    assert c.regression is (c.verdict == SLOWER)


# --------------------------------------------------------------------------- Mann-Whitney


def test_mann_whitney_hand_computed():
    # base ranks 1,2,3 of 6: U = 6 - 6 = 0, mu = 4.5, sigma^2 = 3*3/12 * 7 = 5.25
    u, p = mann_whitney([1, 2, 3], [4, 5, 6])
    assert u == 0.0
    assert p == pytest.approx(math.erfc((4.5 - 0.5) / math.sqrt(5.25) / math.sqrt(2)), rel=1e-12)
    assert p == pytest.approx(0.0809, abs=1e-4)

    # with ties: pooled 1,2,2,2,3,3,4,5 -> ranks 1,3,3,3,5.5,5.5,7,8; base rank sum 12.5, U = 2.5,
    # mu = 8, tie term = ((27-3) + (8-2)) / (8*7), sigma^2 = 16/12 * (9 - 30/56)
    u, p = mann_whitney([1, 2, 2, 3], [2, 3, 4, 5])
    assert u == 2.5
    sigma = math.sqrt(16 / 12 * (9 - 30 / 56))
    assert p == pytest.approx(math.erfc((5.5 - 0.5) / sigma / math.sqrt(2)), rel=1e-12)

    assert mann_whitney([3, 3], [3, 3]) == (2.0, 1.0)  # all tied: no evidence


def test_mann_whitney_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(13)
    cases = [
        (rng.lognormal(0, 0.1, 300), rng.lognormal(0.02, 0.1, 250)),
        (np.round(rng.normal(10, 1, 80)), np.round(rng.normal(10.5, 1, 90))),  # heavy ties
        (rng.normal(0, 1, 40), rng.normal(0, 1, 40)),
    ]
    for x, y in cases:
        ref = scipy_stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
        u, p = mann_whitney(x, y)
        assert u == pytest.approx(ref.statistic, rel=1e-12)
        assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


# --------------------------------------------------------------------------- single-number metrics


def test_relative_change_and_flag_growth():
    assert relative_change(100, 110) == pytest.approx(0.10)
    assert relative_change(100, 90) == pytest.approx(-0.10)
    assert relative_change(0, 0) == 0.0
    assert relative_change(0, 5) == math.inf
    assert flag_growth(1000, 1060, 0.05) is True
    assert flag_growth(1000, 1050, 0.05) is False  # strict, like the verdict
    assert flag_growth(1000, 900, 0.05) is False  # shrinking is never growth
    with pytest.raises(ValueError):
        flag_growth(float("nan"), 1.0, 0.05)  # a missing metric must not silently pass


def test_accuracy_drop():
    assert accuracy_drop(40.0, 37.5, 2.0) == (2.5, True)  # SQNR dB
    assert accuracy_drop(40.0, 38.5, 2.0) == (1.5, False)
    assert accuracy_drop(0.99, 1.00, 0.005) == (pytest.approx(-0.01), False)  # improvement
    assert accuracy_drop(math.inf, math.inf, 1.0) == (0.0, False)  # bit-exact both times
    assert accuracy_drop(math.inf, 60.0, 1.0) == (math.inf, True)  # exactness lost
    with pytest.raises(ValueError):
        accuracy_drop(0.9, float("nan"), 0.01)


# --------------------------------------------------------------------------- summary_stats


def test_summary_stats_exact():
    s = summary_stats(np.array([4e6, 1e6, 10e6, 2e6, 3e6]))  # ns -> 1, 2, 3, 4, 10 ms
    assert s["count"] == 5 and isinstance(s["count"], int)
    assert s["min"] == 1.0
    assert s["median"] == 3.0
    assert s["mean"] == 4.0
    # ddof=1: squared deviations 9 + 4 + 1 + 0 + 36 = 50, / (5 - 1) = 12.5
    assert s["std"] == pytest.approx(math.sqrt(12.5), rel=1e-12)
    # linear percentiles: p90 at rank 0.9*4 = 3.6 -> 4 + 0.6*(10-4); p99 at 3.96 -> 4 + 0.96*6
    assert s["p90"] == pytest.approx(7.6, rel=1e-12)
    assert s["p95"] == pytest.approx(8.8, rel=1e-12)  # rank 3.8 -> 4 + 0.8*6
    assert s["p99"] == pytest.approx(9.76, rel=1e-12)
    assert s["cv"] == pytest.approx(math.sqrt(12.5) / 4, rel=1e-12)
    assert set(s) == {"min", "median", "mean", "std", "p90", "p95", "p99", "cv", "count"}


def test_summary_stats_edge_cases():
    one = summary_stats([1.5e6])
    assert one["median"] == 1.5 and one["count"] == 1
    assert math.isnan(one["std"]) and math.isnan(one["cv"])
    with pytest.raises(ValueError):
        summary_stats([])


# --------------------------------------------------------------------------- pinned outputs
# Exact outputs of the bootstrap on fixed data, recorded before ratio_of_medians and _resampled_medians
# were split into smaller functions: a refactor must reproduce every replicate (same seed, same draws).


def _pinned_data():
    rng = np.random.default_rng(12345)
    base = np.concatenate([rng.normal(1e6 + 3e4 * t, 5e4, 40 + 7 * t) for t in range(3)])  # 141: odd
    new = np.concatenate([rng.normal(1.08e6 + 2e4 * t, 6e4, 51 + 4 * t) for t in range(4)])  # 228: even
    return base, new, np.repeat(["a", "b", "c"], [40, 47, 54]), np.repeat([0, 1, 2, 3], [51, 55, 59, 63])


_SKETCH_NEW = {0: 5100, 1: 5500, 2: 5900, 3: 6300}
PINNED_RATIOS = [
    ({}, (1.0706888035361601, 1.055393915343779, 1.0862053469810649, 141, 228, "flat")),
    ({"trials_base": "tb", "trials_new": "tn"},
     (1.0706888035361601, 1.0310623655641442, 1.1118381897204221, 141, 228, "hierarchical")),
    ({"trials_base": "tb"}, (1.0706888035361601, 1.0327578526240018, 1.1100128758208117, 141, 228, "hierarchical(base)")),
    ({"trials_new": "tn", "seed": 7, "n_boot": 500, "confidence": 0.9},
     (1.0706888035361601, 1.0508175144059249, 1.0909358649829815, 141, 228, "hierarchical(new)")),
    ({"trials_base": "tb", "trials_new": "tn", "sizes_base": {"a": 4000, "b": 4700, "c": 5401}, "sizes_new": _SKETCH_NEW,
      "medians": (1.01e6, 1.1e6)},
     (1.0891089108910892, 1.0392391059172148, 1.141371810422291, 14101, 22800, "hierarchical")),
    ({"sizes_base": {"x": 9999}, "sizes_new": {"y": 12000}, "n_boot": 300},
     (1.0706888035361601, 1.0690426307866323, 1.0723375111562752, 9999, 12000, "flat")),
]


@pytest.mark.parametrize("options,expected", PINNED_RATIOS)
def test_ratio_of_medians_pinned_outputs(options, expected):
    base, new, tb, tn = _pinned_data()
    options = {k: {"tb": tb, "tn": tn}.get(v, v) if isinstance(v, str) else v for k, v in options.items()}
    e = ratio_of_medians(base, new, **options)
    assert (e.ratio, e.low, e.high, e.n_base, e.n_new, e.method) == expected


def test_median_ci_pinned_outputs():
    base, new, _, tn = _pinned_data()
    assert median_ci(new, trials=tn) == (1112013.4060991304, 1089190.717202574, 1131246.5386616038)
    assert median_ci(base[:101], n_boot=333, seed=3) == (1027077.3414952527, 1014130.4027169461, 1038868.0671905384)
    assert median_ci(new, trials=tn, trial_sizes=_SKETCH_NEW, n_boot=200) == (
        1112013.4060991304, 1090758.3406066974, 1127208.049728329)
