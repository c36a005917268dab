"""`none`: no power source. Every result says "not measured"; nothing is ever reported as 0 W."""

from __future__ import annotations

from qbench.collectors.power.base import POWER_SOURCES, PowerLog, PowerSource, ProbeResult


@POWER_SOURCES.register("none")
class NoPower(PowerSource):
    name = "none"
    kind = "none"
    note = "Power was not measured."

    def probe_command(self) -> str:
        return ":"

    def parse_probe(self, stdout: str, returncode: int = 0, stderr: str = "") -> ProbeResult:
        return ProbeResult(
            True, "ok", warnings=["no power source selected: power is reported as not measured"]
        )

    def start_command(self, log_path: str, period_s: float = 0.1, max_seconds: float = 3600.0) -> str:
        return ":"

    def mark_command(self, log_path: str, label: str) -> str:
        return ":"

    def stop_command(self, log_path: str) -> str:
        return ":"

    def parse_log(self, text: str) -> PowerLog:
        return PowerLog(self.name, "none")
