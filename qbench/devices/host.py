"""The local machine as a device: runner processes are plain subprocesses here."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import time
from pathlib import Path

from qbench.devices.base import Device, DeviceInfo, RunResult


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:  # it ended (or Ctrl-C reached it first)
        pass


class HostDevice(Device):
    transport = "host"

    def __init__(self, name: str = "host", workdir: Path | None = None):
        self.name = name
        self._workdir = Path(workdir) if workdir else None

    @property
    def workdir(self) -> str:
        if self._workdir is None:
            from qbench.env import cache_root

            self._workdir = cache_root() / "host-work"
        self._workdir.mkdir(parents=True, exist_ok=True)
        return str(self._workdir)

    def push(self, local: Path, remote_name: str) -> str:
        # The file is already on this device: running it in place avoids a copy of every .pte.
        return str(Path(local).resolve())

    def pull(self, remote: str, local: Path) -> None:
        if Path(remote).resolve() != Path(local).resolve():
            Path(local).write_bytes(Path(remote).read_bytes())

    def run(self, argv: list[str], timeout: float, env: dict[str, str] | None = None) -> RunResult:
        t0 = time.perf_counter()
        # A new session so a timeout kills the runner and anything it started, not just the parent.
        # errors="replace": a runner may print bytes that are not UTF-8 (a corrupt program's strings).
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
            env={**os.environ, **(env or {})}, cwd=self.workdir, start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
            return RunResult(proc.returncode, out, err, time.perf_counter() - t0)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            out, err = proc.communicate()
            return RunResult(-9, out, err, time.perf_counter() - t0, timed_out=True)
        except BaseException:  # Ctrl-C: never leave a runner behind
            _kill_group(proc.pid)
            proc.wait()
            raise

    def info(self) -> DeviceInfo:
        from qbench.devices.linux_info import INFO_SCRIPT, parse_info

        res = self.run(["/bin/sh", "-c", INFO_SCRIPT], timeout=30)
        info = parse_info(res.stdout, name=self.name, transport=self.transport)
        info.abi = info.abi or platform.machine()
        return info

    def thermal(self) -> dict[str, float]:
        zones = {}
        for zone in sorted(Path("/sys/class/thermal").glob("thermal_zone*")):
            try:
                kind = (zone / "type").read_text().strip()
                zones[f"{zone.name}:{kind}"] = int((zone / "temp").read_text().strip()) / 1000.0
            except (OSError, ValueError):
                continue
        return zones
