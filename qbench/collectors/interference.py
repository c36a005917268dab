"""How much else ran on the device while a trial measured, from the runner's raw report.

The runner (native or Python) copies the kernel's text around its measured phase: the per-core
lines of /proc/stat, each thread's /proc/self/task/*/schedstat, rusage deltas, the core frequencies
and, per iteration, its calling thread's CPU time (see runners/contract.md, `interference`). This
module turns that text into a few shares of the trial's wall time, the same way for every device.

The headline figure, `interference_share`, is the CPU time *other* processes used, as a share of
the time the cores were there: on the trial's own cores (their busy ticks minus the runner's own CPU
time) and on the device's other cores. Other cores count too: they share caches, memory bandwidth,
the power budget and, on a VM, physical cores (a hog on the other vCPU of the development VM slowed
a runner pinned to cpu0 by 42 %). A signal that could not be read says why in `unreadable`; it is
never a silent 0.

A signal judges a trial only where it can resolve it: /proc/stat counts whole ticks, so its shares
need a measured phase of MIN_TICKS ticks or more; the off-CPU stand-in (one thread, wall minus thread
CPU time per iteration) is measured beyond the runner's own timing overhead, which it calibrates on
the trial itself. Where neither can, the trial is *not judged* (`judged_by` None), never "disturbed".
"""

from __future__ import annotations

from dataclasses import dataclass

# /proc/stat core columns (proc(5)): user nice system idle iowait irq softirq steal guest guest_nice.
# guest time is already inside user, so it is not added again; idle and iowait are not busy. steal is
# time the hypervisor gave someone else: interference too.
_BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)
_IDLE_COLUMNS = (3, 4)
# Shares from /proc/stat need a phase of at least this many ticks per core (±1 tick = ±5 %).
MIN_TICKS = 20
# The off-CPU stand-in. Each iteration's wall time brackets its thread-CPU reading, so even an
# undisturbed iteration shows a gap: the clock reads themselves (about 0.6 µs a read pair on this VM,
# 8 % of a 7.8 µs iteration, which alone crossed the 10 % threshold once jitter was added). The gap of
# the least-delayed iteration is that overhead; only time beyond it counts as off the CPU. It needs a
# few iterations to be found, and a gap above OVERHEAD_CAP_NS is not clock overhead but real waiting.
MIN_CALIBRATION_ITERATIONS = 5
OVERHEAD_CAP_NS = 100_000
# When the overhead is this share of a typical iteration, what is left cannot resolve a threshold.
MAX_OVERHEAD_SHARE = 0.5


@dataclass(frozen=True)
class CoreTicks:
    core: int
    busy: int
    total: int


def parse_proc_stat(text_or_lines) -> dict[int, CoreTicks]:
    """Per-core busy/total ticks from /proc/stat text (or its lines); the aggregate `cpu` line is skipped.

    Works with any column count from 4 (old kernels) to 10; an offline core simply has no line.
    """
    lines = text_or_lines.splitlines() if isinstance(text_or_lines, str) else list(text_or_lines)
    out: dict[int, CoreTicks] = {}
    for line in lines:
        name, _, rest = line.strip().partition(" ")
        if not (name.startswith("cpu") and name[3:].isdigit()):
            continue
        cols = [int(x) for x in rest.split()]
        if len(cols) < 4:
            raise ValueError(f"/proc/stat line has {len(cols)} columns, expected at least 4: {line!r}")
        busy = sum(cols[i] for i in _BUSY_COLUMNS if i < len(cols))
        idle = sum(cols[i] for i in _IDLE_COLUMNS if i < len(cols))
        out[int(name[3:])] = CoreTicks(int(name[3:]), busy, busy + idle)
    return out


def parse_schedstat(line: str) -> tuple[int, int, int]:
    """One schedstat line: (ns on the CPU, ns waiting on a run queue, timeslices)."""
    parts = line.split()
    if len(parts) < 3:
        raise ValueError(f"schedstat line needs 3 numbers: {line!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def summarize(report: dict) -> dict:
    """The per-trial interference figures (JSON-ready) from a runner report.

    Keys: interference_share (the max of on_cores_share and elsewhere_share; None if neither was
    readable), on_cores_share, elsewhere_share, offcpu_share (the calling thread's time off the CPU
    beyond the runner's timing overhead, over wall time, summed over iterations; None where it cannot
    resolve the trial), timing_overhead_ns (that overhead per iteration), run_queue_wait_share,
    involuntary_switches_per_s, cpufreq_khz, cores, unreadable {signal: why}.
    """
    raw = report.get("interference")
    unreadable: dict[str, str] = {}
    out = {"interference_share": None, "on_cores_share": None, "elsewhere_share": None, "offcpu_share": None,
           "timing_overhead_ns": None, "run_queue_wait_share": None, "involuntary_switches_per_s": None,
           "cpufreq_khz": None, "cores": None, "unreadable": unreadable}
    out["offcpu_share"], out["timing_overhead_ns"] = offcpu_share(
        report.get("samples_ns"), report.get("thread_cpu_ns"), unreadable)
    if not isinstance(raw, dict):
        unreadable["interference"] = f"the {report.get('runner', '?')} runner reported no interference figures"
        return out
    unreadable.update(raw.get("unreadable") or {})
    wall_s = (raw.get("wall_ns") or 0) / 1e9
    cores = list(raw.get("cores") or [])
    out["cores"] = cores
    if wall_s <= 0:
        unreadable["wall"] = "the measured phase has no wall time"
        return out
    out["involuntary_switches_per_s"] = _per_s(raw.get("involuntary_switches"), wall_s)
    if raw.get("cpufreq_khz"):
        out["cpufreq_khz"] = {str(k): v for k, v in raw["cpufreq_khz"].items()}
    if "proc_stat" not in unreadable:
        shares = _proc_stat_shares(raw, cores, wall_s, unreadable)
        if shares:
            out["on_cores_share"], out["elsewhere_share"] = shares
            known = [s for s in shares if s is not None]
            out["interference_share"] = max(known) if known else None
    if "schedstat" not in unreadable:
        out["run_queue_wait_share"] = _wait_share(raw, wall_s, len(cores) or 1, unreadable)
    return out


def _per_s(count, seconds):
    return None if count is None else count / seconds


def offcpu_share(samples_ns, thread_cpu_ns, unreadable: dict) -> tuple[float | None, int | None]:
    """(share of wall time the calling thread spent off the CPU beyond the timing overhead, that
    overhead in ns per iteration); (None, …) with the reason in `unreadable["thread_cpu"]` when the
    iterations cannot resolve it."""
    if not thread_cpu_ns:
        unreadable.setdefault("thread_cpu", "the runner reported no per-iteration thread CPU time")
        return None, None
    gaps = [max(0, w - c) for w, c in zip(samples_ns or [], thread_cpu_ns)]
    wall = sum(samples_ns or [])
    if len(gaps) < MIN_CALIBRATION_ITERATIONS or wall <= 0:
        unreadable["thread_cpu"] = (f"{len(gaps)} iteration(s) are too few to calibrate the off-CPU figure "
                                    f"(needs {MIN_CALIBRATION_ITERATIONS}; raise iterations)")
        return None, None
    overhead = min(min(gaps), OVERHEAD_CAP_NS)
    typical = sorted(samples_ns)[len(samples_ns) // 2]
    if overhead > MAX_OVERHEAD_SHARE * typical:
        unreadable["thread_cpu"] = (f"the runner's timing overhead ({overhead / 1e3:.1f} µs) is "
                                    f"{overhead / typical:.0%} of an iteration: too much to resolve the off-CPU figure")
        return None, overhead
    return sum(g - overhead for g in gaps if g > overhead) / wall, overhead


def _proc_stat_shares(raw, cores, wall_s, unreadable) -> tuple[float | None, float | None] | None:
    try:
        before, after = parse_proc_stat(raw.get("proc_stat_before") or []), parse_proc_stat(raw.get("proc_stat_after") or [])
    except ValueError as exc:
        unreadable["proc_stat"] = str(exc)
        return None
    hz = raw.get("clock_ticks_per_s") or 100
    if wall_s * hz < MIN_TICKS:
        # whole ticks: over a phase this short, one stray tick would read as a busy core
        unreadable["proc_stat"] = (f"measured phase {wall_s * 1e3:.0f} ms is too short for /proc/stat's "
                                   f"{1e3 / hz:.0f} ms ticks (needs {MIN_TICKS / hz:.1f} s; raise min_seconds)")
        return None
    common = sorted(set(before) & set(after))
    if not common:
        unreadable["proc_stat"] = "no per-core lines in the runner's /proc/stat copies"
        return None
    busy_s = {c: (after[c].busy - before[c].busy) / hz for c in common}
    mine = [c for c in common if c in cores] if cores else common
    others = [c for c in common if c not in mine]
    on_cores = None
    if mine:
        own_cpu_s = (raw.get("process_cpu_ns") or 0) / 1e9  # the runner runs only on its own cores
        on_cores = _clamp((sum(busy_s[c] for c in mine) - own_cpu_s) / (wall_s * len(mine)))
    elsewhere = _clamp(sum(busy_s[c] for c in others) / (wall_s * len(others))) if others else None
    return on_cores, elsewhere


def _wait_share(raw, wall_s, n_cores, unreadable) -> float | None:
    """Run-queue wait of the runner's threads, per core-second; None when the kernel reports zeros."""
    try:
        before = [parse_schedstat(x) for x in raw.get("schedstat_before") or []]
        after = [parse_schedstat(x) for x in raw.get("schedstat_after") or []]
    except ValueError as exc:
        unreadable["schedstat"] = str(exc)
        return None
    if not after:
        unreadable["schedstat"] = "no schedstat lines in the report"
        return None
    # threads may start during the phase, so totals are compared, not thread by thread
    run_ns = sum(a[0] for a in after) - sum(b[0] for b in before)
    wait_ns = sum(a[1] for a in after) - sum(b[1] for b in before)
    if run_ns <= 0:
        unreadable["schedstat"] = "schedstat run time reads 0 (this kernel does not account it)"
        return None
    return _clamp(wait_ns / 1e9 / (wall_s * n_cores))


def _clamp(x: float) -> float:
    # /proc/stat counts whole ticks, so a short phase can read a little below 0 or above 1
    return min(1.0, max(0.0, x))


def describe(summary: dict) -> str:
    """A short phrase naming the strongest signal, e.g. 'other processes used 43% of the trial's cores';
    for a trial no signal could resolve, 'not judged (why each signal could not)'."""
    on, away = summary.get("on_cores_share"), summary.get("elsewhere_share")
    if summary.get("judged_by") == "offcpu":
        return f"the runner's thread was off the CPU {summary['offcpu_share']:.0%} of the time"
    if on is None and away is None:
        unreadable = summary.get("unreadable") or {}
        # the signals that judge a trial; cpufreq and schedstat only inform
        judging = {k: unreadable[k] for k in ("interference", "proc_stat", "thread_cpu") if k in unreadable}
        why = "; ".join(f"{k}: {v}" for k, v in (judging or unreadable).items())
        return f"not judged ({why})" if why else "not judged"
    if away is not None and (on is None or away > on):
        return f"other processes used {away:.0%} of the other cores"
    return f"other processes used {on:.0%} of the trial's cores"
