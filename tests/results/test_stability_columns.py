"""Stability and interference columns: an old store still loads; speedups carry their CI."""

from __future__ import annotations

import sqlite3

import numpy as np

from qbench.results.frame import load_samples
from qbench.results.packing import unpack
from qbench.results.store import ResultsStore
from qbench.report.views import NO_CLEAR_DIFFERENCE, cell_views, speedup_text

# The schema-2 tables as qbench wrote them before interference was measured (no disturbed,
# interference_share, interference, thread_cpu_ns, stability_* ...), with one finished cell.
OLD_STORE = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, suite TEXT NOT NULL, suite_path TEXT, suite_yaml TEXT,
    status TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT, qbench_version TEXT, torch_version TEXT,
    executorch_version TEXT, torchao_version TEXT, git_sha TEXT, host JSON, settings JSON, devices JSON);
CREATE TABLE cells (cell_id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(run_id),
    model TEXT NOT NULL, recipe TEXT NOT NULL, recipe_kind TEXT NOT NULL, device TEXT NOT NULL,
    status TEXT NOT NULL, stage TEXT, error TEXT, artifact_key TEXT, cached INTEGER, runner TEXT, threads INTEGER,
    pte_bytes INTEGER, arena_bytes INTEGER, delegated_ops INTEGER, total_ops INTEGER, delegation JSON,
    sqnr_db REAL, max_abs_error REAL, cosine_similarity REAL, top1_agreement REAL,
    latency_min_ms REAL, latency_median_ms REAL, latency_mean_ms REAL, latency_std_ms REAL,
    latency_p90_ms REAL, latency_p99_ms REAL, latency_cv REAL, samples_count INTEGER, trials INTEGER,
    load_ms REAL, method_init_ms REAL, first_inference_ms REAL, peak_rss_bytes INTEGER,
    quantize_s REAL, export_s REAL, accuracy_top1 REAL, accuracy_top5 REAL, accuracy_metric REAL,
    device_info JSON, extra JSON, updated_at TEXT, UNIQUE (run_id, model, recipe, device));
CREATE TABLE trials (cell_id INTEGER NOT NULL REFERENCES cells(cell_id), trial INTEGER NOT NULL,
    runner TEXT, threads INTEGER, affinity JSON, load_ms REAL, method_init_ms REAL, first_inference_ms REAL,
    peak_rss_bytes INTEGER, warmup_iterations INTEGER, iterations INTEGER, wall_s REAL,
    thermal_before JSON, thermal_after JSON, cooldown_wait_s REAL, finished_at TEXT, PRIMARY KEY (cell_id, trial));
CREATE TABLE samples (cell_id INTEGER NOT NULL, trial INTEGER NOT NULL, iteration INTEGER NOT NULL,
    latency_ns INTEGER NOT NULL, PRIMARY KEY (cell_id, trial, iteration)) WITHOUT ROWID;
INSERT INTO runs (run_id, suite, status, started_at) VALUES ('r1', 's', 'complete', '2026-01-01');
INSERT INTO cells (run_id, model, recipe, recipe_kind, device, status, latency_median_ms, trials)
    VALUES ('r1', 'm', 'fp32', 'fp32', 'host', 'ok', 2.0, 1);
INSERT INTO cells (run_id, model, recipe, recipe_kind, device, status, latency_median_ms, trials)
    VALUES ('r1', 'm', 'int8', 'ptq', 'host', 'ok', 1.0, 1);
INSERT INTO trials (cell_id, trial, runner) VALUES (1, 0, 'native'), (2, 0, 'native');
INSERT INTO samples VALUES (1, 0, 0, 2000000), (1, 0, 1, 2000100), (2, 0, 0, 1000000), (2, 0, 1, 1000100);
PRAGMA user_version=2;
"""


def test_an_old_store_loads_and_gains_the_new_columns(tmp_path):
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(OLD_STORE)
    con.close()
    store = ResultsStore(db)
    cols = {t: {r[1] for r in store.db.execute(f"PRAGMA table_info({t})")} for t in ("cells", "trials", "trial_samples")}
    assert {"stability_verdict", "median_ci_low_ms", "trials_replaced", "interference_share"} <= cols["cells"]
    assert {"disturbed", "interference_share", "interference"} <= cols["trials"]
    assert "thread_cpu_ns" in cols["trial_samples"]  # the old rows were packed per trial
    views = {v["recipe"]: v for v in cell_views(store, "r1")}
    assert views["int8"]["stability"] is None  # measured before stability existed: unknown, not "stable"
    assert views["int8"]["speedup_vs_fp32"] == 2.0 and views["int8"]["speedup_ci"] is not None
    assert store.used_samples(2) == {0: [1000000, 1000100]}
    store.close()
    frame = load_samples(db)
    assert list(frame["disturbed"]) == [0, 0, 0, 0] and frame["thread_cpu_ms"].isna().all()
    ResultsStore(db).close()  # opening again adds nothing twice


def _cell(store, recipe, kind, trials):
    cid = store.ensure_cell("r", "m", recipe, kind, "host")
    for t, (median_ms, disturbed) in enumerate(trials):
        rng = np.random.default_rng(t + 10 * len(recipe))
        ns = (median_ms * 1e6 * (1 + 0.01 * rng.standard_normal(40))).astype(int).tolist()
        store.add_trial(cid, t, ns, thread_cpu_ns=[n - 10 for n in ns], disturbed=int(disturbed),
                        interference_share=0.6 if disturbed else 0.01)
    store.update_cell(cid, status="ok", latency_median_ms=float(np.median(
        [n for s in store.used_samples(cid).values() for n in s])) / 1e6)
    return cid


def test_speedup_ci_uses_clean_trials_and_a_ci_spanning_one_reads_no_clear_difference(tmp_path):
    store = ResultsStore(tmp_path / "q.db")
    store.create_run(run_id="r", suite="s", status="complete", started_at="2026-01-01")
    _cell(store, "fp32", "fp32", [(10.0, False), (10.2, False), (9.9, False)])
    # trial 1 ran beside a hog: kept but left out, so it does not fake a slowdown
    _cell(store, "int8", "ptq", [(5.0, False), (9.0, True), (5.1, False), (4.9, False)])
    _cell(store, "same", "dynamic", [(9.7, False), (10.3, False), (10.0, False)])
    views = {v["recipe"]: v for v in cell_views(store, "r")}
    lo, hi = views["int8"]["speedup_ci"]
    assert 1.8 < lo <= views["int8"]["speedup_vs_fp32"] <= hi < 2.2
    assert speedup_text(views["int8"]["speedup_vs_fp32"], views["int8"]["speedup_ci"]).startswith("2.0")
    lo, hi = views["same"]["speedup_ci"]
    assert lo < 1.0 < hi
    assert speedup_text(views["same"]["speedup_vs_fp32"], views["same"]["speedup_ci"]) == NO_CLEAR_DIFFERENCE
    assert views["fp32"]["speedup_ci"] is None
    # the per-iteration thread CPU time is stored beside the samples
    packed = store.db.execute("SELECT thread_cpu_ns FROM trial_samples").fetchall()
    assert sum(unpack(r[0]).size for r in packed) == 400


def test_compare_warns_about_noisy_cells_and_leaves_disturbed_trials_out(tmp_path):
    from qbench.report.compare import compare_runs

    store = ResultsStore(tmp_path / "q.db")
    for run in ("a", "b"):
        store.create_run(run_id=run, suite="s", status="complete", started_at=f"2026-01-0{1 + (run == 'b')}")
    base = store.ensure_cell("a", "m", "int8", "ptq", "host")
    new = store.ensure_cell("b", "m", "int8", "ptq", "host")
    for cid, trials in ((base, [(5.0, False), (5.05, False), (4.95, False)]),
                        (new, [(5.0, False), (9.0, True), (5.02, False), (4.97, False)])):
        for t, (median_ms, disturbed) in enumerate(trials):
            ns = (median_ms * 1e6 * (1 + 0.005 * np.random.default_rng(t).standard_normal(30))).astype(int).tolist()
            store.add_trial(cid, t, ns, disturbed=int(disturbed))
        store.update_cell(cid, status="ok", latency_median_ms=median_ms)
    store.update_cell(new, stability_verdict="noisy")
    store.close()
    result = compare_runs(tmp_path / "q.db", "a", "b")
    [cell] = result.cells
    assert cell.latency.verdict == "no significant change"  # the hogged trial (9 ms) is not a regression
    assert any("1 cell(s) not stable" in w and "m/int8@host" in w for w in result.warnings)
