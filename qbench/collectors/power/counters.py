"""What counter sources (RAPL, Android's power rails) share: a log of counter snapshots taken at the
window marks becomes a PowerLog of CounterReadings. Each source only says how one snapshot's lines
turn into per-rail joules."""

from __future__ import annotations

from typing import Callable

from qbench.collectors.power.base import CounterReading, PowerLog
from qbench.collectors.power.logfmt import Scan, Skips, Snapshot, scan

# (snapshot, skips) -> a reading, or None when the snapshot held no readable counter
ReadSnapshot = Callable[[Snapshot, Skips], "CounterReading | None"]


def parse_counter_log(source: str, text: str, read: ReadSnapshot, unreadable: str = "counter") -> tuple[PowerLog, Scan]:
    """Readings in log order; lines outside snapshots are skipped and counted. Returns the scan too,
    for sources that read more of the header."""
    sc = scan(text)
    log = PowerLog(source, "counter", clock=sc.clock, marks=sc.marks, notes=list(sc.notes))
    for line in sc.data:
        sc.skips.add(line, "outside a snapshot")
    for snap in sc.snapshots:
        reading = read(snap, sc.skips)
        if reading is not None:
            log.readings.append(reading)
        else:
            log.notes.append(f"snapshot {snap.label!r} had no readable {unreadable}")
    log.skipped_lines, log.skipped_examples = sc.skips.count, sc.skips.examples
    return log, sc


def snapshot_reading(snap: Snapshot, energy_j: dict[str, float], *, step_j: float, wrap_j: dict | None = None,
                     device_t_s: float | None = None, width_s: float | None = None) -> CounterReading:
    """A reading timed at the snapshot's midpoint on the log clock; its width is how long the
    snapshot took unless the counter itself says better."""
    t_end = snap.t_end if snap.t_end is not None else snap.t_start
    return CounterReading(
        t_s=(snap.t_start + t_end) / 2,
        energy_j=energy_j,
        wrap_j=wrap_j or {},
        device_t_s=device_t_s,
        label=snap.label,
        width_s=width_s if width_s is not None else t_end - snap.t_start,
        step_j=step_j,
    )
