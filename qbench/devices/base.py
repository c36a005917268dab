"""The one Device interface the pipeline talks to. Host, ADB and SSH implement it.

A device is a place where a runner process can be started: files go there with `push`, commands run
there with `run`, results come back with `pull`. Everything a device says about itself (`info`,
`thermal`) is recorded next to the measurements.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path



@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    def last_error_line(self) -> str:
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit code {self.returncode}"


@dataclass
class DeviceInfo:
    """What a device says about itself; every field optional because boards differ."""

    name: str
    transport: str
    model: str | None = None
    soc: str | None = None
    abi: str | None = None  # e.g. x86_64, arm64-v8a, aarch64
    os: str | None = None
    cores: int | None = None
    max_freq_khz: list[int] = field(default_factory=list)
    governor: str | None = None
    ram_bytes: int | None = None
    extra: dict = field(default_factory=dict)


class Device(ABC):
    """Implementations must quote every path and argument they send to a remote shell."""

    name: str
    transport: str

    @property
    @abstractmethod
    def workdir(self) -> str:
        """Where qbench keeps its files on the device."""

    @abstractmethod
    def push(self, local: Path, remote_name: str) -> str:
        """Copy `local` to workdir/remote_name unless an identical file is there; return the remote path."""

    @abstractmethod
    def pull(self, remote: str, local: Path) -> None: ...

    @abstractmethod
    def run(self, argv: list[str], timeout: float, env: dict[str, str] | None = None) -> RunResult:
        """Run argv (a list, never a shell string) and wait; kill it at `timeout` seconds."""

    @abstractmethod
    def info(self) -> DeviceInfo: ...

    @abstractmethod
    def thermal(self) -> dict[str, float]:
        """Thermal zone name -> degrees Celsius (empty when the device exposes none)."""

    def cleanup(self) -> None:
        """Remove what qbench left on the device (default: nothing to do)."""

    def close(self) -> None:
        """Release connections."""
