"""Real stores written by every earlier schema (tests/results/old_stores, made by running a suite with
the code of that commit) open with today's code: migrated in place through the named migrations,
every sample kept in order, the same figures, the same layout as a new store; SQLite and PostgreSQL.
An old file on read-only media is read in place without a migration."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

import qbench.results
from qbench.report.compare import compare_runs
from qbench.results import migrations
from qbench.results.store import SCHEMA_VERSION, ResultsStore, open_store
from tests.mounts import read_only_folder

OLD = Path(__file__).parent / "old_stores"
SQLITE_FILES = sorted(OLD.glob("*.db"))
PG_DUMPS = sorted(OLD.glob("*.pg.sql"))
ALL_MIGRATIONS = [name for name, _ in migrations.MIGRATIONS]


def _old_rows_sqlite(path: Path) -> dict:
    """{(cell_id, trial): latency_ns list in iteration order} straight from the old file."""
    con = sqlite3.connect(path)
    rows = con.execute("SELECT cell_id, trial, latency_ns FROM samples ORDER BY cell_id, trial, iteration").fetchall()
    figures = con.execute("SELECT cell_id, latency_median_ms, samples_count FROM cells ORDER BY cell_id").fetchall()
    con.close()
    return _grouped(rows), figures


def _grouped(rows) -> dict:
    out: dict = {}
    for cell, trial, ns in rows:
        out.setdefault((cell, trial), []).append(ns)
    return out


def _columns(store) -> dict[str, set[str]]:
    return {t: store.backend.columns(t) for t in ("runs", "cells", "trials", "trial_samples", "layer_sensitivity")}


def _check_migrated(target, before: dict, figures: list, fresh_columns: dict) -> None:
    store = ResultsStore(target)
    assert store.backend.schema_version() == SCHEMA_VERSION
    assert migrations.applied(store) == set(ALL_MIGRATIONS)
    assert "samples" not in store.backend.tables()
    assert _columns(store) == fresh_columns  # the same layout as a store made today
    after = {(cell, trial): a.tolist() for cell, _, _ in figures
             for trial, a in store.sample_arrays(cell).items()}
    assert after == before  # every sample, in iteration order
    for cell, median_ms, count in figures:  # the stored figures agree with the packed samples
        pooled = np.concatenate(list(store.used_sample_arrays(cell).values()))
        summaries = store.used_summaries(cell)
        assert sum(s.count for s in summaries.values()) == pooled.size
        if median_ms is not None and len(store.used_sample_arrays(cell)) == len(store.sample_arrays(cell)):
            assert np.median(pooled) / 1e6 == pytest.approx(median_ms, rel=1e-12) and count == pooled.size
    run = store.runs()[0]["run_id"]
    store.close()
    report = compare_runs(target, run, run)  # the run against itself: every cell, no change
    assert report.cells and all(c.latency is not None and c.latency.ratio == 1.0 for c in report.cells)
    assert len(qbench.results.load_samples(target, run)) == sum(len(v) for v in before.values())
    assert not migrations.migrate(ResultsStore(target), new=False)  # recorded: nothing runs twice


@pytest.fixture(scope="module")
def fresh_sqlite_columns(tmp_path_factory):
    store = ResultsStore(tmp_path_factory.mktemp("fresh") / "q.db")
    yield _columns(store)
    store.close()


@pytest.mark.parametrize("old", SQLITE_FILES, ids=[p.stem for p in SQLITE_FILES])
def test_an_old_sqlite_store_migrates_in_place(old, tmp_path, fresh_sqlite_columns):
    path = tmp_path / old.name
    shutil.copy(old, path)
    before, figures = _old_rows_sqlite(path)
    assert before and figures
    _check_migrated(path, before, figures, fresh_sqlite_columns)


def test_every_schema_this_project_wrote_has_a_file():
    versions = {sqlite3.connect(p).execute("PRAGMA user_version").fetchone()[0] for p in SQLITE_FILES}
    assert versions == set(range(1, SCHEMA_VERSION))


@pytest.mark.parametrize("old", SQLITE_FILES[:1] + SQLITE_FILES[-1:], ids=lambda p: p.stem)
def test_an_old_store_on_read_only_media_is_read_in_place(old, tmp_path):
    before, figures = _old_rows_sqlite(old)
    with read_only_folder(tmp_path / "ro", {old.name: old}) as folder:
        store = open_store(folder / old.name, readonly=True)
        assert store.backend.schema_version() < SCHEMA_VERSION  # not migrated
        cell = figures[0][0]
        assert {t: a.tolist() for t, a in store.sample_arrays(cell).items()} == {
            t: v for (c, t), v in before.items() if c == cell}
        assert sum(s.count for s in store.used_summaries(cell).values()) > 0
        run = store.runs()[0]["run_id"]
        store.close()
        frame = qbench.results.load_samples(folder / old.name, run)
        assert len(frame) == sum(len(v) for v in before.values())


def _load_dump(url: str, dump: Path) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    subprocess.run([psql, "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(dump)], check=True,
                   capture_output=True, timeout=120)


@pytest.mark.parametrize("dump", PG_DUMPS, ids=[p.name.split(".")[0] for p in PG_DUMPS])
def test_an_old_postgresql_store_migrates_in_place(dump, pg_url, pg_server):
    _load_dump(pg_url, dump)
    import psycopg

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT cell_id, trial, latency_ns FROM samples ORDER BY cell_id, trial, iteration").fetchall()
        figures = conn.execute("SELECT cell_id, latency_median_ms, samples_count FROM cells ORDER BY cell_id").fetchall()
    fresh = ResultsStore(pg_server.new_database())
    fresh_columns = _columns(fresh)
    fresh.close()
    _check_migrated(pg_url, _grouped(rows), figures, fresh_columns)
