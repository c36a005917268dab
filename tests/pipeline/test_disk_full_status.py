"""The store's disk fills mid-run, leaving no room even to mark the run failed (issue 23, item 6): qbench
says exactly that the store could not be updated and that the run still says `running`, never "the run
is marked failed"; the next `qbench run` on the store marks it failed, and `--resume` finishes it.
A real 8 MiB tmpfs holds the store; the test fills what is left of it once the first trial is stored.
"""

from __future__ import annotations

import os
import sqlite3
import time

import pytest

from tests.helpers import qbench, qbench_popen, tiny_suite, write_suite
from tests.mounts import small_disk

# every trial warms up for 2 s (nothing is written meanwhile) and stores at most 2000 samples
SUITE = tiny_suite("full", trials=3, settings={"warmup_seconds": 2, "max_iterations": 2000})


def _trials(db) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT count(*) FROM trials").fetchone()[0]
    except sqlite3.Error:
        return 0


def _fill(folder) -> None:
    """Take every free byte of the filesystem (what a log or another job does to a shared disk)."""
    with open(folder / "filler", "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\1" * size)
            except OSError:
                continue


def _status(db) -> tuple[str, str | None]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return con.execute("SELECT status, error FROM runs").fetchone()


def test_a_disk_too_full_to_mark_the_run_failed_is_said_and_the_next_run_settles_it(suite_dir):
    suite = write_suite(suite_dir, SUITE)
    reports = suite_dir / "reports"  # the run's log and pages stay off the small disk
    with small_disk(suite_dir / "small", "8m") as disk:
        db = disk / "q.db"
        proc = qbench_popen("run", suite, "--db", db, "--reports-dir", reports, cwd=suite_dir)
        deadline = time.monotonic() + 600
        while _trials(db) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        _fill(disk)  # trial 2 is warming up: its samples will find no room, nor will the run's end
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 1, err[-3000:]
        assert "Traceback" not in err
        status, error = _status(db)
        assert status == "running" and error is None  # what a full disk leaves
        assert "the run is marked failed" not in err
        run_id = err.split("run ", 1)[1].split(" ", 1)[0]
        assert (f"the store could not be updated: run {run_id} still says `running` there; it is never a baseline, "
                "and the next `qbench run` on this store marks it failed") in " ".join(err.split())
        os.unlink(disk / "filler")  # space is back

        nxt = qbench("run", suite, "--db", db, "--reports-dir", reports, cwd=suite_dir)
        assert nxt.returncode == 0, nxt.stderr[-3000:]
        assert (f"note: run {run_id} was left `running` by a qbench that stopped without recording how it ended; "
                f"marked failed (`qbench run SUITE --resume {run_id}` finishes it)") in " ".join(nxt.stderr.split())
        with sqlite3.connect(db) as con:
            assert con.execute("SELECT status, error FROM runs WHERE run_id=?", (run_id,)).fetchone() == (
                "failed", "its qbench stopped without recording how the run ended (e.g. the store's disk was full)")

        resumed = qbench("run", suite, "--db", db, "--reports-dir", reports, "--resume", run_id, cwd=suite_dir)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        with sqlite3.connect(db) as con:
            assert con.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone() == ("complete",)


def test_a_running_run_whose_writer_is_alive_is_left_alone(tmp_path):
    from qbench.pipeline.run_status import settle_abandoned
    from qbench.results.lease import hold
    from qbench.results.store import ResultsStore

    store = ResultsStore(tmp_path / "q.db")
    for run_id in ("alive", "dead"):
        store.create_run(run_id=run_id, suite="s", status="running", started_at="2026-12-06T09:00:00")
    lease = hold(tmp_path / "q.db", "alive")
    try:
        assert settle_abandoned(store, tmp_path / "q.db") == ["dead"]
    finally:
        lease.release()
    assert store.run("alive")["status"] == "running" and store.run("dead")["status"] == "failed"


@pytest.mark.parametrize("backend", ["postgresql"])
def test_settling_works_on_postgresql(pg_url, backend):
    from qbench.pipeline.run_status import settle_abandoned
    from qbench.results.lease import hold
    from qbench.results.store import ResultsStore

    store = ResultsStore(pg_url)
    for run_id in ("alive", "dead"):
        store.create_run(run_id=run_id, suite="s", status="running", started_at="2026-12-06T09:00:00")
    lease = hold(pg_url, "alive")
    try:
        assert settle_abandoned(store, pg_url) == ["dead"]
    finally:
        lease.release()
    assert store.run("alive")["status"] == "running" and store.run("dead")["status"] == "failed"
