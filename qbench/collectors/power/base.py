"""The PowerSource interface, its registry, and the types every source and the energy math share.

Sampling happens on the device, never with one adb/ssh round trip per sample. So a source is a set
of shell snippets plus a pure parser:

* `probe_command()` tells whether the device has the source; `parse_probe()` turns its output into
  a `ProbeResult` with a reason a person can act on ("permission denied on ...").
* `start_command(log)` starts sampling into a log file on the device (sampled sources: a background
  POSIX `sh` loop; counter sources: just the log header).
* `mark_command(log, label)` records a window edge in that same log, on the same clock: a mark line
  for sampled sources, a timestamped counter snapshot for counter sources.
* `stop_command(log)` ends the loop. The log is then pulled and `parse_log(text)` makes a `PowerLog`.
* `qbench.collectors.power.energy.measure(log, inferences)` does the energy math.

Run every snippet as `device.run(["sh", "-c", snippet], ...)`: they are plain POSIX sh and work in
dash, bash, busybox ash and mksh (Android's /system/bin/sh).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import ClassVar, Literal

from qbench.errors import CellError
from qbench.registry import Registry

# The window edges the energy math looks for by default.
IDLE_START, RUN_START, RUN_END = "idle_start", "run_start", "run_end"

_LABEL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class PowerError(CellError):
    """Power could not be measured (too few samples, charging phone, unreadable log); recorded on the cell."""

    def __init__(self, message: str):
        super().__init__("power", message)
        self.detail = message


def check_label(label: str) -> str:
    """Labels go into shell snippets and log lines unquoted, so they stay in a safe alphabet."""
    if not _LABEL.match(label):
        raise ValueError(f"power mark label {label!r} must match {_LABEL.pattern}")
    return label


@dataclass
class PowerSample:
    """Instantaneous power at one time; `rails` holds per-rail watts when the source has rails."""

    t_s: float
    watts: float
    rails: dict[str, float] = field(default_factory=dict)


@dataclass
class CounterReading:
    """Cumulative energy counters read at one time (a window edge, or one of many meter lines)."""

    t_s: float  # the log's clock (same as the marks): midpoint of the snapshot
    energy_j: dict[str, float]  # rail -> cumulative joules as read (may have wrapped)
    wrap_j: dict[str, float] = field(default_factory=dict)  # rail -> counter range (RAPL); absent: no wrap
    device_t_s: float | None = None  # the counter's own timestamp (ODPM `t=`), better for durations
    label: str | None = None  # the mark label when this reading is a window edge
    width_s: float = 0.0  # how long the snapshot took: the reading happened somewhere inside
    step_j: float = 0.0  # quantization step of one reading, summed over the counted rails


@dataclass
class PowerLog:
    """Everything one log says: samples or counter readings, window marks, and what was skipped."""

    source: str
    sampling: Literal["sampled", "counter", "none"]
    clock: str | None = None
    samples: list[PowerSample] = field(default_factory=list)
    readings: list[CounterReading] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    skipped_lines: int = 0
    skipped_examples: list[str] = field(default_factory=list)  # the first few, to show in errors
    total_rails: list[str] | None = None  # rails summed into the total (None: all of them)
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)  # source facts: detected units, unmatched rails, ...

    def mark(self, label: str) -> float:
        try:
            return self.marks[label]
        except KeyError:
            known = ", ".join(sorted(self.marks)) or "none"
            raise PowerError(f"{self.source}: no mark {label!r} in the power log (marks: {known})") from None


@dataclass
class ProbeResult:
    available: bool
    reason: str  # "ok" or why not, e.g. "vcgencmd not found"
    warnings: list[str] = field(default_factory=list)  # available, but the numbers may mislead
    details: dict = field(default_factory=dict)


@dataclass
class PowerResult:
    """What a cell reports about power. Unmeasured values are None, never 0."""

    source: str
    measured: bool
    reason: str | None = None  # why not measured
    avg_power_w: float | None = None  # mean power over the run window (gross)
    idle_power_w: float | None = None
    energy_j: float | None = None  # gross energy over the run window
    net_energy_j: float | None = None  # energy_j minus idle power x run duration
    energy_per_inference_mj: float | None = None  # net when an idle window was given, else gross
    gross_energy_per_inference_mj: float | None = None
    inferences: int | None = None
    duration_s: float | None = None
    idle_duration_s: float | None = None
    sample_count: int = 0
    idle_sample_count: int = 0
    sampling_period_s: float | None = None  # median spacing of samples/readings in the run window
    skipped_lines: int = 0
    per_rail_j: dict[str, float] = field(default_factory=dict)
    uncertainty_j: float | None = None  # 1 sigma on net_energy_j (see energy.py)
    uncertainty_per_inference_mj: float | None = None
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    @classmethod
    def not_measured(cls, source: str, reason: str, notes: list[str] | None = None) -> PowerResult:
        return cls(source=source, measured=False, reason=reason, notes=list(notes or []))

    def to_dict(self) -> dict:
        return asdict(self)


class PowerSource(ABC):
    name: ClassVar[str]
    kind: ClassVar[Literal["sampled", "counter", "none"]]
    where: ClassVar[Literal["device", "host"]] = "device"  # the external meter runs on the host
    note: ClassVar[str]  # what the numbers cover and what the user must do; goes into the report

    @abstractmethod
    def probe_command(self) -> str:
        """A snippet printing `qbench-probe: ...` lines; it always exits 0 when the shell works."""

    @abstractmethod
    def parse_probe(self, stdout: str, returncode: int = 0, stderr: str = "") -> ProbeResult: ...

    @abstractmethod
    def start_command(self, log_path: str, period_s: float = 0.1, max_seconds: float = 3600.0) -> str:
        """Start sampling into `log_path`; returns at once. `max_seconds` stops a forgotten loop."""

    @abstractmethod
    def mark_command(self, log_path: str, label: str) -> str:
        """Record the window edge `label` in the log (sampled: a mark; counter: a counter snapshot)."""

    @abstractmethod
    def stop_command(self, log_path: str) -> str: ...

    @abstractmethod
    def parse_log(self, text: str) -> PowerLog:
        """Pure: garbage and partial lines are skipped and counted, never turned into numbers."""

    def bracket_command(self, log_path: str, command: str, idle_seconds: float) -> str:
        """One snippet: idle window, then `command` between run marks; keeps the command's exit code."""
        idle = f"sleep {idle_seconds:g}; " if idle_seconds > 0 else ""
        return (
            f"{self.mark_command(log_path, IDLE_START)}; {idle}"
            f"{self.mark_command(log_path, RUN_START)}; {command}; qb_rc=$?; "
            f"{self.mark_command(log_path, RUN_END)}; exit $qb_rc"
        )


POWER_SOURCES: Registry[type[PowerSource]] = Registry("power source")


def get_power_source(name: str, **options) -> PowerSource:
    """The source registered as `name`, built with its options; an unknown name lists the choices."""
    return POWER_SOURCES.get(name)(**options)
