"""`external`: a user's meter command (USB power meter, smart plug, lab supply), run on the host.

The command prints one line per sample, either `<timestamp_s> <watts>` (a trailing `W` is allowed)
or `<timestamp_s> <joules>J` (cumulative energy). Timestamps must be Unix epoch seconds of the
host, i.e. Python's time.time(): the window marks are written on that clock (`$EPOCHREALTIME` or
`date +%s.%N`). Anything else on a line (headers, NaN, negative watts, a cumulative value that went
down) is skipped and counted. Watts lines give power samples; joules lines give counter readings,
interpolated at the marks.
"""

from __future__ import annotations

from qbench.collectors.power import shell
from qbench.collectors.power.base import (
    POWER_SOURCES,
    CounterReading,
    PowerError,
    PowerLog,
    PowerSample,
    PowerSource,
    ProbeResult,
    check_label,
)
from qbench.collectors.power.logfmt import EPOCH_CLOCKS, parse_number, scan
from qbench.collectors.power.probe import did_not_run, from_lines, probe_lines


def format_mark(label: str, t_s: float) -> str:
    """A mark line for a host process to append itself (clock=python: time.time())."""
    return f"# mark {check_label(label)} {t_s:.6f} clock=python\n"


@POWER_SOURCES.register("external")
class ExternalMeter(PowerSource):
    name = "external"
    kind = "sampled"
    where = "host"
    note = (
        "External meter: whatever the meter sees (usually the device's USB or wall input, so "
        "charger and regulator losses are included). Its timestamps must be host epoch seconds."
    )

    def __init__(self, command: str = ""):
        self.command = command

    def probe_command(self) -> str:
        p = shell.PROBE_PREFIX
        if not self.command.strip():
            return f'echo "{p} error no meter command given (external power source needs command=...)"'
        first = self.command.split()[0]
        return (
            f'if command -v {shell.q(first)} > /dev/null 2>&1; then echo "{p} ok"; '
            f'else echo "{p} nocmd {first}"; fi'
        )

    def parse_probe(self, stdout: str, returncode: int = 0, stderr: str = "") -> ProbeResult:
        lines = probe_lines(stdout)
        return from_lines(lines) if lines else did_not_run(returncode, stderr)

    def start_command(self, log_path: str, period_s: float = 0.1, max_seconds: float = 3600.0) -> str:
        """The meter runs in its own session (setsid) so stop can end it and its children together."""
        log, pid = shell.q(log_path), shell.q(log_path + ".pid")
        cmd = shell.q(self.command)
        return (
            f"{shell.mkdir_for(log_path)}; {shell.CLOCK_PRELUDE}; "
            f"{shell.header_echo(self.name)} > {log}; "
            f"if command -v setsid > /dev/null 2>&1; then qb_ss=setsid; else qb_ss=; fi; "
            f"$qb_ss sh -c {cmd} >> {log} 2>&1 < /dev/null & echo $! > {pid}"
        )

    def mark_command(self, log_path: str, label: str) -> str:
        return shell.mark(log_path, label)

    def stop_command(self, log_path: str) -> str:
        pid = shell.q(log_path + ".pid")
        return (
            f"if [ -f {pid} ]; then read -r qb_p < {pid}; "
            f'kill -TERM -- "-$qb_p" 2>/dev/null || kill "$qb_p" 2>/dev/null; '
            f"rm -f {pid}; fi; :"
        )

    def parse_log(self, text: str) -> PowerLog:
        sc = scan(text)
        watts: list[PowerSample] = []
        joules: list[tuple[float, float]] = []
        for line in sc.data:
            tok = line.split()
            t = parse_number(tok[0]) if len(tok) == 2 else None
            if t is None:
                sc.skips.add(line, "expected <timestamp_s> <watts> or <timestamp_s> <joules>J")
                continue
            value = tok[1]
            if value[-1:] in ("J", "j"):
                e = parse_number(value[:-1])
                if e is None or e < 0:
                    sc.skips.add(line, "bad joules")
                elif joules and e < joules[-1][1]:
                    sc.skips.add(line, "cumulative joules went down")
                else:
                    joules.append((t, e))
                continue
            w = parse_number(value[:-1] if value[-1:] in ("W", "w") else value)
            if w is None or w < 0:
                sc.skips.add(line, "bad watts")
                continue
            watts.append(PowerSample(t, w))
        if watts and joules:
            raise PowerError(f"{self.name}: the meter printed both watts and joules lines; pick one")
        sampling = "counter" if joules else "sampled"
        log = PowerLog(self.name, sampling, clock=sc.clock, marks=sc.marks, notes=list(sc.notes))
        log.samples = watts
        log.readings = [CounterReading(t_s=t, energy_j={"meter": e}) for t, e in joules]
        log.skipped_lines, log.skipped_examples = sc.skips.count, sc.skips.examples
        clocks = {sc.clock} if sc.clock else set()
        if clocks - EPOCH_CLOCKS:
            log.notes.append(
                f"marks use the {sc.clock} clock, not epoch seconds: they cannot line up with the meter"
            )
        return log
