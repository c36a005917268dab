"""Stores written before sweeps (cells keyed by model × recipe × device) keep working: opening one
widens the key to include the sweep point (SQLite rebuilds the table, PostgreSQL swaps the
constraint), its cells keep their ids and trials, and its runs compare with new single-value runs."""

from __future__ import annotations

import sqlite3

import pytest

import qbench.results
from qbench.report.compare import compare_runs
from qbench.results.store import SCHEMA_VERSION, ResultsStore
# a schema-1 store: cells UNIQUE (run, model, recipe, device)
from tests.datasets.test_accuracy_columns import OLD_CELLS


def _measure(store, cid, median_ns=1_000_000):
    for trial in range(2):
        store.add_trial(cid, trial, [median_ns + i for i in range(20)], runner="native", threads=1)
    store.update_cell(cid, status="ok", latency_median_ms=median_ns / 1e6, threads=1)


def _old_sqlite(tmp_path):
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(OLD_CELLS)  # run r1: cell m / fp32 / host
    con.close()
    return db


def _old_postgres(url):
    store = ResultsStore(url)
    store.create_run(run_id="r1", suite="s", status="complete", started_at="2026-01-01")
    store.ensure_cell("r1", "m", "fp32", "fp32", "host")
    store.db.execute("ALTER TABLE cells DROP COLUMN sweep")  # drops the widened key with it
    store.db.execute("ALTER TABLE cells DROP COLUMN batch")
    store.db.execute("ALTER TABLE cells ADD CONSTRAINT cells_run_id_model_recipe_device_key "
                     "UNIQUE (run_id, model, recipe, device)")
    store.db.execute("DROP TABLE qbench_migrations")  # stores before schema 4 had no record of migrations
    store.backend.set_schema_version(2)
    store.close()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def old_store(request, tmp_path):
    if request.param == "sqlite":
        return _old_sqlite(tmp_path)
    return _old_postgres(request.getfixturevalue("pg_url"))


def test_an_old_store_is_rekeyed_and_compares_with_new_runs(old_store):
    store = ResultsStore(old_store)
    assert store.backend.schema_version() == SCHEMA_VERSION
    [old] = store.cells("r1")
    assert old["sweep"] == "" and old["batch"] is None
    _measure(store, old["cell_id"])  # its id still points its trials at it
    store.create_run(run_id="r2", suite="s", status="complete", started_at="2026-01-02")
    _measure(store, store.ensure_cell("r2", "m", "fp32", "fp32", "host"))
    store.create_run(run_id="r3", suite="s", status="complete", started_at="2026-01-03")
    for threads in (1, 2):  # a sweep next to the old cells: same model/recipe/device, other points
        _measure(store, store.ensure_cell("r3", "m", "fp32", "fp32", "host", sweep=f"threads={threads}"))
    assert store.ensure_cell("r3", "m", "fp32", "fp32", "host", sweep="threads=2") == store.cells("r3")[1]["cell_id"]
    store.close()
    ResultsStore(old_store).close()  # opening again changes nothing

    same = compare_runs(old_store, "r1", "r2", n_boot=200)
    assert [c.key for c in same.cells] == [("m", "fp32", "host")]  # the three-part key it always had
    assert same.to_dict()["cells"][0].keys() >= {"model", "recipe", "device"}
    assert "sweep" not in same.to_dict()["cells"][0]  # a single-value run's JSON is as before
    swept = compare_runs(old_store, "r1", "r3", n_boot=200)
    assert swept.cells == [] and swept.only_in_base == [("m", "fp32", "host")]
    assert swept.to_dict()["only_in_new"] == [{"model": "m", "recipe": "fp32", "device": "host", "sweep": "threads=1"},
                                              {"model": "m", "recipe": "fp32", "device": "host", "sweep": "threads=2"}]
    assert sorted(qbench.results.load(old_store)["sweep"]) == ["", "", "threads=1", "threads=2"]


def test_an_old_file_read_in_place_reads_an_empty_sweep(tmp_path):
    db = _old_sqlite(tmp_path)
    store = ResultsStore(db, readonly=True)  # e.g. on a read-only filesystem: not migrated
    try:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == 1
        [row] = store.cells("r1")
        assert row["sweep"] is None
        from qbench.report.data import cell_key

        assert cell_key(row) == ("m", "fp32", "host")
    finally:
        store.close()
