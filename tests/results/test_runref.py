"""Run references (results/runref.py): one resolver behind every command and the Python API that take
a run id. A synthetic store of three runs (two of suite `mobile`, one of `smoke`) gives known answers."""

from __future__ import annotations

import json

import pytest

import qbench
from qbench.errors import ExitCode, UsageError
from qbench.results.runref import RunRefError, resolve_run
from qbench.results.store import ResultsStore
from tests.report.synthetic import BASE, NEW, build_nightly_db, add_run
from tests.helpers import qbench as qbench_cli

SMOKE = "20251128-030000-smoke"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("runref") / "qbench.db"
    build_nightly_db(path)  # BASE (mobile), then NEW (mobile)
    store = ResultsStore(path)
    add_run(store, SMOKE, suite="smoke", started_at="2025-11-28T03:00:00+00:00", status="failed")
    store.close()
    return path


@pytest.fixture
def store(db):
    s = ResultsStore(db)
    yield s
    s.close()


@pytest.mark.parametrize("ref, run", [
    (NEW, NEW), ("20251126", BASE), ("20251128-03", SMOKE),
    ("last", SMOKE), ("last~0", SMOKE), ("last~1", NEW), ("last~2", BASE),
    ("last:mobile", NEW), ("last~1:mobile", BASE), ("last:smoke", SMOKE),
])
def test_every_form_names_its_run(store, ref, run):
    assert resolve_run(store, ref) == run


@pytest.mark.parametrize("ref, says", [
    ("2025112", "'2025112' is ambiguous, 3 runs start with it: " + SMOKE),
    ("nope", f"no run 'nope' in {{db}}; newest: {SMOKE} (smoke, failed), {NEW} (mobile, complete)"),
    ("last~3", "'last~3': only 3 run(s) in {db} (last~2 is the oldest)"),
    ("last~2:mobile", "'last~2:mobile': only 2 run(s) of suite 'mobile'"),
    ("last:nightly", "'last:nightly': no run of suite 'nightly' in {db}; suites in the store: mobile, smoke"),
])
def test_a_reference_naming_no_run_or_several_lists_candidates(store, db, ref, says):
    with pytest.raises(RunRefError) as err:
        resolve_run(store, ref, what="compare")
    assert isinstance(err.value, UsageError) and err.value.exit_code == ExitCode.USAGE
    assert str(err.value).startswith("compare: ") and says.format(db=db) in str(err.value)
    assert "\n" not in str(err.value)


def test_compare_report_ops_and_results_take_references(db, tmp_path):
    cmp = qbench_cli("compare", "last~1:mobile", "last:mobile", "--db", db, "--json")
    assert cmp.returncode == 0, cmp.stderr
    assert (json.loads(cmp.stdout)["base_run"], json.loads(cmp.stdout)["new_run"]) == (BASE, NEW)
    rep = qbench_cli("report", "20251126", "last~1", "--db", db)  # default page: beside the store, resolved id
    assert rep.returncode == 0, rep.stderr
    assert rep.stdout.strip() == str(db.parent / NEW / "report.html")
    ops = qbench_cli("ops", "last~1", "--db", db, "--json")
    assert ops.returncode == 0, ops.stderr
    assert {c["cell"].split("@")[1] for c in json.loads(ops.stdout)} == {"pixel8"}
    res = qbench_cli("results", "--db", db, "--run", "last:mobile", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert {r["run_id"] for r in json.loads(res.stdout)} == {NEW}


@pytest.mark.parametrize("argv", [
    ["compare", "2025112", "last"], ["report", "2025112"], ["ops", "2025112"], ["results", "--run", "2025112"],
    ["export", "mlflow", "2025112"],
])
def test_an_ambiguous_reference_is_one_line_and_exit_2_everywhere(db, argv, tmp_path):
    out = qbench_cli(*argv, "--db", db, cwd=tmp_path)
    assert out.returncode == ExitCode.USAGE, out.stderr
    assert out.stderr.count("\n") == 1 and "ambiguous, 3 runs start with it" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written: no page, no tracking store


def test_the_python_api_resolves_and_raises_like_the_cli(db):
    assert set(qbench.load(db, "last~1")["run_id"]) == {NEW}
    assert set(qbench.load(db, ["last:mobile", "20251126"])["run_id"]) == {NEW, BASE}
    with pytest.raises(RunRefError, match="no run 'nope'"):
        qbench.load(db, "nope")
    with pytest.raises(RunRefError, match="ambiguous"):
        qbench.compare("2025112", "last", db=db)
    df = qbench.compare("last~1:mobile", "last:mobile", db=db, threshold="5%", growth="5%")
    assert len(df) > 0 and {"ratio", "verdict", "regression"} <= set(df.columns)


def test_references_and_types_read_postgresql_alike(db, pg_url):
    """The same three runs in PostgreSQL (runs ordered by insertion there too): every form resolves to
    the same run, and load() gives the same dtypes."""
    build_nightly_db(pg_url)
    pg = ResultsStore(pg_url)
    add_run(pg, SMOKE, suite="smoke", started_at="2025-11-28T03:00:00+00:00", status="failed")
    lite = ResultsStore(db)
    try:
        for ref in ("last", "last~1", "last~2", "last:mobile", "last~1:mobile", "20251126", "20251128-03"):
            assert resolve_run(pg, ref) == resolve_run(lite, ref), ref
        with pytest.raises(RunRefError, match="ambiguous, 3 runs"):
            resolve_run(pg, "2025112")
    finally:
        pg.close()
        lite.close()
    a, b = qbench.load(db, "last~1"), qbench.load(pg_url, "last~1")
    assert a.dtypes.astype(str).to_dict() == b.dtypes.astype(str).to_dict()


def test_report_of_a_postgresql_run_by_reference_goes_to_the_reports_folder(pg_url, tmp_path):
    """`qbench report last --db postgresql://…` without -o: reports/<run>/report.html (a URL has no folder)."""
    build_nightly_db(pg_url)
    out = qbench_cli("report", "last", "--db", pg_url, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"reports/{NEW}/report.html" and (tmp_path / "reports" / NEW / "report.html").is_file()
