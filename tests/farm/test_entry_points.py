"""The farm's entry points (issue 23, item 5): without the `farm` extra, one line naming the install
command; every farm option checked before anything starts; every network wait announced, bounded, and
ended by one line saying what answered (nothing, an HTTP server, a Dask worker instead of the scheduler).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

from qbench.testing.farm import free_port
from tests.helpers import python, qbench, tiny_suite, write_suite

INSTALL = "pip install 'qbench[farm]'"
# the process as on an install without the farm extra: importing these fails as a missing module does
WITHOUT_FARM = textwrap.dedent("""
    import sys
    for name in ("distributed", "dask", "psycopg"):
        sys.modules[name] = None
    from qbench.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def without_farm(*args, cwd) -> subprocess.CompletedProcess:
    """qbench ARGS as on an install without the farm extra."""
    return python("-c", WITHOUT_FARM, *args, cwd=cwd, timeout=300)


@pytest.fixture
def folder(suite_dir):
    write_suite(suite_dir, tiny_suite("farm-entry"))
    return suite_dir


def _only_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.mark.parametrize("args, what", [
    (("run", "suite.yaml", "--jobs", "2"), "--jobs"),
    (("run", "suite.yaml", "--cluster", "tcp://127.0.0.1:8786"), "--cluster"),
    (("worker", "tcp://127.0.0.1:8786", "--prepare", "1"), "qbench worker"),
])
def test_without_the_farm_extra_one_line_names_the_install_command(folder, args, what):
    proc = without_farm(*args, "--db", "farm.db", cwd=folder) if args[0] == "run" else \
        without_farm(*args, cwd=folder)
    assert proc.returncode == 2
    assert _only_line(proc) == f"qbench: {what} needs Dask distributed, which this install lacks: {INSTALL}"
    assert not (folder / "farm.db").exists() and not (folder / "reports").exists()


@pytest.mark.parametrize("command", [("run", "suite.yaml"), ("results",)], ids=lambda c: c[0])
def test_without_the_farm_extra_a_postgresql_store_names_the_install_command(folder, command):
    proc = without_farm(*command, "--db", "postgresql://qb@127.0.0.1:1/qbench", cwd=folder)
    assert proc.returncode == 2
    assert _only_line(proc) == f"qbench: a PostgreSQL store needs psycopg, which comes with the farm extra: {INSTALL}"


LIMIT = 4 * (os.cpu_count() or 1)


@pytest.mark.parametrize("args, line", [
    (("run", "suite.yaml", "--cluster", "htp://sched:8786"),
     "--cluster htp://sched:8786: unknown protocol htp:// (a Dask scheduler listens on tcp:// or tls://, "
     "e.g. tcp://sched:8786)"),
    (("run", "suite.yaml", "--cluster", "sched"), "--cluster sched: give the scheduler as tcp://HOST:PORT"),
    (("run", "suite.yaml", "--cluster", "tcp://sched:99999"), "--cluster tcp://sched:99999: give the scheduler as"),
    (("run", "suite.yaml", "--jobs", "100000"),
     f"--jobs 100000: at most {LIMIT} on this host (4 per CPU, {os.cpu_count()} CPUs: each prepare process "
     "holds a model and its quantized copy in memory)"),
    (("run", "suite.yaml", "--jobs", "0"), "--jobs 0: needs a positive number"),
    (("run", "suite.yaml", "--db-wait", "nan"), "--db-wait nan: needs a finite number of seconds >= 0"),
    (("run", "suite.yaml", "--db-wait", "-1"), "--db-wait -1: needs a finite number of seconds >= 0"),
    (("run", "suite.yaml", "--lost-worker-wait", "inf"), "--lost-worker-wait inf: needs a finite number"),
    (("run", "suite.yaml", "--cluster", "tcp://sched:8786", "--tls-ca", "ca.pem"),
     "TLS needs all three: --tls-ca, --tls-cert and --tls-key"),
    (("worker", "htp://sched:8786", "--prepare", "1"), "the scheduler htp://sched:8786: unknown protocol htp://"),
    (("worker", "tcp://sched:8786", "--prepare", "-1"), "--prepare -1: needs a number >= 0"),
    (("worker", "tcp://sched:8786", "--prepare", "100000"), f"--prepare 100000: at most {LIMIT} on this host"),
    (("worker", "tcp://sched:8786", "--prepare", "1", "--check-interval", "nan"),
     "--check-interval nan: needs a finite number of seconds > 0"),
    (("worker", "tcp://sched:8786", "--prepare", "1", "--join-timeout", "0"),
     "--join-timeout 0: needs a finite number of seconds > 0"),
])
def test_farm_options_are_refused_before_anything_starts(folder, args, line):
    proc = qbench(*args, *(["--db", "farm.db"] if args[0] == "run" else []), cwd=folder)
    assert proc.returncode == 2
    assert _only_line(proc).startswith(f"qbench: {line}")
    assert not (folder / "farm.db").exists() and not (folder / "reports").exists()  # nor the suite checked


@pytest.fixture
def http_server(tmp_path):
    """A plain HTTP server: it accepts the connection and waits for a request line Dask never sends."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    from tests.helpers import wait_for

    def listening():
        import socket

        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_for(listening, 60, "the HTTP server")
    yield f"tcp://127.0.0.1:{port}"
    proc.kill()
    proc.wait(30)


NOT_DASK = "it accepts connections but is not a Dask scheduler (no Dask reply within"
NOTHING = "nothing answered within"


@pytest.mark.parametrize("server", ["http", "dead"])
def test_a_worker_says_what_it_waits_for_and_gives_up_in_one_line(folder, http_server, server):
    address = http_server if server == "http" else f"tcp://127.0.0.1:{free_port()}"
    proc = qbench("worker", address, "--prepare", "1", "--join-timeout", "3", cwd=folder, timeout=120)
    assert proc.returncode == 2, proc.stderr
    first, last = proc.stderr.strip().splitlines()
    assert first == f"qbench worker: waiting up to 3 s for the scheduler {address} to answer"
    assert last.startswith(f"qbench: cannot reach the scheduler {address}: "
                           + (NOT_DASK + " 3 s" if server == "http" else NOTHING + " 3 s")), last


@pytest.mark.parametrize("server", ["http", "dead"])
def test_a_cluster_run_says_what_it_waits_for_and_gives_up_in_one_line(folder, http_server, server):
    address = http_server if server == "http" else f"tcp://127.0.0.1:{free_port()}"
    proc = qbench("run", "suite.yaml", "--cluster", address, "--db", "farm.db", cwd=folder, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert f"farm: waiting up to 15 s for the scheduler {address} to answer" in lines
    assert lines[-1].startswith(f"qbench: cannot reach the scheduler {address}: "
                                + (NOT_DASK if server == "http" else NOTHING)), lines[-1]
    assert "Traceback" not in proc.stderr


def test_a_worker_pointed_at_another_worker_is_told_so(folder, tmp_path):
    from qbench.testing.farm import Farm

    farm = Farm(tmp_path / "farm")
    try:
        farm.start_scheduler()
        farm.start_worker("W", prepare=1)  # the ordinary join still works
        other = re.search(r"worker W at (\S+):", farm.log("W"))[1]
        proc = qbench("worker", other, "--prepare", "1", "--join-timeout", "10", cwd=folder, timeout=120)
    finally:
        farm.stop()
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"qbench: {other} is a Dask Worker, not the scheduler: give the address `dask scheduler` printed "
        "(usually port 8786)")
