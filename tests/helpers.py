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


def halve_samples(db, run_id: str, recipe: str, model: str | None = None) -> None:
    """Plant a regression for the next run's gate: the run's stored samples of these cells become twice
    as fast (packed blobs and trial summaries rewritten the way the store writes them)."""
    speed_up_samples(db, run_id, 2, recipe, model)


def speed_up_samples(db, run_id: str, factor: int, recipe: str | None = None, model: str | None = None) -> None:
    """The run's stored samples (of these cells; None: all) become `factor` times as fast."""
    import sqlite3

    from qbench.results.packing import unpack
    from qbench.results.store import ResultsStore

    con = sqlite3.connect(db, isolation_level=None)
    rows = con.execute("SELECT s.cell_id, s.trial, s.latency_ns, s.thread_cpu_ns FROM trial_samples s JOIN cells c "
                       "USING (cell_id) WHERE c.run_id=? AND (? IS NULL OR c.recipe=?) AND (? IS NULL OR c.model=?)",
                       (run_id, recipe, recipe, model, model)).fetchall()
    assert rows, f"no samples of {run_id} {model or '*'}/{recipe or '*'}"
    con.execute("BEGIN")
    for cell_id, trial, ns, cpu in rows:
        ResultsStore.write_trial_samples(con, cell_id, trial, unpack(ns) // factor, None if cpu is None else unpack(cpu))
    con.execute("COMMIT")
    con.close()
