"""Small process and socket helpers the device tests share."""

from __future__ import annotations

import secrets
import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pgrep(pattern: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, timeout=10).stdout.split()


def wait_for(cond, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.05)


def unique_sleep() -> str:
    """A float duration no other process uses, so `pgrep -f` finds exactly ours."""
    return f"{secrets.randbelow(400) + 500}.{secrets.randbelow(90000) + 10000}"
