"""One writer per run (issue 23, item 1): a second `qbench run --resume RUN` while another qbench writes that
run is refused in one line naming the holder (host, pid, since), exit 2; a holder killed with SIGKILL
never blocks the run. Real processes, on a SQLite file and on the real PostgreSQL server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from qbench.results.lease import RunHeld, hold
from qbench.results.store import open_store
from tests.helpers import qbench, qbench_popen, tiny_suite, wait_for, write_suite

RUN = "20261206-090000-lea5"


def start(*args, cwd) -> subprocess.Popen:
    return qbench_popen(*args, cwd=cwd, stdout=subprocess.DEVNULL)


def interrupted_run(db, suite) -> None:
    """RUN as a crashed `qbench run` leaves it: a row, status `interrupted`, nothing measured."""
    store = open_store(db, create=True)
    store.create_run(run_id=RUN, suite="lease", suite_path=str(suite), suite_yaml=suite.read_text(),
                     status="interrupted", started_at="2026-12-06T09:00:00+00:00")
    store.close()


def holder_pid(db) -> int | None:
    """The pid the run's lease names, read without taking it."""
    if isinstance(db, str):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            names = [r[0] for r in conn.execute("SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                                                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted")]
        return next((int(n.split()[2].split("@")[0]) for n in names if n.startswith("qbench ")), None)
    path = db.parent / f"{db.name}.leases" / f"{RUN}.lock"
    try:
        return json.loads(path.read_text() or "{}").get("pid")
    except FileNotFoundError:
        return None


@pytest.fixture(params=["sqlite", "postgresql"])
def store_db(request, suite_dir):
    return request.getfixturevalue("pg_url") if request.param == "postgresql" else suite_dir / "qbench.db"


def test_a_second_resume_is_refused_naming_the_holder_and_a_killed_holder_frees_the_run(suite_dir, store_db):
    suite = write_suite(suite_dir, tiny_suite("lease"))
    interrupted_run(store_db, suite)
    first = start("run", suite, "--resume", RUN, "--db", store_db, cwd=suite_dir)
    try:
        wait_for(lambda: holder_pid(store_db) == first.pid or first.poll() is not None, 120, "the first resume's lease")
        assert first.poll() is None, first.stderr.read()
        os.kill(first.pid, signal.SIGSTOP)  # it holds the run, mid-way, for as long as this test needs
        second = qbench("run", suite, "--resume", RUN, "--db", store_db, cwd=suite_dir)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.splitlines()
        assert len(lines) == 1, second.stderr
        assert f"run {RUN} is being written by another qbench (pid {first.pid} on host {socket.gethostname()}, " \
               "since 20" in lines[0]
        store = open_store(store_db)
        assert not store.cells(RUN)  # the second one wrote nothing
        store.close()
    finally:
        first.kill()  # SIGKILL, even while stopped: no chance to release anything itself
        first.wait(60)
    third = qbench("run", suite, "--resume", RUN, "--db", store_db, cwd=suite_dir)
    assert third.returncode == 0, third.stderr
    store = open_store(store_db)
    assert store.run(RUN)["status"] == "complete"
    (cell,) = store.cells(RUN)
    assert cell["trials"] == 1 and len(store.trials(cell["cell_id"])) == 1
    store.close()


def test_a_new_run_holds_its_run_too(suite_dir):
    """`qbench run` (not a resume) holds the run it creates: its id's lease is taken before the row exists."""
    db = suite_dir / "qbench.db"
    store = open_store(db, create=True)
    store.close()
    lease = hold(db, RUN)  # as a `qbench run` that chose this id holds it
    try:
        probe = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            from qbench.results.lease import RunHeld, hold
            try:
                hold({str(db)!r}, {RUN!r})
            except RunHeld as exc:
                print(exc)
            """)], capture_output=True, text=True, timeout=120)
        assert f"pid {os.getpid()} on host" in probe.stdout, probe.stdout + probe.stderr
    finally:
        lease.release()
    again = hold(db, RUN)  # released: free again, and its file is gone with it
    again.release()
    assert not (suite_dir / "qbench.db.leases").exists()  # nothing left beside the store


def test_the_same_process_cannot_hold_a_run_twice(suite_dir, store_db):
    lease = hold(store_db, RUN)
    try:
        with pytest.raises(RunHeld, match=f"pid {os.getpid()} on host"):
            hold(store_db, RUN)
    finally:
        lease.release()


def test_any_writer_that_begins_a_run_holds_it(suite_dir):
    """begin_run (what `qbench run` and `qbench sensitivity` call) holds the run it begins, so that a
    running sensitivity run is never mistaken for an abandoned one, nor written by a second qbench."""
    suite = write_suite(suite_dir, tiny_suite("lease"))
    db = suite_dir / "qbench.db"
    code = textwrap.dedent(f"""
        import sys, time
        from qbench.pipeline.check import check_suite
        from qbench.pipeline.orchestrator import begin_run
        from qbench.results.store import open_store
        from qbench.suite.loader import load_suite
        checked = check_suite(load_suite({str(suite)!r}), preflight=False)
        print(begin_run(checked, open_store({str(db)!r}, create=True)), flush=True)
        time.sleep(600)
        """)
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        run_id = writer.stdout.readline().strip()
        assert run_id, "the writer did not begin a run"
        with pytest.raises(RunHeld, match=f"pid {writer.pid} on host"):
            hold(db, run_id)
        from qbench.pipeline.run_status import settle_abandoned

        store = open_store(db)
        assert settle_abandoned(store, db) == [] and store.run(run_id)["status"] == "running"
        store.close()
    finally:
        writer.kill()
        writer.wait(60)


@pytest.fixture
def own_pg():
    from qbench.testing.pg import PgServer

    try:
        server = PgServer.start_own()
    except RuntimeError as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    yield server
    server.stop()


def _holder_in_another_process(url: str, keep: bool = False) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import time
        from qbench.results.lease import RunHeld, hold
        try:
            hold({url!r}, {RUN!r})
            print("held", flush=True)
            time.sleep(600 if {keep!r} else 0)
        except RunHeld as exc:
            print(exc, flush=True)
        """)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_a_database_outage_does_not_hand_the_run_to_another_qbench(own_pg):
    """The outage ends the lease's session; when the run's store reconnects, the lease is taken back."""
    import threading

    from qbench.results.hold import HoldingStore
    from qbench.results.store import ResultsStore

    url = own_pg.new_database()
    store = HoldingStore(ResultsStore(url), db_wait=120)
    lease = hold(url, RUN)
    try:
        own_pg.halt()
        threading.Timer(2.0, own_pg.restart).start()
        assert store.runs() == []  # held out through the outage: reconnected, and the lease renewed
        probe = _holder_in_another_process(url)
        assert f"pid {os.getpid()} on host" in probe.communicate(timeout=120)[0]
    finally:
        lease.release()


def test_a_run_taken_by_another_qbench_during_an_outage_stops_this_one(own_pg):
    from qbench.results.hold import HoldingStore
    from qbench.results.store import ResultsStore

    url = own_pg.new_database()
    store = HoldingStore(ResultsStore(url), db_wait=120)
    lease = hold(url, RUN)
    other = None
    try:
        own_pg.halt()
        own_pg.restart()
        other = _holder_in_another_process(url, keep=True)  # it gets there first
        assert other.stdout.readline().strip() == "held"
        with pytest.raises(RunHeld, match=f"pid {other.pid} on host"):
            store.runs()
    finally:
        lease.release()
        if other is not None:
            other.kill()
            other.wait(60)
