"""A device farm of real processes: a `dask scheduler`, worker A (host + the sshd board, prepare slot)
and worker B (a second bench device) — in its own network namespace where the tests may create one —
with the results in a real PostgreSQL server.

Shown: the same cells and result shapes as a local run; Ctrl-C then --resume without duplicates; the
database going away (held, then a clear stop, nothing committed lost); a worker cut off mid-run (its
remaining cells fail with the cause, finished trials stay, the other devices finish).
"""

from __future__ import annotations

import json
import os
import signal
import shutil
import textwrap
import time

import pytest

from tests.helpers import REPO, qbench, qbench_popen, write_suite

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("sshd") is None and not os.path.exists("/usr/sbin/sshd"),
                                                   reason="needs OpenSSH's sshd")]

# interference_threshold 1.0: these tests are about where cells run, not noise; on a busy CI machine
# disturbed trials would otherwise be left out of latency_ms.trials
SUITE = """
name: farm
models:
  - name: tiny_mlp
    source: python:models/tiny.py:tiny_mlp
    inputs: [{{shape: [1, 64]}}]
recipes:
  - {{name: fp32, kind: fp32}}
  - {{name: int8-ptq, kind: ptq}}
calibration: {{kind: random, samples: 4, seed: 0}}
numerics: {{samples: 2}}
devices: [host, pi, bench]
benchmark: {{warmup: 2, warmup_seconds: 0, iterations: 5, min_seconds: {min_seconds}, trials: {trials}, max_trials: {trials},
            threads: 1, timeout_seconds: 60, interference_threshold: 1.0}}
"""


@pytest.fixture(scope="module")
def farm(tmp_path_factory, isolated_cache):
    from qbench.testing import netns
    from qbench.testing.farm import Farm
    from qbench.testing.sshd import SshServer

    root = tmp_path_factory.mktemp("farm")
    shutil.copytree(REPO / "suites" / "models", root / "suite" / "models")  # the folder a farm run sends
    sshd = SshServer(root / "sshd", alias="qbench-farm-pi").start()
    profiles = root / "profiles"
    profiles.mkdir()
    (profiles / "pi.yaml").write_text(textwrap.dedent(f"""
        transport: ssh
        address: {sshd.alias}
        ssh_config: {sshd.ssh_config_path}
        workdir: {root / 'pi-work'}
        runner: {{kind: native, target: host}}
        connect_retries: 0
        """))
    (profiles / "bench.yaml").write_text(f"transport: host\nworkdir: {root / 'bench-work'}\nrunner: {{kind: native, target: host}}\n")
    # a slower bench for the cut-off test: each trial starts 2 s late (few samples, long trials)
    (profiles / "slowbench.yaml").write_text(
        f"transport: host\nworkdir: {root / 'slow-work'}\n"
        "runner: {kind: native, target: host, launcher: [sh, -c, 'sleep 2; exec \"$0\" \"$@\"']}\n")
    why_not = netns.available()
    ns = netns.NetNamespace().create() if why_not is None else None
    host = ns.host_ip if ns else "127.0.0.1"
    env = {"QBENCH_PROFILES": str(profiles)}
    cluster = Farm(root / "procs", host=host, env=env)
    try:
        cluster.start_scheduler()
        # A builds (its cache: the session's, so a variant is exported once); B gets artifacts by hash
        cluster.start_worker("A", ["host", "pi"], prepare=1, listen=host)
        cluster.start_worker("B", ["bench", "slowbench"], prefix=ns.prefix if ns else (), listen=ns.ns_ip if ns else host,
                             env={"QBENCH_CACHE": str(root / "cache-B")})
        yield {"root": root, "farm": cluster, "ns": ns, "why_not_netns": why_not, "env": env, "cache_b": root / "cache-B"}
    finally:
        cluster.stop()
        sshd.stop()
        if ns:
            ns.delete()


def run_cli(farm, *args, **kw):
    return qbench(*args, env=farm["env"], timeout=900, cwd=farm["root"], **kw)


def start(farm, *args):
    return qbench_popen(*args, env=farm["env"], cwd=farm["root"])


def trials_committed(db_url, device=None) -> int:
    from qbench.results.store import ResultsStore

    store = ResultsStore(db_url)
    try:
        sql = "SELECT count(*) FROM trials t JOIN cells c USING (cell_id)"
        return store.db.execute(sql + (" WHERE c.device=?" if device else ""), (device,) if device else ()).fetchone()[0]
    finally:
        store.close()


def wait_for_trials(db_url, proc, n=1, device=None, seconds=600):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        try:
            if trials_committed(db_url, device) >= n:
                return
        except Exception:  # noqa: BLE001 - the schema may not exist yet
            pass
        time.sleep(0.1)
    raise AssertionError("no trial committed")


def shape(cell: dict) -> list[str]:
    return sorted(k for k, v in cell.items() if v is not None)


def test_a_device_no_worker_owns_is_a_usage_error_before_any_run(farm, tmp_path):
    suite = write_suite(farm["root"] / "suite", SUITE.format(min_seconds=0, trials=1).replace(
        "[host, pi, bench]", "[host, nowhere]"), "nowhere.yaml")
    proc = run_cli(farm, "run", suite, "--cluster", farm["farm"].address, "--db", tmp_path / "x.db")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "qbench: no worker of the cluster owns device(s) nowhere (advertised: bench, host, pi, slowbench); start "
        "`qbench worker SCHEDULER --devices nowhere` on the host they are plugged into")
    from qbench.results.store import ResultsStore

    assert ResultsStore(tmp_path / "x.db").runs() == []


def test_cluster_run_gives_the_cells_and_shapes_of_a_local_run(farm, pg_url):
    suite = write_suite(farm["root"] / "suite", SUITE.format(min_seconds=0, trials=2), "farm.yaml")
    remote = run_cli(farm, "run", suite, "--cluster", farm["farm"].address, "--db", pg_url, "--json")
    assert remote.returncode == 0, remote.stderr[-3000:] + farm["farm"].log("A")[-2000:] + farm["farm"].log("B")[-2000:]
    local = run_cli(farm, "run", suite, "--db", "local.db", "--json")
    assert local.returncode == 0, local.stderr[-3000:]
    rdoc, ldoc = json.loads(remote.stdout), json.loads(local.stdout)
    key = lambda c: (c["model"], c["recipe"], c["device"])  # noqa: E731
    rcells, lcells = {key(c): c for c in rdoc["cells"]}, {key(c): c for c in ldoc["cells"]}
    assert sorted(rcells) == sorted(lcells) and len(rcells) == 6
    for k, c in rcells.items():
        assert c["status"] == "ok", c
        assert shape(c) == shape(lcells[k]), k
        # trials used: a trial disturbed by other processes (a loaded CI box) is kept but left out
        assert 1 <= c["latency_ms"]["trials"] <= 2 and c["runner"] == "native"
    assert rdoc["db"].startswith("postgresql://") and "@" in rdoc["db"]
    # the prepared artifacts reached worker B by hash (it has no prepare slot) and sit in its cache
    pte = list((farm["cache_b"] / "artifacts").glob("*/model.pte"))
    assert len(pte) == 2
    import qbench.results

    df = qbench.results.load(pg_url, rdoc["run_id"])
    assert sorted(df["device"].unique()) == ["bench", "host", "pi"] and (df["status"] == "ok").all()
    # what the worker's measuring loop wrote through the relay store reached the database: per-iteration
    # thread CPU time, each trial's interference mark, the device-numerics record in the cell's extra
    samples = qbench.results.load_samples(pg_url, rdoc["run_id"])
    assert len(samples) > 0 and samples["thread_cpu_ms"].notna().all()
    assert set(samples["disturbed"].unique()) <= {0, 1}
    assert all("device_numerics" in (extra or {}) for extra in df["extra"])


def test_interrupted_cluster_run_resumes_without_duplicates(farm, pg_url):
    # the slow bench (each trial starts 2 s late) and the host: Ctrl-C surely lands mid-run
    suite = write_suite(farm["root"] / "suite", SUITE.format(min_seconds=0, trials=3).replace(
        "[host, pi, bench]", "[host, slowbench]"), "resume.yaml")
    proc = start(farm, "run", suite, "--cluster", farm["farm"].address, "--db", pg_url)
    wait_for_trials(pg_url, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    from qbench.results.store import ResultsStore

    store = ResultsStore(pg_url)
    (run,) = store.runs()
    assert run["status"] == "interrupted"
    before = trials_committed(pg_url)
    assert 1 <= before < 12
    again = run_cli(farm, "run", suite, "--cluster", farm["farm"].address, "--db", pg_url, "--resume", run["run_id"],
                   "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    doc = json.loads(again.stdout)
    assert all(c["status"] == "ok" and c["latency_ms"]["trials"] == 3 for c in doc["cells"])
    assert trials_committed(pg_url) == 12  # 4 cells × 3 trials, each once
    assert store.run(run["run_id"])["status"] == "complete"


def test_database_gone_mid_run_stops_clearly_and_keeps_what_was_committed(farm):
    from qbench.testing.pg import PgServer

    server = PgServer.start_own()
    try:
        url = server.new_database()
        suite = write_suite(farm["root"] / "suite", SUITE.format(min_seconds=0, trials=3).replace(
            "[host, pi, bench]", "[host, slowbench]"), "dbgone.yaml")
        proc = start(farm, "run", suite, "--cluster", farm["farm"].address, "--db", url, "--db-wait", "3")
        wait_for_trials(url, proc)
        server.halt()
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 130, err[-3000:]
        last = err.strip().splitlines()[-1]
        assert last.startswith("qbench: the results database postgresql://") and "did not answer for 3 s" in last, err
        assert "resume with --resume" in last and "Traceback" not in err
        server.restart()
        kept = trials_committed(url)
        assert kept >= 1
        from qbench.results.store import ResultsStore

        (run,) = ResultsStore(url).runs()
        again = run_cli(farm, "run", suite, "--cluster", farm["farm"].address, "--db", url, "--resume", run["run_id"])
        assert again.returncode == 0, again.stderr[-3000:]
        assert trials_committed(url) == 12
    finally:
        server.stop()


def test_worker_cut_off_mid_run_fails_its_cells_and_the_others_finish(farm, pg_url):
    """Worker B is cut off; at the end its cable is back and B joins the scheduler again by itself (the
    next test measures on it)."""
    suite = write_suite(farm["root"] / "suite", SUITE.format(min_seconds=0, trials=4).replace(
        "[host, pi, bench]", "[host, pi, slowbench]"), "cut.yaml")
    proc = start(farm, "run", suite, "--cluster", farm["farm"].address, "--db", pg_url, "--json",
                 "--lost-worker-wait", "4")
    wait_for_trials(pg_url, proc, device="slowbench")
    log_b = len(farm["farm"].log("B"))
    if farm["ns"]:
        farm["ns"].cut()  # the cable: B keeps running and hears nothing
    else:
        farm["farm"].kill_worker("B")
    cut_at = time.strftime("%H:%M:%S", time.gmtime())
    try:
        out, err = proc.communicate(timeout=600)
    finally:  # later tests measure on B again: the cable stays out until B gave its scheduler up, then B
        if farm["ns"]:  # (`qbench worker`) joins it again by itself as a new Dask worker
            lost = farm["farm"].wait_for_log("B", "lost the scheduler", after=log_b)
            farm["ns"].reconnect()
            farm["farm"].wait_for_log("B", "worker B at", after=lost, seconds=400)
        else:
            farm["farm"].start_worker("B", ["bench", "slowbench"], listen=farm["farm"].host,
                                      env={"QBENCH_CACHE": str(farm["cache_b"])})
    from qbench.results.store import ResultsStore

    when = ResultsStore(pg_url).db.execute("SELECT c.device, t.trial, t.finished_at FROM trials t JOIN cells c "
                                           "USING (cell_id) ORDER BY t.finished_at").fetchall()
    assert proc.returncode == 1, (f"cut at {cut_at}; trials {[tuple(r) for r in when]}\n{err[-3000:]}\n{out[-3000:]}\n"
                                  + farm["farm"].log("B")[-3000:])
    doc = json.loads(out)
    by_device = {}
    for c in doc["cells"]:
        by_device.setdefault(c["device"], []).append(c)
    assert all(c["status"] == "ok" for d in ("host", "pi") for c in by_device[d])
    bench = by_device["slowbench"]
    assert any(c["status"] == "failed" for c in bench)
    for c in bench:
        if c["status"] == "failed":
            assert c["error"].startswith("device: slowbench: worker B owning it was lost"), c["error"]
    assert trials_committed(pg_url, "slowbench") >= 1  # what B measured before the cut stays


def test_a_sweep_runs_on_the_farm_with_the_cells_of_a_local_run(farm, pg_url):
    """threads × batch on a worker's device: each batch is prepared (and shipped by hash) once, each
    point measured with its own threads, keyed as a local run keys it."""
    suite = write_suite(farm["root"] / "suite", SUITE.format(min_seconds=0, trials=1).replace(
        "[host, pi, bench]", "[bench]").replace("threads: 1,", "threads: [1, 2], batch: [1, 2],").replace(
        "  - {name: int8-ptq, kind: ptq}\n", ""), "sweep.yaml")
    proc = run_cli(farm, "run", suite, "--cluster", farm["farm"].address, "--db", pg_url, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:] + farm["farm"].log("A")[-2000:] + farm["farm"].log("B")[-2000:]
    doc = json.loads(proc.stdout)
    assert [(c["recipe"], c["sweep"], c["threads"], c["batch"]) for c in doc["cells"]] == [
        ("fp32", "threads=1 batch=1", 1, 1), ("fp32", "threads=1 batch=2", 1, 2),
        ("fp32", "threads=2 batch=1", 2, 1), ("fp32", "threads=2 batch=2", 2, 2)]
    assert all(c["status"] == "ok" for c in doc["cells"])
