"""A local run (no --cluster) on a real PostgreSQL server that goes away mid-run: short outages are
held out (the trial waits, then is committed), a long one stops the run with one clear line and
exit 130; nothing committed is lost and --resume completes the run without duplicates."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.helpers import qbench_popen, tiny_suite, write_suite

pytestmark = pytest.mark.slow

SUITE = tiny_suite("outage", devices="slow", trials=3)


@pytest.fixture
def own_pg():
    from qbench.testing.pg import PgServer

    try:
        server = PgServer.start_own()
    except RuntimeError as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    yield server
    server.stop()


@pytest.fixture
def slow_suite(suite_dir, isolated_cache):
    # each trial starts 2 s late, so the database can go away between two trials
    (suite_dir / "profiles").mkdir()
    (suite_dir / "profiles" / "slow.yaml").write_text(
        f"transport: host\nworkdir: {suite_dir / 'work'}\n"
        "runner: {kind: native, target: host, launcher: [sh, -c, 'sleep 2; exec \"$0\" \"$@\"']}\n")
    return write_suite(suite_dir, SUITE)


def start_run(suite, *args) -> subprocess.Popen:
    return qbench_popen("run", suite, *args, cwd=suite.parent, env={"QBENCH_PROFILES": str(suite.parent / "profiles")})


def trials(url) -> int:
    from qbench.results.store import ResultsStore

    store = ResultsStore(url)
    try:
        return store.db.execute("SELECT count(*) FROM trials").fetchone()[0]
    finally:
        store.close()


def wait_for_a_trial(url, proc, seconds=300):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        try:
            if trials(url) >= 1:
                return
        except Exception:  # noqa: BLE001 - the tables may not exist yet
            pass
        time.sleep(0.1)
    raise AssertionError("no trial committed")


def test_a_short_outage_is_held_out_and_the_run_completes(own_pg, slow_suite):
    url = own_pg.new_database()
    proc = start_run(slow_suite, "--db", url, "--db-wait", "60")
    wait_for_a_trial(url, proc)
    own_pg.halt()
    time.sleep(4)  # the next trial ends while the server is down
    own_pg.restart()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "[db] results database not answering" in err and "holding results, retrying" in err
    assert trials(url) == 3  # each trial once: the held ones too


def test_a_long_outage_stops_clearly_and_resume_completes(own_pg, slow_suite):
    url = own_pg.new_database()
    proc = start_run(slow_suite, "--db", url, "--db-wait", "3")
    wait_for_a_trial(url, proc)
    own_pg.halt()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("qbench: the results database postgresql://") and "did not answer for 3 s" in last, err
    assert "resume with --resume" in last and "Traceback" not in err
    own_pg.restart()
    kept = trials(url)
    assert 1 <= kept < 3
    from qbench.results.store import ResultsStore

    (run,) = ResultsStore(url).runs()
    again = start_run(slow_suite, "--db", url, "--resume", run["run_id"])
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    assert trials(url) == 3
