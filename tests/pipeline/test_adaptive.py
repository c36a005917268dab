"""The run-until-precise policy on synthetic trials (pure functions, no device)."""

import numpy as np
import pytest

from qbench.pipeline.adaptive import (DEFAULT_PRECISION, Policy, TrialRecord, judge_trial, next_step, stability,
                                      used_trials)


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


def test_stops_at_max_trials_and_says_imprecise():
    policy = Policy(min_trials=2, max_trials=5, precision=0.005)
    trials = run_policy(lambda i: trial(i, median_ms=10 * (1 + 0.2 * (-1) ** i), spread=0.05), policy)
    assert len(trials) == 5
    s = stability(trials, policy)
    # nothing disturbed these trials: the CI is just wide, which more trials might fix
    assert s["verdict"] == "imprecise" and "wider than ±0.5%" in s["reason"] and s["trials_used"] == 5
    assert (s["trials_measured"], s["trials_clean"], s["trials_replaced"]) == (5, 5, 0)


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
    assert s["verdict"] == "disturbed" and "all 4 trials disturbed (other processes used 60%" in s["reason"]
    assert s["trials_used"] == 4 and s["trials_replaced"] == 3 and s["interference_share"] == 0.6
    assert (s["trials_measured"], s["trials_clean"]) == (4, 0) and "4 trials, all disturbed" in s["reason"]


def test_a_disturbed_trial_is_replaced_without_a_precision():
    """Issue 24: with `trials: 2` and no precision, a disturbed trial used to be kept but not replaced."""
    policy = Policy(min_trials=2, max_trials=6)  # the suite's default bound: 3 × trials
    trials = run_policy(lambda i: trial(i, median_ms=14.0, disturbed=True, share=0.6) if i == 0 else trial(i), policy)
    assert [t.disturbed for t in trials] == [True, False, False]
    s = stability(trials, policy)
    assert s["verdict"] == "stable" and s["trials_used"] == 2
    assert (s["trials_measured"], s["trials_clean"], s["trials_replaced"]) == (3, 2, 1)
    assert "3 trials (2 clean, 1 replaced)" in s["reason"]


def test_an_imprecise_cell_gets_more_trials_by_default_within_the_bound():
    """No precision in the suite: the median's CI should still reach ±5%, so trials go on (up to the
    bound) while it is wider; nothing disturbed them, so the cell says imprecise, not disturbed."""
    policy = Policy(min_trials=2, max_trials=6)
    assert policy.judge_precision == DEFAULT_PRECISION == 0.05
    trials = run_policy(lambda i: trial(i, median_ms=10 * (1 + 0.3 * (i % 2)), spread=0.01), policy)
    assert len(trials) == 6
    s = stability(trials, policy)
    assert s["verdict"] == "imprecise" and "wider than ±5%" in s["reason"] and s["trials_clean"] == 6


def test_a_precise_cell_stops_at_the_minimum_without_a_precision():
    trials = run_policy(trial, Policy(min_trials=2, max_trials=6))
    assert len(trials) == 2 and stability(trials, Policy(2, 6))["verdict"] == "stable"


def test_max_trials_equal_to_trials_measures_exactly_that_many():
    policy = Policy(min_trials=2, max_trials=2)
    trials = run_policy(lambda i: trial(i, median_ms=10 * (1 + 0.3 * i), spread=0.01), policy)
    assert len(trials) == 2
    s = stability(trials, policy)
    assert s["verdict"] == "imprecise" and "±5%" in s["reason"]


def _stand_in_report(gaps_ns, cpu_ns=7_200, threads=1):
    """One thread's iterations, each `cpu_ns` on the CPU and `gap` more on the wall clock; /proc/stat
    could not judge (the phase is too short for its ticks)."""
    return {"runner": "native", "threads": threads, "samples_ns": [cpu_ns + g for g in gaps_ns],
            "thread_cpu_ns": [cpu_ns] * len(gaps_ns),
            "interference": {"wall_ns": 10**9, "cores": [0], "unreadable": {"proc_stat": "Permission denied"}}}


def test_judge_trial_uses_off_cpu_time_beyond_the_timing_overhead():
    # 0.6 µs of clock reads in every iteration is the runner's own overhead, not interference
    quiet = judge_trial(_stand_in_report([600] * 20), threshold=0.05)
    assert not quiet.disturbed and quiet.judged and quiet.share == 0.0
    assert quiet.summary["timing_overhead_ns"] == 600 and quiet.summary["judged_by"] == "offcpu"
    # one iteration waited 4 ms for the CPU (another process's time slice): that is interference
    hit = judge_trial(_stand_in_report([600] * 19 + [4_000_600]), threshold=0.1)
    assert hit.disturbed and hit.share == pytest.approx(4e6 / (20 * 7_800 + 4e6))
    assert hit.columns()["disturbed"] == 1 and "off the CPU" in hit.why
    # every iteration 50 ms off the CPU: above the overhead cap, so it is not taken for overhead
    slow = judge_trial(_stand_in_report([50_000_000] * 10, cpu_ns=50_000_000), threshold=0.1)
    assert slow.disturbed and slow.share > 0.4


def test_a_trial_no_signal_resolves_counts_and_says_not_judged():
    for report in (_stand_in_report([600] * 3),  # too few iterations to calibrate the stand-in
                   _stand_in_report([600] * 20, threads=2)):  # several threads: no stand-in
        j = judge_trial(report, threshold=0.1)
        assert not j.disturbed and not j.judged and j.share is None and j.columns()["disturbed"] == 0
        assert j.why.startswith("not judged (") and "proc_stat: Permission denied" in j.why
    three = judge_trial(_stand_in_report([600] * 3), threshold=0.1)
    assert "3 iteration(s) are too few to calibrate" in three.why
    t = [TrialRecord(i, trial(i).samples_ns, False, None, three.why) for i in range(2)]
    s = stability(t, Policy(2, 6))
    assert s["verdict"] == "stable" and s["trials_not_judged"] == 2 and s["trials_clean"] == 2
    assert "2 trials (2 clean, 2 not judged)" in s["reason"] and "not judged: proc_stat: Permission" in s["reason"]


def test_long_trials_are_thinned_for_the_ci_without_moving_it_much():
    from qbench.pipeline.adaptive import median_ci_ms

    long = [trial(i, median_ms=10 * (1 + 0.01 * i), n=9000) for i in range(3)]
    med, lo, hi = median_ci_ms(long)
    assert lo <= med <= hi and 9.9 < lo and hi < 10.3
