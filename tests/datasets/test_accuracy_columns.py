"""Accuracy lands in real `cells` columns; a store written before them is migrated on open."""

from __future__ import annotations

import sqlite3

from qbench.results.store import SCHEMA_VERSION, ResultsStore
from qbench.report.views import cell_views

OLD_CELLS = """
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
    quantize_s REAL, export_s REAL, device_info JSON, extra JSON, updated_at TEXT,
    UNIQUE (run_id, model, recipe, device));
INSERT INTO runs (run_id, suite, status, started_at) VALUES ('r1', 's', 'complete', '2026-01-01');
INSERT INTO cells (run_id, model, recipe, recipe_kind, device, status) VALUES ('r1', 'm', 'fp32', 'fp32', 'host', 'ok');
PRAGMA user_version=1;
"""


def test_a_schema_1_store_gains_the_accuracy_columns_and_keeps_its_rows(tmp_path):
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(OLD_CELLS)
    con.close()
    store = ResultsStore(db)
    cols = {r[1] for r in store.db.execute("PRAGMA table_info(cells)")}
    assert {"accuracy_top1", "accuracy_top5", "accuracy_metric"} <= cols
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    [old] = store.cells("r1")
    assert old["model"] == "m" and old["accuracy_top1"] is None
    store.close()
    ResultsStore(db).close()  # opening again is a no-op, not a duplicate-column error


def test_deltas_against_fp32_are_computed_in_the_view(tmp_path):
    store = ResultsStore(tmp_path / "q.db")
    store.create_run(run_id="r", suite="s", status="complete", started_at="2026-01-01")
    for recipe, kind, top1, top5 in (("fp32", "fp32", 0.95, 0.99), ("int8", "ptq", 0.93, 1.0), ("q", "qat", None, None)):
        cid = store.ensure_cell("r", "m", recipe, kind, "host")
        store.update_cell(cid, status="ok", accuracy_top1=top1, accuracy_top5=top5,
                          extra={"dataset": {"name": "digits", "sizes": {"eval": 539}}})
    views = {v["recipe"]: v for v in cell_views(store, "r")}
    assert views["int8"]["accuracy_top1"] == 0.93
    assert abs(views["int8"]["accuracy_top1_delta_vs_fp32"] - (-0.02)) < 1e-12
    assert abs(views["int8"]["accuracy_top5_delta_vs_fp32"] - 0.01) < 1e-12
    assert views["fp32"]["accuracy_top1_delta_vs_fp32"] == 0
    assert views["q"]["accuracy_top1_delta_vs_fp32"] is None and views["q"]["accuracy_metric_delta_vs_fp32"] is None
    assert views["int8"]["dataset"] == {"name": "digits", "sizes": {"eval": 539}}
