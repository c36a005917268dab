"""Turning `qbench-probe: <status> <detail>` lines into a ProbeResult with a reason a person can act on."""

from __future__ import annotations

from qbench.collectors.power.base import ProbeResult
from qbench.collectors.power.shell import PROBE_PREFIX

_MESSAGES = {
    "missing": "{} not found",
    "nocmd": "{} not found",
    "denied": "permission denied on {}",
    "error": "{}",
}


def probe_lines(stdout: str) -> list[tuple[str, str]]:
    out = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith(PROBE_PREFIX):
            status, _, detail = line[len(PROBE_PREFIX) :].strip().partition(" ")
            out.append((status, detail.strip()))
    return out


def did_not_run(returncode: int, stderr: str) -> ProbeResult:
    last = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return ProbeResult(False, f"probe did not run: {last[-1] if last else f'exit code {returncode}'}")


def from_lines(lines: list[tuple[str, str]], hint: str = "") -> ProbeResult:
    """Any missing/denied/nocmd/error line makes the source unavailable; all reasons are joined."""
    problems = [_MESSAGES[s].format(d) for s, d in lines if s in _MESSAGES]
    if problems:
        reason = "; ".join(dict.fromkeys(problems))
        if hint and any(s == "denied" for s, _ in lines):
            reason += f" ({hint})"
        return ProbeResult(False, reason)
    if not any(s == "ok" for s, _ in lines):
        return ProbeResult(False, "probe printed nothing usable")
    return ProbeResult(True, "ok")
