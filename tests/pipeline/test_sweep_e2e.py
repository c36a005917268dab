"""A real thread × batch sweep on the host: one tiny model, fp32 and dynamic int8, threads [1, 2] × batch
[1, 2]. Each model × recipe is four cells with their own keys; a batch is a .pte of its own; the run
compares with itself cell for cell; the summary and the report show the axes; the report draws
speedup vs threads (checked in headless Chromium)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from qbench.report.compare import compare_runs
from qbench.report.html import write_report
from qbench.results.store import ResultsStore
from tests.helpers import REPO, qbench, write_suite
from tests.report.test_html_report import browser  # noqa: F401 - the headless Chromium fixture

pytestmark = pytest.mark.slow

SUITE = """
name: sweep-e2e
models:
  - name: tiny_mlp
    source: python:models/tiny.py:tiny_mlp
    inputs: [{shape: [1, 64], dtype: float32}]
recipes:
  - {name: fp32, kind: fp32}
  - {name: int8-dynamic, kind: dynamic}
calibration: {kind: random, samples: 4, seed: 0}
numerics: {samples: 2}
devices: [host]
benchmark: {warmup: 2, warmup_seconds: 0, iterations: 5, min_seconds: 0, trials: 1, threads: [1, 2], batch: [1, 2]}
"""
POINTS = ["threads=1 batch=1", "threads=1 batch=2", "threads=2 batch=1", "threads=2 batch=2"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    shutil.copytree(REPO / "suites" / "models", root / "models")
    suite = write_suite(root, SUITE)
    db = root / "q.db"
    proc = qbench("run", suite, "--db", db, "--reports-dir", root / "reports", "--json", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"root": root, "db": db, "doc": json.loads(proc.stdout), "stderr": proc.stderr}


def test_four_cells_per_model_and_recipe_with_their_own_keys(sweep):
    doc = sweep["doc"]
    assert len(doc["cells"]) == 8 and all(c["status"] == "ok" for c in doc["cells"])
    for recipe in ("fp32", "int8-dynamic"):
        mine = [c for c in doc["cells"] if c["recipe"] == recipe]
        assert [c["sweep"] for c in mine] == POINTS
        assert [(c["threads"], c["batch"]) for c in mine] == [(1, 1), (1, 2), (2, 1), (2, 2)]  # what ran
    store = ResultsStore(sweep["db"])
    try:
        rows = store.cells(doc["run_id"])
        keys = {(r["model"], r["recipe"], r["device"], r["sweep"]) for r in rows}
        assert len(keys) == 8
        # one .pte per batch (the input shape is in the cache key); threads share it
        by_point = {(r["recipe"], r["sweep"]): r["artifact_key"] for r in rows}
        assert by_point[("fp32", POINTS[0])] == by_point[("fp32", POINTS[2])]
        assert by_point[("fp32", POINTS[0])] != by_point[("fp32", POINTS[1])]
        # each trial ran with its point's threads
        threads = {r["sweep"]: {t["threads"] for t in store.trials(r["cell_id"])} for r in rows}
        assert threads[POINTS[0]] == {1} and threads[POINTS[3]] == {2}
    finally:
        store.close()


def test_speedup_over_fp32_is_at_the_same_point(sweep):
    for c in sweep["doc"]["cells"]:
        if c["recipe"] == "int8-dynamic":
            fp32 = next(f for f in sweep["doc"]["cells"] if f["recipe"] == "fp32" and f["sweep"] == c["sweep"])
            assert c["speedup_vs_fp32"] == pytest.approx(fp32["latency_ms"]["median"] / c["latency_ms"]["median"])


def test_the_summary_shows_threads_and_batch_columns(sweep):
    from qbench.cli.summary import failures, render_plain

    lines = render_plain({**sweep["doc"], "suite": "sweep-e2e"}).splitlines()
    head = next(line for line in lines if line.startswith("model"))
    assert head.split()[:5] == ["model", "recipe", "device", "threads", "batch"]
    assert [line.split()[3:5] for line in lines[lines.index(head) + 1:][:4]] == [["1", "1"], ["1", "2"],
                                                                                ["2", "1"], ["2", "2"]]
    broken = {**sweep["doc"]["cells"][3], "status": "failed", "error": "boom"}
    assert failures({"cells": [broken]}) == ["tiny_mlp/fp32@host threads=2 batch=2: boom"]


def test_the_run_compares_with_itself_cell_for_cell(sweep):
    rid = sweep["doc"]["run_id"]
    result = compare_runs(sweep["db"], rid, rid, n_boot=200)
    assert len(result.cells) == 8 and not result.only_in_base and not result.only_in_new
    assert sorted(c.sweep for c in result.cells) == sorted(POINTS * 2)
    assert result.to_dict()["cells"][0]["sweep"] in POINTS
    assert result.cell("tiny_mlp", "fp32", "host", "threads=2 batch=2").verdict == "no significant change"


def test_the_report_draws_speedup_vs_threads(sweep, browser):  # noqa: F811
    report = write_report(sweep["db"], [sweep["doc"]["run_id"]], sweep["root"] / "report.html")
    browser.events.clear()
    browser.send("Page.navigate", url=report.as_uri())
    browser.wait_for("Page.loadEventFired")
    assert browser.errors() == []
    assert browser.evaluate("document.querySelectorAll('#plot-threads svg.chart').length") == 1
    # a line per model × recipe × batch, two thread counts each, starting at 1×
    names = browser.evaluate("Array.from(document.querySelectorAll('#plot-threads g.series'))"
                             ".map((g) => g.dataset.name)")
    assert sorted(names) == ["tiny_mlp · fp32 · batch=1", "tiny_mlp · fp32 · batch=2",
                             "tiny_mlp · int8-dynamic · batch=1", "tiny_mlp · int8-dynamic · batch=2"]
    assert browser.evaluate("document.querySelectorAll('#plot-threads g.series circle').length") == 8
    assert browser.evaluate("document.querySelector('#plot-threads svg').getBoundingClientRect().width") > 300
    heads = browser.evaluate("Array.from(document.querySelectorAll('#cells-table thead tr:last-child th'))"
                             ".map((th) => th.dataset.key)")
    assert heads[heads.index("device") + 1: heads.index("device") + 3] == ["threads", "batch"]
    assert "1 devices · 4 sweep points" in report.read_text()


def test_an_affinity_sweep_pins_each_point_to_its_cores(sweep):
    """Core lists as a sweep axis (the fp32 batch-1 program is already in the cache: no export)."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs two CPUs")
    suite = write_suite(sweep["root"], SUITE.replace("threads: [1, 2], batch: [1, 2]",
                                                     f"threads: 1, affinity: [[{cores[0]}], [{cores[0]}, {cores[1]}]]")
                        .replace("  - {name: int8-dynamic, kind: dynamic}\n", ""), "affinity.yaml")
    db = sweep["root"] / "affinity.db"
    proc = qbench("run", suite, "--db", db, "--reports-dir", sweep["root"] / "reports", "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert [c["sweep"] for c in doc["cells"]] == [f"affinity={cores[0]}", f"affinity={cores[0]},{cores[1]}"]
    store = ResultsStore(db)
    try:
        applied = [{json.dumps(json.loads(t["affinity"])) for t in store.trials(r["cell_id"])}
                   for r in store.cells(doc["run_id"])]
    finally:
        store.close()
    assert applied == [{json.dumps([cores[0]])}, {json.dumps(cores[:2])}]
