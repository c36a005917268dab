"""`qbench run --jobs N`: prepare on N local processes (a Dask LocalCluster), measure here as usual."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import qbench, tiny_suite, write_suite

pytestmark = pytest.mark.slow

# interference_threshold 1.0: these tests are about where cells run, not noise; on a busy CI machine
# disturbed trials would otherwise be left out of latency_ms.trials
SUITE = tiny_suite("jobs", trials=2, recipes=("{name: fp32, kind: fp32}", "{name: int8-ptq, kind: ptq}"),
                   top="calibration: {kind: random, samples: 4, seed: 0}\nnumerics: {samples: 2}\n",
                   benchmark="interference_threshold: 1.0")


def test_jobs_prepares_on_local_processes_and_measures_here(suite_dir):
    suite = write_suite(suite_dir, SUITE)
    proc = qbench("run", suite, "--jobs", "2", "--db", "jobs.db", "--json", timeout=900, cwd=suite_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "farm: 2 local prepare process(es) · 2 worker(s)" in proc.stderr
    # one line per recipe from the prepare process that built it (with "(cached)" when an earlier test did)
    assert len(re.findall(r"\[prepared\] tiny_mlp/\S+ on \d", proc.stderr)) == 2, proc.stderr[-3000:]
    cells = json.loads(proc.stdout)["cells"]
    assert [(c["recipe"], c["status"], c["latency_ms"]["trials"]) for c in cells] == [("fp32", "ok", 2), ("int8-ptq", "ok", 2)]


def test_jobs_and_cluster_exclude_each_other(suite_dir):
    suite = write_suite(suite_dir, SUITE)
    proc = qbench("run", suite, "--jobs", "2", "--cluster", "tcp://127.0.0.1:1", timeout=300, cwd=suite_dir)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "qbench: --cluster and --jobs exclude each other (a cluster's workers have their own slots)")
