"""A sweep's points are separate lines of a trend: a regression at 4 threads is found at the right run
and not blamed on (or diluted by) the 1-thread cell of the same model × recipe × device."""

from __future__ import annotations

import numpy as np

import qbench.results
from qbench.report.trend_page import write_trend
from qbench.results.store import ResultsStore

from .synthetic import add_run, trial_samples

RUNS, REGRESSION_AT = 5, 3


def _history(db):
    rng = np.random.default_rng(7)
    store = ResultsStore(db)
    for i in range(RUNS):
        rid = f"r{i}"
        add_run(store, rid, started_at=f"2026-01-0{i + 1}T03:00:00+00:00")
        for threads, median in ((1, 4.0), (4, 1.5 * (1.4 if i >= REGRESSION_AT else 1.0))):
            cid = store.ensure_cell(rid, "m", "fp32", "fp32", "pixel8", sweep=f"threads={threads}")
            samples = trial_samples(rng, median)
            for t, ns in samples.items():
                store.add_trial(cid, t, ns, runner="native", threads=threads)
            store.update_cell(cid, status="ok", threads=threads, latency_median_ms=median)
        store.finish_run(rid, "complete", f"2026-01-0{i + 1}T03:30:00+00:00")
    store.close()


def test_points_are_lines_of_their_own(tmp_path):
    db = tmp_path / "q.db"
    _history(db)
    df = qbench.results.trend(db)
    assert len(df) == RUNS * 2 and sorted(df["sweep"].unique()) == ["threads=1", "threads=4"]
    moved = df[df["change_point"]]
    assert [(r.sweep, r.run_id, r.verdict) for r in moved.itertuples()] == [
        ("threads=4", f"r{REGRESSION_AT}", "slower")]
    path, _ = write_trend(db, tmp_path / "trend.html")
    html = path.read_text()
    assert html.count('data-sweep="threads=4"') == 1 and html.count('data-sweep="threads=1"') == 1
    assert "m · fp32 · pixel8 · threads=4</a>" in html  # the regression list names the point
