"""A farm of real processes for the tests and benchmarks/farm_scaling.py: a `dask scheduler` and
`qbench worker`s, each with its own log, stopped by their process ids."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait_for_line(log: Path, text: str, proc: subprocess.Popen, seconds: float, what: str, after: int = 0) -> None:
    """`text` written to `log` past its first `after` characters."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if log.is_file() and text in log.read_text(errors="replace")[after:]:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {seconds:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


class Farm:
    def __init__(self, folder: Path, host: str = "127.0.0.1", env: dict | None = None, tls=None):
        """`tls`: qbench.testing.tls.TlsFiles; then every process speaks TLS with them (tls:// address)."""
        self.folder, self.host, self.tls = Path(folder), host, tls
        self.folder.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **(env or {})}
        self.scheduler: subprocess.Popen | None = None
        self.address = ""
        self.workers: dict[str, subprocess.Popen] = {}

    def start_scheduler(self, port: int | None = None) -> str:
        """Started (again, on the same port when given: a scheduler restart)."""
        port = port or free_port(self.host)
        log = self.folder / "scheduler.log"
        protocol = "tls" if self.tls else "tcp"
        tls = self.tls.scheduler_options() if self.tls else []
        before = len(log.read_text(errors="replace")) if log.is_file() else 0
        # the scheduler unpickles task graphs: it needs the same qbench as the workers (same env)
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", f"{protocol}://{self.host}",
             "--port", str(port), "--no-dashboard", *tls], stdout=log.open("a"), stderr=subprocess.STDOUT, env=self.env)
        self.address = f"{protocol}://{self.host}:{port}"
        # generous bounds: they end at the line, and a loaded 2-vCPU CI machine is slow to start processes
        _wait_for_line(log, "Scheduler at", self.scheduler, 300, "dask scheduler", after=before)
        return self.address

    def start_worker(self, name: str, devices: list[str] = (), prepare: int = 0, *, prefix: list[str] = (),
                     listen: str | None = None, extra: list[str] = (), env: dict | None = None) -> subprocess.Popen:
        log = self.folder / f"worker-{name}.log"
        cmd = [*prefix, sys.executable, "-m", "qbench", "worker", self.address, "--name", name,
               "--devices", ",".join(devices), "--prepare", str(prepare), *extra,
               *(self.tls.qbench_options() if self.tls else [])]
        if listen:
            cmd += ["--host", listen]
        proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env={**self.env, **(env or {})},
                                cwd=self.folder)
        self.workers[name] = proc
        # a worker may build the native runner (25 s idle) and probe its devices first
        _wait_for_line(log, f"worker {name} at", proc, 600, f"qbench worker {name}")
        return proc

    def wait_for_log(self, name: str, text: str, after: int = 0, seconds: float = 180.0) -> int:
        """`text` in worker `name`'s log past its first `after` characters; returns the log's length then."""
        _wait_for_line(self.folder / f"worker-{name}.log", text, self.workers[name], seconds,
                       f"qbench worker {name} ({text!r})", after=after)
        return len(self.log(name))

    def log(self, name: str) -> str:
        path = self.folder / (f"worker-{name}.log" if name != "scheduler" else "scheduler.log")
        return path.read_text(errors="replace") if path.is_file() else ""

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def kill_scheduler(self) -> None:
        self.scheduler.send_signal(signal.SIGKILL)
        self.scheduler.wait(timeout=30)

    def kill_worker(self, name: str) -> None:
        proc = self.workers.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in [*self.workers.values(), self.scheduler]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers.values(), self.scheduler]:
            if proc is not None:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self.workers.clear()
