"""`android-battery`: the fuel gauge's current_now x voltage_now, sampled on the phone.

Log line written by the loop: `<t> <current_now> <voltage_now> <status>` (status may be two words,
"Not charging"). Vendor differences handled here:

* Units. The kernel ABI says microamps and microvolts (Documentation/ABI/testing/sysfs-class-power),
  but some vendors' gauges print mA / mV. "auto" decides on magnitude: a median |current| below
  10000 is taken as mA (10000 uA = 10 mA is below what an awake phone running a model draws, while
  10000 mA = 10 A is above what any phone draws). Voltage: above 100000 is uV, above 100 is mV.
  Both can be forced (`current_unit="uA"|"mA"`, `voltage_unit="uV"|"mV"|"V"`).
* Sign. The kernel documented "negative = discharging" only in 2020 (commit 05f94eb98907, which
  lists three conventions in use: negative-discharge, positive-discharge, always positive). "auto"
  takes the majority sign of the discharging samples as discharge; a sample of the other sign is
  kept as negative power (the battery was net charging then) and counted in a note.
  `discharge_sign="negative"|"positive"` forces it.
* Charging. Samples whose status is Charging or Full are left out (the gauge then sees charger
  input minus phone draw, not the phone's draw) and counted in a note.
"""

from __future__ import annotations

import statistics

from qbench.collectors.power import shell
from qbench.collectors.power.base import POWER_SOURCES, PowerLog, PowerSample, PowerSource, ProbeResult
from qbench.collectors.power.logfmt import parse_number, scan
from qbench.collectors.power.probe import did_not_run, from_lines, probe_lines

CURRENT_SCALE = {"uA": 1e-6, "mA": 1e-3}
VOLTAGE_SCALE = {"uV": 1e-6, "mV": 1e-3, "V": 1.0}
PLUGGED = {"Charging", "Full"}


def detect_current_unit(currents: list[float]) -> str:
    return "mA" if statistics.median(abs(c) for c in currents) < 10_000 else "uA"


def detect_voltage_unit(volts: list[float]) -> str:
    m = statistics.median(abs(v) for v in volts)
    return "uV" if m > 100_000 else "mV" if m > 100 else "V"


@POWER_SOURCES.register("android-battery")
class AndroidBattery(PowerSource):
    name = "android-battery"
    kind = "sampled"
    note = (
        "Whole-phone draw from the battery fuel gauge (current_now x voltage_now). The phone must run "
        "on its battery: unplug USB (use adb over Wi-Fi) or switch charging off in hardware; "
        "`dumpsys battery unplug` only changes what Android reports, the charger keeps feeding the "
        "phone. The gauge refreshes current_now on its own schedule (often about once a second), so "
        "short runs get few distinct readings."
    )

    def __init__(
        self,
        supply_dir: str = "/sys/class/power_supply/battery",
        current_unit: str = "auto",
        voltage_unit: str = "auto",
        discharge_sign: str = "auto",
    ):
        if current_unit not in ("auto", *CURRENT_SCALE):
            raise ValueError(f"current_unit must be auto, uA or mA, not {current_unit!r}")
        if voltage_unit not in ("auto", *VOLTAGE_SCALE):
            raise ValueError(f"voltage_unit must be auto, uV, mV or V, not {voltage_unit!r}")
        if discharge_sign not in ("auto", "negative", "positive"):
            raise ValueError(f"discharge_sign must be auto, negative or positive, not {discharge_sign!r}")
        self.supply_dir = supply_dir.rstrip("/")
        self.current_unit, self.voltage_unit, self.discharge_sign = current_unit, voltage_unit, discharge_sign

    def _file(self, leaf: str) -> str:
        return f"{self.supply_dir}/{leaf}"

    def probe_command(self) -> str:
        status = shell.q(self._file("status"))
        return (
            shell.probe_readable([self._file("current_now"), self._file("voltage_now")])
            + f'; if read -r qb_s 2>/dev/null < {status}; then echo "{shell.PROBE_PREFIX} status $qb_s"; fi'
        )

    def parse_probe(self, stdout: str, returncode: int = 0, stderr: str = "") -> ProbeResult:
        lines = probe_lines(stdout)
        if not lines:
            return did_not_run(returncode, stderr)
        result = from_lines(lines)
        status = next((d for s, d in lines if s == "status"), None)
        if status is not None:
            result.details["status"] = status
            if status in PLUGGED:
                result.warnings.append(
                    f"battery status is {status}: unplug USB or turn charging off, or the draw is wrong"
                )
        return result

    def start_command(self, log_path: str, period_s: float = 0.1, max_seconds: float = 3600.0) -> str:
        c, v, s = (shell.q(self._file(x)) for x in ("current_now", "voltage_now", "status"))
        # The variables are emptied first so a failed read gives a line the parser skips and counts,
        # never a stale value. A read's error goes to /dev/null (2>/dev/null before the < that may
        # fail): the shell writes its message in pieces, and a mark appended between them would be
        # glued onto it and lost. The line says which file was unreadable instead.
        body = (
            f"qb_c=; qb_v=; qb_s=; qb_now; read -r qb_c 2>/dev/null < {c}; "
            f"read -r qb_v 2>/dev/null < {v}; read -r qb_s 2>/dev/null < {s}; "
            f'[ -n "$qb_c" ] || qb_c=unreadable:current_now; [ -n "$qb_v" ] || qb_v=unreadable:voltage_now; '
            f'echo "$qb_t $qb_c $qb_v $qb_s"'
        )
        return shell.start_loop(log_path, self.name, body, period_s, max_seconds)

    def mark_command(self, log_path: str, label: str) -> str:
        return shell.mark(log_path, label)

    def stop_command(self, log_path: str) -> str:
        return shell.stop_loop(log_path)

    def parse_log(self, text: str) -> PowerLog:
        sc = scan(text)
        log = PowerLog(self.name, "sampled", clock=sc.clock, marks=sc.marks, notes=list(sc.notes))
        rows: list[tuple[float, float, float, str]] = []
        for line in sc.data:
            tok = line.split()
            vals = [parse_number(x) for x in tok[:3]]
            if len(tok) < 3 or any(x is None for x in vals):
                sc.skips.add(line, "expected: time current voltage [status]")
                continue
            rows.append((vals[0], vals[1], vals[2], " ".join(tok[3:])))
        log.skipped_lines, log.skipped_examples = sc.skips.count, sc.skips.examples
        if sc.clock == "uptime":
            log.notes.append("clock: /proc/uptime (10 ms resolution)")
        if not rows:
            return log
        cu = self.current_unit if self.current_unit != "auto" else detect_current_unit([r[1] for r in rows])
        vu = self.voltage_unit if self.voltage_unit != "auto" else detect_voltage_unit([r[2] for r in rows])
        log.details.update(current_unit=cu, voltage_unit=vu)
        usable = [r for r in rows if r[3] not in PLUGGED]
        plugged = len(rows) - len(usable)
        if plugged:
            log.notes.append(
                f"{plugged} of {len(rows)} samples taken while Charging/Full were left out: "
                "unplug USB or turn charging off"
            )
        if not usable:
            return log
        sign = self._discharge_sign([r[1] for r in usable])
        log.details["discharge_sign"] = "negative" if sign < 0 else "positive"
        against = sum(1 for r in usable if r[1] * sign < 0)
        if against:
            log.notes.append(
                f"{against} samples had the charging sign (net charge into the battery): "
                "kept as negative power"
            )
        if all(r[1] == 0 for r in usable):
            log.notes.append("current_now stayed 0: this gauge may not report instantaneous current")
        ci, vi = CURRENT_SCALE[cu], VOLTAGE_SCALE[vu]
        log.samples = [PowerSample(t, c * sign * ci * v * vi) for t, c, v, _ in usable]
        return log

    def _discharge_sign(self, currents: list[float]) -> float:
        if self.discharge_sign != "auto":
            return -1.0 if self.discharge_sign == "negative" else 1.0
        neg = sum(1 for c in currents if c < 0)
        pos = sum(1 for c in currents if c > 0)
        return -1.0 if neg > pos else 1.0
