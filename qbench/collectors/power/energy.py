"""Energy over a window and energy per inference, with a 1-sigma uncertainty.

Windows come from two marks in the log (default: idle = idle_start..run_start, run = run_start..
run_end). Fewer than 2 samples (or counter readings) inside a window is an error, never a number.

* Sampled sources (watts at times): samples just outside an edge are interpolated linearly to the
  edge; energy is the trapezoidal integral. If the samples do not reach an edge, the mean power of
  the covered span is applied to the whole window and a note says how much was covered.
* Counter sources (cumulative joules): energy is the difference of the two edge readings, after
  undoing wrap-arounds (RAPL's max_energy_range_uj). Edges that fall between readings (external
  meters printing cumulative joules) are interpolated linearly. The duration uses the counter's own
  clock when it has one (ODPM `t=` ms).
* Idle baseline: net = gross - P_idle x T_run; per inference = net / inferences (in mJ).

Uncertainty (1 sigma, documented so nobody reads it as more than it is):

* sampled window: u_E = SEM(P) x T, SEM = std(P, ddof=1) / sqrt(n_eff). n_eff counts a run of
  identical consecutive readings once, because fuel gauges refresh (~0.2-1.4 s) slower than we poll
  and repeated values are not new information. Samples are still autocorrelated, so this is a lower
  bound on the random error.
* counter window: quantization only, u_E = sqrt(q0^2 + q1^2) / sqrt(12) (q = one reading's step);
  duration u_T from how long each snapshot took (w / sqrt(12) per edge).
* mean power: u_P = SEM for sampled windows; for counters sqrt((u_E/T)^2 + (P u_T/T)^2 + SEM^2),
  where SEM comes from the interval powers when a window holds 3 or more readings.
* net energy: u^2 = u_E,run^2 + (u_P,idle x T_run)^2 + (P_idle x u_T,run)^2; per inference: u / n.

Not included: sensor calibration error (fuel gauges and PMIC ADCs are good to a few percent at
best), the trapezoid's discretization error, and whatever the source cannot see (other rails).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from qbench.collectors.power.base import (
    IDLE_START,
    RUN_END,
    RUN_START,
    CounterReading,
    PowerError,
    PowerLog,
    PowerResult,
    PowerSample,
)

SQRT12 = math.sqrt(12.0)


@dataclass
class WindowStats:
    t0: float
    t1: float
    duration_s: float
    energy_j: float
    avg_power_w: float
    sample_count: int
    sampling_period_s: float | None
    u_energy_j: float
    u_avg_power_w: float
    u_duration_s: float = 0.0
    per_rail_j: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _trapezoid(t: np.ndarray, p: np.ndarray) -> float:
    return float(np.sum((p[1:] + p[:-1]) * np.diff(t)) / 2.0)


def _lerp(a: float, b: float, f: float) -> float:
    return a + (b - a) * f


def _edge(a: PowerSample, b: PowerSample, t: float) -> PowerSample:
    f = (t - a.t_s) / (b.t_s - a.t_s) if b.t_s != a.t_s else 0.0
    rails = {k: _lerp(a.rails[k], b.rails[k], f) for k in a.rails.keys() & b.rails.keys()}
    return PowerSample(t, _lerp(a.watts, b.watts, f), rails)


def _median_step(times: list[float]) -> float | None:
    return float(np.median(np.diff(times))) if len(times) >= 2 else None


def _too_few(what: str, n: int, t0: float, t1: float, name: str) -> PowerError:
    return PowerError(
        f"{name}: only {n} {what} in the window {t0:.3f}..{t1:.3f} s (need at least 2); "
        f"sample faster or measure longer"
    )


def samples_window(
    samples: list[PowerSample], t0: float | None = None, t1: float | None = None, name: str = "power"
) -> WindowStats:
    s = sorted(samples, key=lambda x: x.t_s)
    if t0 is None or t1 is None:
        if len(s) < 2:
            raise _too_few("power samples", len(s), 0.0, 0.0, name)
        t0 = s[0].t_s if t0 is None else t0
        t1 = s[-1].t_s if t1 is None else t1
    if not t1 > t0:
        raise PowerError(f"{name}: the window ends ({t1:.3f}) before it starts ({t0:.3f})")
    inside = [x for x in s if t0 <= x.t_s <= t1]
    if len(inside) < 2:
        raise _too_few("power samples", len(inside), t0, t1, name)
    points = list(inside)
    before = [x for x in s if x.t_s < t0]
    after = [x for x in s if x.t_s > t1]
    if before and points[0].t_s > t0:
        points.insert(0, _edge(before[-1], points[0], t0))
    if after and points[-1].t_s < t1:
        points.append(_edge(points[-1], after[0], t1))
    t = np.array([x.t_s for x in points])
    p = np.array([x.watts for x in points])
    covered = float(t[-1] - t[0])
    if covered <= 0:
        raise PowerError(f"{name}: all samples in the window have the same time stamp")
    duration = t1 - t0
    avg = _trapezoid(t, p) / covered
    notes = []
    times = [x.t_s for x in inside]
    period = _median_step(times)
    if duration - covered > 0.5 * (period or 0.0):  # a sample is missing at an edge, not just clock jitter
        notes.append(
            f"samples cover {100 * covered / duration:.0f}% of the window; the rest assumes the mean power"
        )
    gaps = np.diff(times)
    if period and gaps.max() > 5 * period:
        notes.append(f"a gap of {gaps.max():.2f} s between samples (median spacing {period:.3f} s)")
    rails = set.intersection(*(set(x.rails) for x in points)) if points[0].rails else set()
    per_rail = {
        r: _trapezoid(t, np.array([x.rails[r] for x in points])) / covered * duration for r in sorted(rails)
    }
    watts = [x.watts for x in inside]
    n_eff = 1 + sum(1 for a, b in zip(watts, watts[1:], strict=False) if a != b)
    sem = float(np.std(watts, ddof=1)) / math.sqrt(n_eff)
    return WindowStats(
        t0=t0,
        t1=t1,
        duration_s=duration,
        energy_j=avg * duration,
        avg_power_w=avg,
        sample_count=len(inside),
        sampling_period_s=period,
        u_energy_j=sem * duration,
        u_avg_power_w=sem,
        per_rail_j=per_rail,
        notes=notes,
    )


def _unwrapped(readings: list[CounterReading], rails: list[str], name: str) -> np.ndarray:
    """Cumulative joules per rail (columns) with wrap-arounds undone; a drop without a range is an error."""
    out = np.zeros((len(readings), len(rails)))
    for j, rail in enumerate(rails):
        offset, prev = 0.0, None
        for i, r in enumerate(readings):
            v = r.energy_j[rail]
            if prev is not None and v < prev:
                wrap = r.wrap_j.get(rail)
                if not wrap:
                    raise PowerError(
                        f"{name}: counter {rail} went down ({prev:.6f} -> {v:.6f} J): reset or reboot?"
                    )
                offset += wrap
            out[i, j] = v + offset
            prev = v
    return out


def counters_window(
    readings: list[CounterReading],
    t0: float,
    t1: float,
    start: str | None = None,
    end: str | None = None,
    total_rails: list[str] | None = None,
    name: str = "power",
) -> WindowStats:
    rs = sorted(readings, key=lambda r: r.t_s)
    if not rs:
        raise _too_few("counter readings", 0, t0, t1, name)
    rails, notes = _common_rails(rs, name)
    cum = _unwrapped(rs, rails, name)
    times = np.array([r.t_s for r in rs])
    e0, r0 = _counter_edge(rs, cum, times, start, t0, name)
    e1, r1 = _counter_edge(rs, cum, times, end, t1, name)
    t0 = r0.t_s if r0 else t0
    t1 = r1.t_s if r1 else t1
    inside = [r for r in rs if t0 <= r.t_s <= t1]
    if len(inside) < 2:  # labelled edge readings are inside by construction
        raise _too_few("counter readings", len(inside), t0, t1, name)
    duration = _counters_duration(r0, r1, t0, t1, name)
    per_rail = {rail: float(e1[j] - e0[j]) for j, rail in enumerate(rails)}
    counted = [r for r in rails if total_rails is None or r in total_rails]
    if not counted:
        raise PowerError(f"{name}: none of the rails to total ({', '.join(total_rails or [])}) was read")
    energy = sum(per_rail[r] for r in counted)
    q0, q1 = (r0.step_j if r0 else 0.0), (r1.step_j if r1 else 0.0)
    u_energy = math.hypot(q0, q1) / SQRT12
    u_dur = math.hypot(r0.width_s if r0 else 0.0, r1.width_s if r1 else 0.0) / SQRT12
    avg = energy / duration
    sem = _interval_power_sem(rs, inside, cum, times, rails, counted)
    u_avg = math.sqrt((u_energy / duration) ** 2 + (avg * u_dur / duration) ** 2 + sem**2)
    return WindowStats(
        t0=t0,
        t1=t1,
        duration_s=duration,
        energy_j=energy,
        avg_power_w=avg,
        sample_count=len(inside),
        sampling_period_s=_median_step([r.t_s for r in inside]),
        u_energy_j=u_energy,
        u_avg_power_w=u_avg,
        u_duration_s=u_dur,
        per_rail_j=per_rail,
        notes=notes,
    )


def _common_rails(rs: list[CounterReading], name: str) -> tuple[list[str], list[str]]:
    """The rails every reading has, and a note naming those some readings lack (left out)."""
    rails = sorted(set.intersection(*(set(r.energy_j) for r in rs)))
    notes = []
    dropped = sorted(set().union(*(set(r.energy_j) for r in rs)) - set(rails))
    if dropped:
        notes.append(f"rails missing from some readings, left out: {', '.join(dropped)}")
    if not rails:
        raise PowerError(f"{name}: no rail appears in every counter reading")
    return rails, notes


def _counter_edge(rs: list[CounterReading], cum: np.ndarray, times: np.ndarray, label: str | None, t: float,
                  name: str) -> tuple[np.ndarray, CounterReading | None]:
    """Cumulative joules per rail at a window edge: the reading labelled `label`, else interpolated at t."""
    for i, r in enumerate(rs):
        if label is not None and r.label == label:
            return cum[i], r
    if not times[0] <= t <= times[-1]:
        raise PowerError(
            f"{name}: no counter reading on both sides of t={t:.3f} "
            f"(readings {times[0]:.3f}..{times[-1]:.3f})"
        )
    return np.array([np.interp(t, times, cum[:, j]) for j in range(cum.shape[1])]), None


def _counters_duration(r0: CounterReading | None, r1: CounterReading | None, t0: float, t1: float,
                       name: str) -> float:
    """The window's length: on the device's clock when both edges are labelled readings that carry it."""
    if r0 and r1 and r0.device_t_s is not None and r1.device_t_s is not None:
        duration = r1.device_t_s - r0.device_t_s
    else:
        duration = t1 - t0
    if not duration > 0:
        raise PowerError(f"{name}: the window has no duration ({duration:.6f} s)")
    return duration


def _interval_power_sem(rs: list[CounterReading], inside: list[CounterReading], cum: np.ndarray, times: np.ndarray,
                        rails: list[str], counted: list[str]) -> float:
    """Standard error of the mean power between successive readings: how steady the draw was (0 with
    fewer than 3 readings inside)."""
    if len(inside) < 3:
        return 0.0
    idx = [rs.index(r) for r in inside]
    tot = np.array([sum(cum[i, rails.index(r)] for r in counted) for i in idx])
    p = np.diff(tot) / np.diff(times[idx])
    return float(np.std(p, ddof=1)) / math.sqrt(len(p)) if len(p) >= 2 else 0.0


def window(log: PowerLog, start: str, end: str) -> WindowStats:
    """The window between two marks of a parsed log."""
    t0, t1 = log.mark(start), log.mark(end)
    name = log.source
    if log.sampling == "sampled":
        if not log.samples:
            why = "; ".join(log.notes) if log.notes else "the log has no valid sample"
            raise PowerError(f"{name}: no power samples ({why}; {log.skipped_lines} lines skipped)")
        try:
            return samples_window(log.samples, t0, t1, name)
        except PowerError as e:
            if log.notes:
                raise PowerError(f"{e.detail} [{'; '.join(log.notes)}]") from None
            raise
    if log.sampling == "counter":
        return counters_window(log.readings, t0, t1, start, end, log.total_rails, name)
    raise PowerError(f"{name}: this source measures nothing")


def energy_per_inference(
    run: WindowStats,
    inferences: int,
    idle: WindowStats | None = None,
    source: str = "power",
    skipped_lines: int = 0,
    notes: list[str] | None = None,
    details: dict | None = None,
) -> PowerResult:
    if isinstance(inferences, bool) or not isinstance(inferences, int) or inferences < 1:
        raise PowerError(
            f"{source}: energy per inference needs a positive inference count, not {inferences!r}"
        )
    all_notes = list(notes or []) + [f"run window: {n}" for n in run.notes]
    gross = run.energy_j
    if idle is not None:
        all_notes += [f"idle window: {n}" for n in idle.notes]
        baseline = idle.avg_power_w * run.duration_s
        net = gross - baseline
        u = math.sqrt(
            run.u_energy_j**2
            + (idle.u_avg_power_w * run.duration_s) ** 2
            + (idle.avg_power_w * run.u_duration_s) ** 2
        )
        if net < 0:
            all_notes.append("the run drew less than the idle baseline: net energy is negative")
    else:
        net, u = gross, run.u_energy_j
        all_notes.append("no idle window: energy per inference includes the idle draw")
    return PowerResult(
        source=source,
        measured=True,
        avg_power_w=run.avg_power_w,
        idle_power_w=idle.avg_power_w if idle else None,
        energy_j=gross,
        net_energy_j=net,
        energy_per_inference_mj=net / inferences * 1e3,
        gross_energy_per_inference_mj=gross / inferences * 1e3,
        inferences=inferences,
        duration_s=run.duration_s,
        idle_duration_s=idle.duration_s if idle else None,
        sample_count=run.sample_count,
        idle_sample_count=idle.sample_count if idle else 0,
        sampling_period_s=run.sampling_period_s,
        skipped_lines=skipped_lines,
        per_rail_j=dict(run.per_rail_j),
        uncertainty_j=u,
        uncertainty_per_inference_mj=u / inferences * 1e3,
        notes=all_notes,
        details=dict(details or {}),
    )


def measure(
    log: PowerLog,
    inferences: int,
    run: tuple[str, str] = (RUN_START, RUN_END),
    idle: tuple[str, str] | None = (IDLE_START, RUN_START),
) -> PowerResult:
    """The cell's PowerResult from a parsed log; `idle=None` skips the baseline subtraction."""
    if log.sampling == "none":
        return PowerResult.not_measured(log.source, f"not measured (power source: {log.source})", log.notes)
    run_w = window(log, *run)
    idle_w = window(log, *idle) if idle else None
    return energy_per_inference(
        run_w, inferences, idle_w, log.source, log.skipped_lines, log.notes, log.details
    )


def energy_from_samples(
    run_samples: list[PowerSample],
    inferences: int,
    idle_samples: list[PowerSample] | None = None,
    source: str = "samples",
) -> PowerResult:
    """Energy per inference from two sample lists, each window spanning its own first..last sample."""
    run_w = samples_window(run_samples, name=source)
    idle_w = samples_window(idle_samples, name=source) if idle_samples is not None else None
    return energy_per_inference(run_w, inferences, idle_w, source)
