"""`rpi5-pmic`: Raspberry Pi 5 PMIC ADC via `vcgencmd pmic_read_adc`, sampled on the board.

Output format (firmware of 2024-2026, as quoted in raspberrypi/linux#6473 and public captures):

       VDD_CORE_A current(7)=0.56259000A
       VDD_CORE_V volt(15)=0.76798460V
          EXT5V_V volt(24)=5.14158000V

Right-aligned names, channel numbers not in order, current lines first. Rail power = the `X_A`
current times the `X_V` voltage of the same rail X; a rail with only one of them (EXT5V_V and
BATT_V have no current) is unmatched: counted, named in the details, left out of the total.
A board without the command (Pi 4) answers `error=1 error_msg="Command not registered"`.

Each sample in the log is a `# sample <t>` line followed by the command's output. A sample with
fewer matched rails than most samples (the loop was stopped mid-output) is skipped and counted.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field

from qbench.collectors.power import shell
from qbench.collectors.power.base import POWER_SOURCES, PowerLog, PowerSample, PowerSource, ProbeResult
from qbench.collectors.power.logfmt import Skips, scan
from qbench.collectors.power.probe import did_not_run, from_lines, probe_lines

_LINE = re.compile(
    r"^\s*(?P<rail>\S+)_(?P<kind>[AV])\s+(?P<what>current|volt)\(\d+\)="
    r"(?P<val>[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?P<unit>[AV])\s*$"
)
_ERROR = re.compile(r'^\s*error=\d+\s+error_msg="?([^"]*)"?\s*$')
_DENIED = (
    "VCHI initialization failed",
    "Can't open device file",
    "Permission denied",
    "failed to open vchiq",
)


@dataclass
class PmicReading:
    amps: dict[str, float] = field(default_factory=dict)
    volts: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    skips: Skips = field(default_factory=Skips)

    @property
    def pairs(self) -> list[str]:
        return sorted(self.amps.keys() & self.volts.keys())

    @property
    def unmatched(self) -> list[str]:
        return sorted(
            [f"{r}_A" for r in self.amps.keys() - self.volts.keys()]
            + [f"{r}_V" for r in self.volts.keys() - self.amps.keys()]
        )

    def rail_watts(self) -> dict[str, float]:
        return {r: self.amps[r] * self.volts[r] for r in self.pairs}


def parse_pmic_read_adc(text: str, skips: Skips | None = None) -> PmicReading:
    out = PmicReading(skips=skips or Skips())
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            e = _ERROR.match(line)
            if e:
                out.error = e.group(1)
            out.skips.add(line, "expected NAME_A current(n)=xA or NAME_V volt(n)=xV")
            continue
        kind, what, unit = m.group("kind"), m.group("what"), m.group("unit")
        if (kind, what, unit) not in (("A", "current", "A"), ("V", "volt", "V")):
            out.skips.add(line, "name suffix, quantity and unit disagree")
            continue
        table = out.amps if kind == "A" else out.volts
        rail = m.group("rail")
        if rail in table:
            out.skips.add(line, f"{rail}_{kind} appears twice")
            continue
        table[rail] = float(m.group("val"))
    return out


@POWER_SOURCES.register("rpi5-pmic")
class RaspberryPi5Pmic(PowerSource):
    name = "rpi5-pmic"
    kind = "sampled"
    note = (
        "Raspberry Pi 5 PMIC ADC: sum of current x voltage over the board's internal rails. The 5 V "
        "input (EXT5V) has no current reading, so the PMIC's conversion losses, USB devices, the fan "
        "and HATs are not included: the wall draw is higher (public fits give roughly "
        "1.13 x rails + 0.64 W). Each vcgencmd call takes tens of ms, which bounds the sampling rate."
    )

    def __init__(self, vcgencmd: str = "vcgencmd"):
        self.vcgencmd = vcgencmd

    def probe_command(self) -> str:
        p, v = shell.PROBE_PREFIX, shell.q(self.vcgencmd)
        return (
            f'if ! command -v {v} > /dev/null 2>&1; then echo "{p} nocmd {self.vcgencmd}"; '
            f'else echo "{p} ran"; {v} pmic_read_adc 2>&1; fi'
        )

    def parse_probe(self, stdout: str, returncode: int = 0, stderr: str = "") -> ProbeResult:
        lines = probe_lines(stdout)
        if not lines:
            return did_not_run(returncode, stderr)
        if any(s == "nocmd" for s, _ in lines):
            return from_lines(lines)
        body = "\n".join(ln for ln in stdout.splitlines() if not ln.startswith(shell.PROBE_PREFIX))
        for needle in _DENIED:
            if needle in body:
                msg = next(ln.strip() for ln in body.splitlines() if needle in ln)
                return ProbeResult(
                    False,
                    f"permission denied on /dev/vcio ({self.vcgencmd}: {msg}); "
                    "add the user to the video group",
                )
        reading = parse_pmic_read_adc(body)
        if reading.error:
            return ProbeResult(
                False,
                f"{self.vcgencmd} has no pmic_read_adc ({reading.error}): "
                "needs a Raspberry Pi 5 and current firmware",
            )
        if not reading.pairs:
            return ProbeResult(False, f"{self.vcgencmd} pmic_read_adc printed no current/voltage pair")
        return ProbeResult(
            True,
            "ok",
            details={
                "rails": reading.pairs,
                "unmatched_rails": reading.unmatched,
                "watts_now": sum(reading.rail_watts().values()),
            },
        )

    def start_command(self, log_path: str, period_s: float = 0.1, max_seconds: float = 3600.0) -> str:
        body = f'qb_now; echo "# sample $qb_t"; {shell.q(self.vcgencmd)} pmic_read_adc'
        return shell.start_loop(log_path, self.name, body, period_s, max_seconds)

    def mark_command(self, log_path: str, label: str) -> str:
        return shell.mark(log_path, label)

    def stop_command(self, log_path: str) -> str:
        return shell.stop_loop(log_path)

    def parse_log(self, text: str) -> PowerLog:
        sc = scan(text, blocks=True)
        log = PowerLog(self.name, "sampled", clock=sc.clock, marks=sc.marks, notes=list(sc.notes))
        for line in sc.data:
            sc.skips.add(line, "outside a `# sample` block")
        parsed = [(t, lines, parse_pmic_read_adc("\n".join(lines), sc.skips)) for t, lines in sc.blocks]
        full = (
            statistics.mode([len(r.pairs) for _, _, r in parsed if r.pairs])
            if any(r.pairs for _, _, r in parsed)
            else 0
        )
        unmatched: set[str] = set()
        errors: set[str] = set()
        for t, lines, r in parsed:
            if r.error:
                errors.add(r.error)
            if not r.pairs or len(r.pairs) < full:
                for line in lines:  # lines the parser accepted still belong to a partial sample
                    if _LINE.match(line):
                        sc.skips.add(line, "partial sample")
                continue
            unmatched.update(r.unmatched)
            rails = r.rail_watts()
            log.samples.append(PowerSample(t, sum(rails.values()), rails))
        log.skipped_lines, log.skipped_examples = sc.skips.count, sc.skips.examples
        log.details["unmatched_rails"] = sorted(unmatched)
        log.details["unmatched_count"] = len(unmatched)
        if unmatched:
            log.notes.append(
                f"rails without a current/voltage pair, not in the total: {', '.join(sorted(unmatched))}"
            )
        if errors:
            log.notes.append(f"vcgencmd said: {'; '.join(sorted(errors))}")
        return log
