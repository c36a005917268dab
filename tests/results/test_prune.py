"""`qbench prune`: a dry run by default that says what it would free; --yes deletes old runs or only
their raw samples, never a suite's newest complete run or its baseline, then VACUUMs; what is left
still answers trend, compare and load_samples. SQLite and a real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

import qbench.results
from qbench.cli import main
from qbench.report.compare import compare_runs
from qbench.results.store import ResultsStore
from qbench.stats import summary_stats

NOW = datetime.now(timezone.utc)


def _run(store, rid, suite, days_ago, status="complete", slower=1.0, seed=0):
    rng = np.random.default_rng(seed)
    store.create_run(run_id=rid, suite=suite, status=status, started_at=(NOW - timedelta(days=days_ago)).isoformat())
    for recipe in ("fp32", "int8"):
        cid = store.ensure_cell(rid, "m", recipe, recipe, "host")
        pooled = []
        for trial in range(3):
            ns = (1e6 * slower * (1 + 0.01 * rng.standard_normal()) * rng.gamma(50, 0.02, 3000)).astype(np.int64)
            store.add_trial(cid, trial, ns, runner="native")
            pooled.append(ns)
        store.update_cell(cid, status="ok", latency_median_ms=summary_stats(np.concatenate(pooled))["median"])
    if status != "running":
        store.finish_run(rid, status, NOW.isoformat())


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    target = tmp_path / "q.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    store = ResultsStore(target)
    for i in range(6):  # suite a: a0 (oldest) .. a5 (newest, still running)
        _run(store, f"a{i}", "a", 60 - 10 * i, status="running" if i == 5 else "complete", slower=1.3 if i == 4 else 1.0,
             seed=i)
    _run(store, "b0", "b", 100, seed=9)  # suite b's only run: its newest complete run
    store.close()
    return target


def cli(capsys, *argv):
    code = main(["prune", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _run_ids(db):
    store = ResultsStore(db)
    try:
        return sorted(r["run_id"] for r in store.runs())
    finally:
        store.close()


def test_without_an_option_it_says_what_to_give(db, capsys):
    code, out, err = cli(capsys, "--db", db)
    assert code == 2 and err.count("\n") == 1 and "--keep-last N" in err and "Traceback" not in err
    code, _, err = cli(capsys, "--db", db, "--keep-last", 0)
    assert code == 2 and "--keep-last 0" in err


def test_dry_run_changes_nothing_and_says_what_it_would_free(db, capsys):
    before = _run_ids(db)
    code, out, err = cli(capsys, "--db", db, "--keep-last", 2)
    assert code == 0 and "would delete 3 run(s) (6 cells;" in out and "MB of raw samples" in out
    assert "dry run: nothing changed; add --yes to apply" in out
    assert "a3, a4, a5, b0" in out  # a4: newest complete, a3: its baseline, a5: running, b0: suite b's newest
    assert _run_ids(db) == before


def test_keep_last_deletes_whole_runs_but_never_the_baseline(db, capsys):
    code, out, _ = cli(capsys, "--db", db, "--keep-last", 1, "--yes")
    assert code == 0 and "deleted 3 run(s)" in out and "(VACUUM" in out and _shrank(out)
    assert _run_ids(db) == ["a3", "a4", "a5", "b0"]  # keep-last 1 of suite a, but a3/a4 are the gate's
    store = ResultsStore(db)
    assert store.db.execute("SELECT count(*) FROM cells WHERE run_id='a0'").fetchone()[0] == 0
    assert store.db.execute("SELECT count(*) FROM trials").fetchone()[0] == 4 * 2 * 3
    store.close()


def test_older_than_counts_days(db, capsys):
    code, out, _ = cli(capsys, "--db", db, "--older-than", 45, "--apply")
    assert code == 0 and _run_ids(db) == ["a2", "a3", "a4", "a5", "b0"]  # a0 (60 d), a1 (50 d) gone; b0 protected


def test_samples_of_old_runs_go_and_their_figures_still_compare(db, capsys, tmp_path):
    full = compare_runs(db, "a3", "a4")
    history = qbench.results.trend(db, "a")
    code, out, _ = cli(capsys, "--db", db, "--keep-samples-days", 15, "--yes")
    assert code == 0 and "dropped the raw samples of 3 run(s)" in out  # a0-a2 (a3, a4, b0 protected)
    assert "(VACUUM" in out and _shrank(out)
    assert _run_ids(db) == ["a0", "a1", "a2", "a3", "a4", "a5", "b0"]
    assert len(qbench.results.load_samples(db, "a0")) == 0 and len(qbench.results.load_samples(db, "a3")) == 18000
    # a stripped run still compares: from its trials' sketches, its exact stored median as the point
    stripped = compare_runs(db, "a2", "a4")
    raw = {c.recipe: c.latency for c in full.cells}
    for cell in stripped.cells:
        assert cell.latency is not None and cell.latency.verdict == "slower" == raw[cell.recipe].verdict
        assert cell.latency.n_base == 9000  # the trials' real sample counts, not the sketches' lengths
    df = qbench.results.trend(db, "a")
    pd.testing.assert_frame_equal(df, history)  # trend reads summaries only: the same with or without samples
    assert df["median_ms"].notna().all()
    moved = df[df["change_point"]]
    assert set(moved["run_id"]) == {"a4"}


def test_nothing_to_prune(db, capsys):
    code, out, _ = cli(capsys, "--db", db, "--keep-last", 50)
    assert code == 0 and out.startswith("nothing to prune")


def _shrank(out: str) -> bool:
    """The store's size line: smaller after (SQLite: the file shrinks; PostgreSQL: VACUUM keeps the files
    and makes the space reusable, so not larger)."""
    import re

    before, after = map(float, re.search(r": ([\d.]+) MB -> ([\d.]+) MB", out).groups())
    return after <= before
