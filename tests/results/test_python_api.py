"""The Python API reads like the CLI: typed columns whatever the NULLs, the run's status, the `--json`
cell's speedup, thresholds written as on the command line, and a missing extra as one line."""

from __future__ import annotations

import os

import pandas as pd
import pytest

import qbench
import qbench.results
from qbench.errors import UsageError
from qbench.report.views import run_document
from qbench.results.store import ResultsStore
from tests.report.synthetic import BASE, NEW, add_run, build_nightly_db
from tests.helpers import qbench as qbench_cli

RUNNING = "20251128-030000-running"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "qbench.db"
    build_nightly_db(path)
    store = ResultsStore(path)
    add_run(store, RUNNING, started_at="2025-11-28T03:00:00+00:00", status="running")
    store.ensure_cell(RUNNING, "resnet18", "fp32", "fp32", "host")  # pending: every figure NULL
    store.close()
    return path


def test_columns_keep_their_type_whatever_the_nulls(db):
    df = qbench.load(db)
    for col in ("pte_bytes", "peak_rss_bytes", "threads", "samples_count", "trials", "trials_used", "cell_id"):
        assert df[col].dtype == "Int64", col  # a failed or pending cell's NULL does not make it float64
    for col in ("latency_median_ms", "accuracy_top1", "energy_per_inference_mj", "speedup_vs_fp32"):
        assert df[col].dtype == "float64", col  # also where every value is NULL (accuracy: never measured)
    assert df["cached"].dtype == "boolean"
    for col in ("run_started_at", "run_ended_at", "updated_at"):
        assert str(df[col].dtype) == "datetime64[ns, UTC]", col
    assert df["power_reason"].dtype == pd.StringDtype(na_value=float("nan"))
    assert qbench.load(db, "last")["latency_median_ms"].isna().all()  # the pending cell: NaN, not None/object


def test_each_cell_says_whether_its_run_is_complete(db):
    df = qbench.load(db)
    assert dict(df.groupby("run_id")["run_status"].first()) == {BASE: "complete", NEW: "complete",
                                                                 RUNNING: "running"}
    assert set(df[df["run_status"] == "complete"]["run_id"]) == {BASE, NEW}


def test_speedup_is_the_json_cells_figure(db):
    df = qbench.load(db, NEW).set_index(["model", "recipe", "device"])
    store = ResultsStore(db)
    try:
        cells = run_document(store, NEW)["cells"]
    finally:
        store.close()
    assert len(cells) == len(df)
    for c in cells:
        got = df.loc[(c["model"], c["recipe"], c["device"]), "speedup_vs_fp32"]
        assert (pd.isna(got) and c["speedup_vs_fp32"] is None) or got == pytest.approx(c["speedup_vs_fp32"])
    assert df["speedup_vs_fp32"].notna().sum() > 10


def test_thresholds_are_written_as_on_the_command_line(db):
    as_text = qbench.compare(BASE, NEW, db=db, threshold="5%", growth="5%")
    as_fraction = qbench.compare(BASE, NEW, db=db, threshold=0.05, growth=0.05)
    pd.testing.assert_frame_equal(as_text, as_fraction)
    trend = qbench.results.trend(db, "mobile", threshold="5%")
    assert len(trend) and str(trend["started_at"].dtype).startswith("datetime64")
    with pytest.raises(UsageError, match="threshold 'five'"):
        qbench.compare(BASE, NEW, db=db, threshold="five")


def test_parquet_without_pyarrow_is_one_line_with_the_install_command(db, tmp_path):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['pyarrow'] = None  # as if not installed\n")
    path = os.pathsep.join([str(hide), os.environ.get("PYTHONPATH", "")])
    out = qbench_cli("results", "--db", db, "--format", "parquet", "-o", tmp_path / "r.parquet",
                     env={"PYTHONPATH": path}, timeout=300)
    assert out.returncode == 2, out.stderr
    assert out.stderr == ("qbench: parquet needs pyarrow, which is not installed: pip install 'qbench[parquet]' "
                          "(or pip install pyarrow)\n")
    assert not (tmp_path / "r.parquet").exists()
