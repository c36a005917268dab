"""Every metric of the registry (results/metrics.py) reaches each place it declares: the store's column
with its SQL type (new stores and every old one), a finished cell's columns, the `--json` cell, the
cells tables (HTML, terminal, Markdown, page), compare and the MLflow metrics. A metric added to the
registry is tested here without a line of its own."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from qbench.report import fmt, table
from qbench.report.compare import compare_runs
from qbench.report.markdown import markdown_summary
from qbench.report.views import cell_views
from qbench.results import metrics
from qbench.results.columns import summary_columns
from qbench.stats import summary_stats
from qbench.results.store import ResultsStore
from tests.report.synthetic import add_run

OLD = Path(__file__).parent / "old_stores"
TRIALS = {0: [1_000_000 + 10_000 * i for i in range(50)], 1: [1_200_000 + 7_000 * i for i in range(50)]}
STAT_METRICS = [m for m in metrics.METRICS if m.stat is not None]


def _declared(store: ResultsStore) -> dict[str, str]:
    return {r[1]: r[2].split()[0].upper() for r in store.db.execute("PRAGMA table_info(cells)")}


@pytest.mark.parametrize("name", ["new", *sorted(p.name for p in OLD.glob("*.db"))])
def test_every_registered_metric_has_its_column_new_store_or_migrated_old_one(tmp_path, name):
    path = tmp_path / "q.db"
    if name != "new":
        shutil.copy(OLD / name, path)
    store = ResultsStore(path)
    try:
        have = _declared(store)
    finally:
        store.close()
    assert {m.column: m.sql_type for m in metrics.METRICS} == {m.column: have.get(m.column) for m in metrics.METRICS}


def _stored_cell(tmp_path, run_id: str, scale: float = 1.0) -> ResultsStore:
    store = ResultsStore(tmp_path / "q.db")
    add_run(store, run_id, started_at=f"2025-11-2{len(run_id)}T03:00:00+00:00")
    cid = store.ensure_cell(run_id, "m", "int8", "ptq", "host")
    samples = {t: [int(v * scale) for v in ns] for t, ns in TRIALS.items()}
    for trial, ns in samples.items():
        store.add_trial(cid, trial, ns, runner="native", threads=1, iterations=len(ns), wall_s=1.0, load_ms=1.0,
                        first_inference_ms=2.0, peak_rss_bytes=5000)
    store.update_cell(cid, pte_bytes=1000, arena_bytes=10, sqnr_db=30.0, top1_agreement=1.0,
                      **summary_columns(store.trials(cid), samples, {}, "native"))
    return store


@pytest.mark.parametrize("metric", STAT_METRICS, ids=lambda m: m.column)
def test_a_latency_statistic_goes_from_the_samples_to_its_column_and_the_json_cell(tmp_path, metric):
    store = _stored_cell(tmp_path, "r1")
    try:
        [row], [view] = store.cells("r1"), cell_views(store, "r1")
    finally:
        store.close()
    expected = summary_stats(np.concatenate([np.asarray(ns) for ns in TRIALS.values()]))[metric.stat]
    assert row[metric.column] == pytest.approx(expected)
    assert view[metric.json_in][metric.json] == pytest.approx(expected)


@pytest.mark.parametrize("metric", metrics.rendered(), ids=lambda m: m.column)
def test_a_rendered_metric_is_a_column_of_each_table_it_names(tmp_path, metric):
    store = _stored_cell(tmp_path, "r1")
    try:
        [view] = cell_views(store, "r1")
        summary = markdown_summary(store, "r1", views=[view])
    finally:
        store.close()
    html_keys = [c.key for c in table.COLUMNS]
    assert html_keys.index(metric.key) == html_keys.index(metric.after["html"]) + 1
    lists = {"summary": table.SUMMARY, "wide": table.SUMMARY_WIDE, "markdown": table.MARKDOWN, "page": table.PAGE}
    for name, keys in lists.items():
        assert (metric.key in keys) == (name in metric.after), name
    cell = table.row(view)["values"][metric.key]
    assert cell["sort"] == metric.value(view) and cell["text"] == fmt.metric(metric.text, metric.value(view))
    if "markdown" in metric.after:
        header = next(line for line in summary.splitlines() if line.startswith("| model"))
        assert f" {table.pick([metric.key])[0].header} " in header


@pytest.mark.parametrize("metric", metrics.compared(), ids=lambda m: m.column)
def test_a_compared_metric_is_judged_by_compare(tmp_path, metric):
    store = _stored_cell(tmp_path, "r1")
    store.close()
    store = _stored_cell(tmp_path, "r22", scale=1.3)
    try:
        store.update_cell(store.cells("r22")[0]["cell_id"], pte_bytes=2000, peak_rss_bytes=9000, arena_bytes=20,
                          sqnr_db=20.0, top1_agreement=0.5)
        [cell] = compare_runs(store, "r1", "r22", n_boot=200).cells
    finally:
        store.close()
    change = next(m for m in cell.metrics if m.name == metric.column)
    assert change.flagged == metric.gated  # every figure got worse beyond its threshold
    assert metric.compare_label in change.describe()


def test_mlflow_metric_names_come_from_the_registry(tmp_path):
    from qbench.report.mlflow_export import _cell_metrics

    store = _stored_cell(tmp_path, "r1")
    try:
        [row], [view] = store.cells("r1"), cell_views(store, "r1")
    finally:
        store.close()
    logged = _cell_metrics(dict(row), view)
    assert {m.mlflow_name for m in metrics.METRICS if m.value(view) is not None} <= set(logged)
