"""A farm's bad days, with real processes: a `dask scheduler`, worker D (owns a slow bench device: each
trial starts 2 s late, so a fault lands mid-trial) and two prepare-only workers P1, P2.

Shown: a worker killed while preparing -> the other prepare worker builds the variant; D killed mid-trial
and back within --lost-worker-wait -> its cells finish, no failed cell, each trial committed once; the
scheduler killed mid-run -> the run is `interrupted` with the resume line, the workers join the scheduler
again when it is back on its port, and --resume completes the run without duplicates.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest

from tests.helpers import REPO, qbench_popen, write_suite

pytestmark = pytest.mark.slow

# interference_threshold 1.0: these tests are about where cells run, not noise; on a busy CI machine
# disturbed trials would otherwise be left out of latency_ms.trials
SUITE = """
name: {name}
models:
  - name: {model}
    source: python:models/{source}
    inputs: [{{shape: [1, 64]}}]
recipes:
  - {{name: fp32, kind: fp32}}
devices: [slow]
benchmark: {{warmup: 2, warmup_seconds: 0, iterations: 5, min_seconds: 0, trials: {trials}, max_trials: {trials},
            threads: 1, timeout_seconds: 60, quiet_start: {{max_wait_s: 0}}, interference_threshold: 1.0}}
"""

SLOW_BUILD = """
import time

import torch
from torch import nn


def slow_mlp():
    time.sleep(5)  # a build long enough to kill the worker doing it
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
"""


@pytest.fixture(scope="module")
def farm(tmp_path_factory, isolated_cache):
    from qbench.testing.farm import Farm

    root = tmp_path_factory.mktemp("faults")
    shutil.copytree(REPO / "suites" / "models", root / "models")
    (root / "models" / "slow_build.py").write_text(SLOW_BUILD)
    profiles = root / "profiles"
    profiles.mkdir()
    (profiles / "slow.yaml").write_text(
        f"transport: host\nworkdir: {root / 'slow-work'}\n"
        "runner: {kind: native, target: host, launcher: [sh, -c, 'sleep 2; exec \"$0\" \"$@\"']}\n")
    env = {"QBENCH_PROFILES": str(profiles)}
    cluster = Farm(root / "procs", env=env)
    try:
        cluster.start_scheduler()
        cluster.start_worker("P1", prepare=1, env={"QBENCH_CACHE": str(root / "cache-P1")})
        cluster.start_worker("P2", prepare=1, env={"QBENCH_CACHE": str(root / "cache-P2")})
        cluster.start_worker("D", ["slow"])
        yield {"root": root, "farm": cluster, "env": env}
    finally:
        cluster.stop()


def start(farm, *args):
    return qbench_popen(*args, env=farm["env"], cwd=farm["root"])


def trial_numbers(db) -> list[tuple]:
    from qbench.results.store import ResultsStore

    store = ResultsStore(db)
    try:
        return [tuple(r) for r in store.db.execute(
            "SELECT c.model, t.trial FROM trials t JOIN cells c USING (cell_id) ORDER BY c.model, t.trial").fetchall()]
    finally:
        store.close()


def wait_until(what, check, proc, seconds=300):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        try:
            found = check()
        except Exception:  # noqa: BLE001 - the store's tables may not exist yet
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what}: not seen in {seconds} s")


def dask_client(farm):
    from distributed import Client

    return Client(farm["farm"].address, timeout="30s")


def test_a_worker_killed_while_preparing_leaves_the_prepare_to_the_other(farm):
    text = SUITE.format(name="prep", model="slow_mlp", source="slow_build.py:slow_mlp", trials=1)
    suite = write_suite(farm["root"], text, "prep.yaml")
    proc = start(farm, "run", suite, "--cluster", farm["farm"].address, "--db", "prep.db", "--json")
    with dask_client(farm) as client:
        def preparing_worker():
            names = {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
            for addr, keys in client.processing().items():
                if any(str(k).startswith("qbench-prepare-") for k in keys):
                    return names[addr]
        victim = wait_until("a prepare task on a worker", preparing_worker, proc)
    time.sleep(1)  # inside its build (5 s, after torch is imported)
    farm["farm"].kill_worker(victim)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    other = {"P1": "P2", "P2": "P1"}[victim]
    assert f"[prepared] slow_mlp/fp32 on {other}" in err, err[-3000:]
    (cell,) = json.loads(out)["cells"]
    assert cell["status"] == "ok" and cell["latency_ms"]["trials"] == 1


def test_a_worker_killed_mid_trial_and_back_within_the_wait_finishes_its_cells(farm):
    suite = write_suite(farm["root"], SUITE.format(name="back", model="tiny_mlp", source="tiny.py:tiny_mlp", trials=3),
                        "back.yaml")
    db = farm["root"] / "back.db"
    proc = start(farm, "run", suite, "--cluster", farm["farm"].address, "--db", db, "--json",
                 "--lost-worker-wait", "120")
    wait_until("a committed trial", lambda: trial_numbers(db), proc)
    farm["farm"].kill_worker("D")  # during the next trial's 2 s start
    farm["farm"].start_worker("D", ["slow"])
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:] + farm["farm"].log("D")[-2000:]
    (cell,) = json.loads(out)["cells"]
    assert cell["status"] == "ok" and cell["latency_ms"]["trials"] == 3
    assert trial_numbers(db) == [("tiny_mlp", 0), ("tiny_mlp", 1), ("tiny_mlp", 2)]  # each once


def test_the_scheduler_killed_mid_run_interrupts_and_resume_completes(farm):
    from qbench.results.store import ResultsStore

    suite = write_suite(farm["root"], SUITE.format(name="sched", model="tiny_mlp", source="tiny.py:tiny_mlp", trials=3),
                        "sched.yaml")
    db = farm["root"] / "sched.db"
    address = farm["farm"].address
    proc = start(farm, "run", suite, "--cluster", address, "--db", db)
    wait_until("a committed trial", lambda: trial_numbers(db), proc)
    farm["farm"].kill_scheduler()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    lines = err.strip().splitlines()
    assert lines[-1].startswith(f"qbench: the scheduler {address} went away mid-run") and "--resume" in lines[-1]
    assert "Traceback" not in err, err
    assert not [line for line in lines if line.startswith(("distributed", "tornado"))], err  # Dask's own: -v only
    assert sum("does not answer" in line for line in lines) <= 1, err  # said once, not once per retry
    (run,) = ResultsStore(db).runs()
    assert run["status"] == "interrupted"
    assert f"qbench run {suite} --resume {run['run_id']} --db {db}" in [line.strip() for line in lines]
    kept = trial_numbers(db)
    assert 1 <= len(kept) < 3
    farm["farm"].start_scheduler(port=farm["farm"].port)  # a fresh scheduler; the workers join it by themselves
    with dask_client(farm) as client:
        client.wait_for_workers(len(farm["farm"].workers), timeout=180)  # those still running
    again = start(farm, "run", suite, "--cluster", address, "--db", db, "--resume", run["run_id"], "--json")
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-3000:]
    (cell,) = json.loads(out)["cells"]
    assert cell["status"] == "ok" and cell["latency_ms"]["trials"] == 3
    assert trial_numbers(db) == [("tiny_mlp", 0), ("tiny_mlp", 1), ("tiny_mlp", 2)]
    assert ResultsStore(db).run(run["run_id"])["status"] == "complete"
