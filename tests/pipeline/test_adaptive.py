"""The run-until-precise policy on synthetic trials (pure functions, no device)."""

import numpy as np

from qbench.pipeline.adaptive import Policy, TrialRecord, judge_trial, next_step, stability, used_trials


def trial(i, median_ms=10.0, spread=0.002, n=60, disturbed=False, share=0.0, seed=None):
    rng = np.random.default_rng(i if seed is None else seed)
    ns = (median_ms * 1e6 * (1 + spread * rng.standard_normal(n))).astype(int).tolist()
    return TrialRecord(i, ns, disturbed, share, "other processes used 60% of the trial's cores" if disturbed else "")


def run_policy(make_trial, policy):
    """Drive next_step as TrialPlan does for one cell; return the trials it ran."""
    trials = []
    while not next_step(trials, policy).done:
        trials.append(make_trial(len(trials)))
        assert len(trials) <= policy.max_trials  # bounded
    return trials


def test_stops_at_the_minimum_when_already_precise():
    trials = run_policy(trial, Policy(min_trials=3, max_trials=10, precision=0.02))
    assert len(trials) == 3
    assert stability(trials, Policy(3, 10, 0.02))["verdict"] == "stable"


def test_runs_more_trials_until_the_ci_meets_the_target():
    # trials disagree by a few percent: three are not enough for ±1%, more trials narrow the CI
    offsets = [0.0, 0.04, -0.03, 0.02, -0.01, 0.01, 0.0, -0.02, 0.03, 0.0, 0.01, -0.01]
    trials = run_policy(lambda i: trial(i, median_ms=10 * (1 + offsets[i % len(offsets)])),
                        Policy(min_trials=3, max_trials=30, precision=0.01))
    assert 3 < len(trials) < 30
    assert next_step(trials, Policy(3, 30, 0.01)).why.startswith("median CI")


def test_stops_at_max_trials_and_says_noisy():
    policy = Policy(min_trials=2, max_trials=5, precision=0.005)
    trials = run_policy(lambda i: trial(i, median_ms=10 * (1 + 0.2 * (-1) ** i), spread=0.05), policy)
    assert len(trials) == 5
    s = stability(trials, policy)
    assert s["verdict"] == "noisy" and "wider than ±0" in s["reason"] and s["trials_used"] == 5


def test_a_disturbed_trial_is_kept_replaced_and_left_out():
    # trial 1 ran beside a CPU hog: 40% slower and marked
    def make(i):
        return trial(i, median_ms=14.0, disturbed=True, share=0.6) if i == 1 else trial(i)

    policy = Policy(min_trials=3, max_trials=6)
    trials = run_policy(make, policy)
    assert len(trials) == 4 and [t.disturbed for t in trials] == [False, True, False, False]
    used = used_trials(trials)
    assert [t.trial for t in used] == [0, 2, 3]
    s = stability(trials, policy)
    assert s["trials_replaced"] == 1 and s["trials_used"] == 3 and s["verdict"] == "stable"
    lo, hi = s["median_ci_ms"]
    assert lo < 10.05 and hi > 9.95 and hi < 11  # the hogged trial does not pull the median


def test_replacement_is_bounded_and_all_disturbed_says_why():
    policy = Policy(min_trials=2, max_trials=4)
    trials = run_policy(lambda i: trial(i, disturbed=True, share=0.6), policy)
    assert len(trials) == 4
    s = stability(trials, policy)
    assert s["verdict"] == "noisy" and "all 4 trials disturbed (other processes used 60%" in s["reason"]
    assert s["trials_used"] == 4 and s["trials_replaced"] == 3 and s["interference_share"] == 0.6


def test_without_precision_exactly_the_trials_and_a_five_percent_judgement():
    policy = Policy(min_trials=2, max_trials=2)
    trials = run_policy(lambda i: trial(i, median_ms=10 * (1 + 0.3 * i), spread=0.01), policy)
    assert len(trials) == 2
    s = stability(trials, policy)
    assert s["verdict"] == "noisy" and "±5%" in s["reason"]


def test_judge_trial_uses_off_cpu_time_when_proc_stat_is_unreadable():
    report = {"runner": "native", "threads": 1, "samples_ns": [100] * 10, "thread_cpu_ns": [50] * 10,
              "interference": {"wall_ns": 10**9, "cores": [0], "unreadable": {"proc_stat": "Permission denied"}}}
    j = judge_trial(report, threshold=0.1)
    assert j.disturbed and j.share == 0.5 and j.columns()["disturbed"] == 1
    report["thread_cpu_ns"] = [99] * 10
    assert not judge_trial(report, threshold=0.1).disturbed


def test_long_trials_are_thinned_for_the_ci_without_moving_it_much():
    from qbench.pipeline.adaptive import median_ci_ms

    long = [trial(i, median_ms=10 * (1 + 0.01 * i), n=9000) for i in range(3)]
    med, lo, hi = median_ci_ms(long)
    assert lo <= med <= hi and 9.9 < lo and hi < 10.3
