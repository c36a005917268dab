"""The Runner interface: how to start a timing process on a device and read its report.

Every runner speaks the contract in contract.md (same flags, same JSON), so the pipeline does not
care whether numbers came from the Python runner, the native C++ runner or the eager reference.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass

from qbench.devices.base import Device, RunResult
from qbench.errors import CellError
from qbench.runners.crash import crash_message, crash_signal
from qbench.runtime_log import log_lines

REQUIRED_FIELDS = ("load_ms", "method_init_ms", "first_inference_ms", "samples_ns", "threads", "peak_rss_bytes")


@dataclass(frozen=True)
class TrialSettings:
    warmup: int
    warmup_seconds: float
    iterations: int
    min_seconds: float
    max_iterations: int
    threads: int
    affinity: list[int] | None
    timeout: float
    method: str = "forward"
    # generation mode (a text-generation model): (prompt_tokens, new_tokens, seed); the counts above
    # are then whole generations
    generate: tuple[int, int, int] | None = None

    def flags(self) -> list[str]:
        flags = [
            "--method", self.method,
            "--warmup", str(self.warmup), "--warmup-seconds", repr(self.warmup_seconds),
            "--iterations", str(self.iterations), "--min-seconds", repr(self.min_seconds),
            "--max-iterations", str(self.max_iterations), "--threads", str(self.threads),
        ]
        if self.affinity:
            flags += ["--affinity", ",".join(map(str, self.affinity))]
        if self.generate:
            flags += ["--prompt-tokens", str(self.generate[0]), "--new-tokens", str(self.generate[1]),
                      "--seed", str(self.generate[2])]
        return flags + ["--json"]


class Runner(ABC):
    name: str

    @abstractmethod
    def setup(self, device: Device) -> None:
        """Put what the runner needs on the device (once per device and run)."""

    @abstractmethod
    def argv(self, program: str, settings: TrialSettings, inputs: str | None = None,
             outputs: str | None = None, etdump: str | None = None) -> list[str]:
        """The command line on the device (a list; devices quote it)."""

    def parse(self, result: RunResult, settings: TrialSettings) -> dict:
        """The runner's JSON report, or a CellError carrying the runner's own last error line."""
        log_lines(result.stderr)  # the runtime's own log lines, for -v and the run's log
        if result.timed_out:
            raise CellError("run", f"{self.name} runner killed after {settings.timeout:g} s "
                                   "(benchmark.timeout_seconds); the model hangs or is far slower than expected")
        if result.returncode != 0:
            sig = crash_signal(result)
            raise CellError("run", result.last_error_line() if sig is None else crash_message(self.name, sig, result))
        report = None
        for line in reversed(result.stdout.splitlines()):
            if line.startswith("{"):
                try:
                    report = json.loads(line)
                    break
                except ValueError:
                    continue
        if report is None:
            raise CellError("run", f"{self.name} runner printed no JSON report (stderr: {result.last_error_line()})")
        missing = [f for f in REQUIRED_FIELDS if f not in report]
        if missing or not report.get("samples_ns"):
            raise CellError("run", f"{self.name} runner report lacks {', '.join(missing) or 'samples'}")
        report.setdefault("runner", self.name)
        return report
