"""The results store on both backends: a SQLite file and a real PostgreSQL server.

The same API calls, the same answers: what the pipeline writes, what `results`, `report`,
`compare`, `--baseline` and `qbench.results.load` read.
"""

from __future__ import annotations

import threading

import pytest

import qbench.results
from qbench.errors import StoreError
from qbench.results.store import SCHEMA_VERSION, ResultsStore
from tests.report.synthetic import BASE, NEW, build_nightly_db
from tests.helpers import qbench as qbench_cli


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "qbench.db"
    return request.getfixturevalue("pg_url")


def _run(store, run_id, started="2026-01-01T00:00:00+00:00", suite="s"):
    store.create_run(run_id=run_id, suite=suite, status="running", started_at=started, host={"h": 1},
                     settings={"trials": 2}, devices=["host"])


def test_write_and_read_back(target):
    store = ResultsStore(target)
    _run(store, "r1")
    cid = store.ensure_cell("r1", "m", "fp32", "fp32", "host")
    assert store.ensure_cell("r1", "m", "fp32", "fp32", "host") == cid  # a resumed run finds its row
    big = [3_000_000_000, 5]  # 3 s in ns: beyond 32-bit integers
    store.add_trial(cid, 0, big, runner="native", affinity=[0, 1], wall_s=1.25)
    store.add_trial(cid, 0, [7, 8, 9], runner="native", wall_s=1.5)  # a replaced trial leaves no stale samples
    store.add_trial(cid, 1, big, runner="native")
    many = list(range(10_000, 15_000))  # a long trial's samples (PostgreSQL: COPY)
    store.add_trial(cid, 2, many, runner="native")
    assert store.samples(cid) == {0: [7, 8, 9], 1: big, 2: many}
    store.add_trial(cid, 2, [1, 2], runner="native")
    assert store.samples(cid)[2] == [1, 2]
    store.db.execute("DELETE FROM trial_samples WHERE trial=2")
    store.db.execute("DELETE FROM trials WHERE trial=2")
    assert store.done_trials(cid) == {0, 1}
    assert [t["wall_s"] for t in store.trials(cid)] == [1.5, None]
    store.update_cell(cid, status="ok", latency_median_ms=0.123456789012, delegation={"a": 1}, pte_bytes=2**40)
    store.merge_extra(cid, one=1)
    store.merge_extra(cid, two=2)
    row = store.cell(cid)
    assert row["latency_median_ms"] == 0.123456789012  # double precision on both
    assert row["pte_bytes"] == 2**40 and row["delegation"] == '{"a": 1}'
    assert dict(row)["extra"] == '{"one": 1, "two": 2}' and row.keys()[0] == "cell_id"
    store.replace_ops(cid, [{"name": "conv", "kind": "delegate", "count": 3, "total_ms": 1.0, "share": 0.5}])
    store.replace_power_samples(cid, [(0.0, 1.5, {"cpu": 1.0}), (0.1, 1.6, None)])
    store.finish_run("r1", "complete", "2026-01-01T00:01:00+00:00")
    store.close()

    again = ResultsStore(target)  # reopening migrates nothing and keeps everything
    assert again.run("r1")["status"] == "complete" and again.run("nope") is None
    assert [r["run_id"] for r in again.runs()] == ["r1"]
    assert [c["cell_id"] for c in again.cells("r1")] == [cid]
    samples = qbench.results.load_samples(target, "r1")
    assert list(samples["latency_ms"]) == [7e-6, 8e-6, 9e-6, 3000.0, 5e-6]
    again.close()


def test_baseline_is_the_latest_earlier_complete_run(target):
    store = ResultsStore(target)
    same_second = "2026-01-01T00:00:00+00:00"  # insertion order decides, not the clock
    for rid in ("a", "b", "c"):
        _run(store, rid, started=same_second)
        store.update_cell(store.ensure_cell(rid, "m", "fp32", "fp32", "host"), status="ok")  # measured cells
        store.finish_run(rid, "complete", same_second)
    _run(store, "d", started=same_second)  # still running: never a baseline
    assert store.latest_run_id(suite="s") == "c"
    assert store.latest_run_id(suite="s", before="c") == "b"
    assert store.latest_run_id(suite="s", before="a") is None
    assert store.latest_run_id(suite="other") is None
    store.close()


def test_migration_adds_missing_columns_and_refuses_newer(target):
    store = ResultsStore(target)
    store.db.execute("ALTER TABLE cells DROP COLUMN power_reason")  # a store from before the power columns
    store.db.execute("DELETE FROM qbench_migrations WHERE name='0001_cell_accuracy_and_power'")
    store.backend.set_schema_version(1)
    store.close()
    store = ResultsStore(target)
    assert "power_reason" in store.backend.columns("cells")
    assert store.backend.schema_version() == SCHEMA_VERSION
    store.backend.set_schema_version(SCHEMA_VERSION + 1)
    store.close()
    with pytest.raises(StoreError, match="newer qbench"):
        ResultsStore(target)


def test_reports_read_either_backend_alike(tmp_path, pg_url):
    """The nightly scenario written to both: load(), compare and the CLI readers give the same answers."""
    import pandas as pd

    from qbench.report.compare import compare_runs

    sqlite_db = tmp_path / "qbench.db"
    build_nightly_db(sqlite_db)
    build_nightly_db(pg_url)
    a, b = qbench.results.load(sqlite_db), qbench.results.load(pg_url)
    assert list(a.columns) == list(b.columns) and len(a) == len(b) > 20
    for col in ("model", "recipe", "device", "status", "latency_median_ms", "pte_bytes", "sqnr_db", "error"):
        pd.testing.assert_series_equal(a[col], b[col], check_dtype=False)
    assert a["delegation"].tolist() == b["delegation"].tolist()  # JSON parsed the same
    ca, cb = compare_runs(sqlite_db, BASE, NEW), compare_runs(pg_url, BASE, NEW)
    assert [(c.model, c.recipe, c.device, c.verdict) for c in ca.cells] == \
           [(c.model, c.recipe, c.device, c.verdict) for c in cb.cells]

    env = {"QBENCH_DB": pg_url}  # the default store, as a farm's nightly job sets it
    runs = qbench_cli("results", "--runs", env=env, timeout=120)
    assert runs.returncode == 0, runs.stderr
    assert BASE in runs.stdout and NEW in runs.stdout
    out = tmp_path / "report.html"
    rep = qbench_cli("report", BASE, NEW, "-o", out, env=env, timeout=300, cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert "resnet18" in out.read_text()
    cmp = qbench_cli("compare", BASE, NEW, "--db", pg_url, "--json", timeout=300)
    assert cmp.returncode == 0, cmp.stderr
    assert "resnet18" in cmp.stdout


def test_several_writers_share_one_database(pg_url):
    """Nightly suites in parallel: stores in several threads (own connections) write one database."""
    errors = []

    def write(run_id):
        try:
            store = ResultsStore(pg_url)
            _run(store, run_id)
            for i in range(5):
                cid = store.ensure_cell(run_id, f"m{i}", "fp32", "fp32", "host")
                store.add_trial(cid, 0, [1, 2, 3])
            store.finish_run(run_id, "complete", "2026-01-01T00:01:00+00:00")
            store.close()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"run{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store = ResultsStore(pg_url)
    assert sorted(r["run_id"] for r in store.runs()) == [f"run{i}" for i in range(4)]
    assert all(len(store.cells(f"run{i}")) == 5 for i in range(4))


def test_unreachable_database_is_one_line_without_the_password(tmp_path):
    url = "postgresql://qbench:s3cret@127.0.0.1:1/qbench"
    proc = qbench_cli("results", "--runs", "--db", url, timeout=60, env={"QBENCH_DB_TIMEOUT": "3"})
    assert proc.returncode == 2
    assert proc.stderr.startswith("qbench: cannot open the results database postgresql://qbench:***@127.0.0.1:1/qbench")
    assert len(proc.stderr.strip().splitlines()) == 1 and "s3cret" not in proc.stderr + proc.stdout


def test_open_store_is_the_one_opener_for_both(tmp_path, pg_url):
    """open_store: a URL opens the shared database (readers need qbench's tables there), a file keeps
    its checks; an older PostgreSQL store read by a reader is migrated in place (a server is never
    read-only media)."""
    from qbench.results.store import open_store

    with pytest.raises(StoreError, match="no qbench results in the database"):
        open_store(pg_url, readonly=True)
    with pytest.raises(StoreError, match="no results store at"):
        open_store(tmp_path / "absent.db", readonly=True)
    store = open_store(pg_url, create=True)
    _run(store, "r1")
    store.db.execute("ALTER TABLE trials DROP COLUMN disturbed")  # a store from before interference
    store.db.execute("DELETE FROM qbench_migrations WHERE name='0003_interference_and_stability'")
    store.close()
    reader = open_store(pg_url, readonly=True)
    assert "disturbed" in reader.backend.columns("trials") and reader.run("r1")["suite"] == "s"
    reader.close()
