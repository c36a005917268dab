"""Interference signals parsed from real /proc text (tests/fixtures/proc/README.md says where each comes from)."""

import json
from pathlib import Path

import pytest

from qbench.collectors.interference import describe, parse_proc_stat, parse_schedstat, summarize
from qbench.pipeline.quiet import parse_look, wait_for_quiet
from qbench.suite.schema import QuietStartSpec

PROC = Path(__file__).parents[1] / "fixtures" / "proc"


def test_proc_stat_of_this_vm_has_two_cores_and_skips_the_aggregate_line():
    cores = parse_proc_stat((PROC / "host_x86_64_2vcpu_stat.txt").read_text())
    assert sorted(cores) == [0, 1]
    # cpu0 2121 2706 3128 31031 176 0 15 30 0 0 -> busy = user+nice+system+irq+softirq+steal
    line = next(ln for ln in (PROC / "host_x86_64_2vcpu_stat.txt").read_text().splitlines() if ln.startswith("cpu0 "))
    cols = [int(x) for x in line.split()[1:]]
    assert cores[0].busy == cols[0] + cols[1] + cols[2] + cols[5] + cols[6] + cols[7]
    assert cores[0].total == cores[0].busy + cols[3] + cols[4]


def test_android_proc_stat_an_offline_core_has_no_line():
    cores = parse_proc_stat((PROC / "android_8core_stat.txt").read_text())
    assert sorted(cores) == [0, 1, 2, 3, 4, 6, 7]


def test_old_kernel_seven_columns():
    cores = parse_proc_stat((PROC / "android_old_kernel_stat.txt").read_text())
    assert cores[0].busy == 30115 + 512 + 12411 + 211 + 98 and cores[0].total == cores[0].busy + 981213 + 3312


def test_schedstat_line_and_the_vm_zero_runtime():
    run_ns, wait_ns, slices = parse_schedstat((PROC / "host_x86_64_self_schedstat.txt").read_text())
    assert run_ns == 0 and slices == 1 and wait_ns > 0  # this VM does not account run time here
    with pytest.raises(ValueError):
        parse_schedstat("12 34")


def test_runner_report_from_a_busy_vm():
    report = json.loads((PROC / "host_runner_report_busy.json").read_text())
    s = summarize(report)
    raw = report["interference"]
    before, after = parse_proc_stat(raw["proc_stat_before"]), parse_proc_stat(raw["proc_stat_after"])
    busy_s = sum(after[c].busy - before[c].busy for c in (0, 1)) / raw["clock_ticks_per_s"]
    expected = (busy_s - raw["process_cpu_ns"] / 1e9) / (raw["wall_ns"] / 1e9 * 2)
    assert s["on_cores_share"] == pytest.approx(expected)
    assert s["interference_share"] == s["on_cores_share"] > 0.3  # other helpers kept both vCPUs busy
    assert s["elsewhere_share"] is None  # the runner could use every core
    assert s["run_queue_wait_share"] > 0  # per-thread schedstat does read here
    assert "cpufreq" in s["unreadable"]  # no cpufreq on this VM: said, not 0
    assert s["cpufreq_khz"] is None
    assert "57%" in describe(s) or "trial's cores" in describe(s)


def _report(stat_before, stat_after, cores, wall_s=1.0, own_cpu_s=1.0, **extra):
    return {"runner": "native", "threads": 1, "samples_ns": [10_000_000] * 10, "thread_cpu_ns": [10_000_000] * 10,
            "interference": {"wall_ns": int(wall_s * 1e9), "process_cpu_ns": int(own_cpu_s * 1e9), "cores": cores,
                             "clock_ticks_per_s": 100, "proc_stat_before": stat_before, "proc_stat_after": stat_after,
                             "schedstat_before": ["0 0 1"], "schedstat_after": ["0 5 1"], "involuntary_switches": 3,
                             "cpufreq_khz": {"0": 1800000}, "unreadable": {}, **extra}}


def test_hog_on_the_other_core_counts_as_elsewhere():
    before = ["cpu0 0 0 0 1000 0 0 0 0 0 0", "cpu1 0 0 0 1000 0 0 0 0 0 0"]
    after = ["cpu0 100 0 0 1000 0 0 0 0 0 0", "cpu1 95 0 0 1005 0 0 0 0 0 0"]
    s = summarize(_report(before, after, cores=[0]))
    assert s["on_cores_share"] == pytest.approx(0.0)
    assert s["elsewhere_share"] == pytest.approx(0.95)
    assert s["interference_share"] == pytest.approx(0.95)
    assert s["run_queue_wait_share"] is None and "run time reads 0" in s["unreadable"]["schedstat"]
    assert s["cpufreq_khz"] == {"0": 1800000}
    assert "other cores" in describe(s)


def test_unreadable_proc_stat_is_said_not_zero():
    s = summarize(_report([], [], cores=[0], unreadable={"proc_stat": "cannot read /proc/stat: Permission denied"}))
    assert s["interference_share"] is None
    assert s["unreadable"]["proc_stat"] == "cannot read /proc/stat: Permission denied"
    assert "Permission denied" in describe(s)


def test_a_phase_shorter_than_the_tick_resolution_is_not_judged():
    before = ["cpu0 0 0 0 1000 0 0 0 0 0 0"]
    after = ["cpu0 1 0 0 1000 0 0 0 0 0 0"]
    s = summarize(_report(before, after, cores=[0], wall_s=0.002, own_cpu_s=0.002))
    assert s["interference_share"] is None and "too short" in s["unreadable"]["proc_stat"]


def test_a_runner_without_interference_fields():
    s = summarize({"runner": "eager", "samples_ns": [1, 2]})
    assert s["interference_share"] is None and "no interference" in s["unreadable"]["interference"]


def test_quiet_start_look_and_bounded_wait():
    stat = (PROC / "host_x86_64_2vcpu_stat.txt").read_text()
    busier = "\n".join(
        " ".join([p[0], str(int(p[1]) + 40), *p[2:]]) if p[0] in ("cpu0", "cpu1") else " ".join(p)
        for p in (ln.split() for ln in stat.splitlines())
    )
    look = parse_look(f"{stat}--qbench-quiet-split--\n{busier}\n--qbench-quiet-split--\n", window_s=0.5)
    assert look["busy_share"] == pytest.approx(0.8) and look["cpufreq_khz"] is None

    t = [0.0]

    def clock():
        t[0] += 1.0
        return t[0]

    record = wait_for_quiet(lambda: look, QuietStartSpec(threshold=0.1, max_wait_s=3), {"cpu": 41.0}, clock)
    assert record["quiet"] is False and len(record["others_share"]) >= 2 and record["hottest_c"] == 41.0
    quiet = wait_for_quiet(lambda: {"busy_share": 0.02, "cpufreq_khz": [1]}, QuietStartSpec(), None, clock)
    assert quiet["quiet"] is True and quiet["others_share"] == [0.02]
    assert wait_for_quiet(lambda: {"unreadable": "no shell"}, QuietStartSpec())["unreadable"] == "no shell"


def test_a_tiny_models_short_trial_on_this_vm_is_not_judged_by_proc_stat_and_calibrated_off_cpu():
    """Issue 23 item 8: on a quiet VM without cpufreq, short trials of a small model were marked
    disturbed: /proc/stat cannot resolve a 0.3 ms phase, and the runner's own clock reads (0.63 µs of a
    7.8 µs iteration) plus one slow first iteration made the off-CPU stand-in read 8.7 %."""
    from qbench.pipeline.adaptive import judge_trial

    report = json.loads((PROC / "host_runner_report_tiny_short.json").read_text())
    raw = 1 - sum(report["thread_cpu_ns"]) / sum(report["samples_ns"])
    assert raw == pytest.approx(0.087, abs=0.001)  # what the uncalibrated stand-in said
    s = summarize(report)
    assert s["interference_share"] is None and "too short for /proc/stat" in s["unreadable"]["proc_stat"]
    assert "cpufreq" in s["unreadable"]  # this VM has no cpufreq
    assert s["timing_overhead_ns"] == 630  # the least-delayed iteration's wall-minus-CPU gap
    assert s["offcpu_share"] == pytest.approx(0.011, abs=0.002)
    for threshold in (0.05, 0.10):
        j = judge_trial(report, threshold)
        assert j.judged and not j.disturbed and j.summary["judged_by"] == "offcpu"


def test_a_phase_no_signal_can_resolve_says_not_judged_never_disturbed():
    from qbench.pipeline.adaptive import judge_trial

    report = json.loads((PROC / "host_runner_report_tiny_short.json").read_text())
    report["samples_ns"], report["thread_cpu_ns"] = report["samples_ns"][:3], report["thread_cpu_ns"][:3]
    j = judge_trial(report, 0.10)
    assert not j.judged and not j.disturbed and j.share is None
    assert j.why.startswith("not judged (proc_stat: measured phase 0 ms is too short")
    assert "thread_cpu: 3 iteration(s) are too few to calibrate the off-CPU figure" in j.why
    assert "cpufreq" not in j.why  # frequencies inform; they never judge a trial
    report["threads"] = 2  # several threads: the stand-in does not apply
    report["samples_ns"] = report["thread_cpu_ns"] = None
    assert judge_trial(report, 0.10).why.startswith("not judged (proc_stat: measured phase")


def test_a_phase_long_enough_for_the_ticks_is_judged_by_proc_stat():
    from qbench.pipeline.adaptive import judge_trial

    report = json.loads((PROC / "host_runner_report_busy.json").read_text())
    j = judge_trial(report, 0.10)
    assert j.judged and j.summary["judged_by"] == "proc_stat" and j.disturbed
