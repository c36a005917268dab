"""`qbench run --mlflow`: options checked before anything runs; a failed export is one line, the run kept.
(The export of a real run into a real sqlite MLflow store is in tests/pipeline/test_end_to_end.py.)"""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from qbench.cli.export import export_finished_run

WITHOUT_MLFLOW = ("import sys; sys.modules['mlflow'] = None  # as if not installed\n"
                  "from qbench.cli import main; raise SystemExit(main(sys.argv[1:]))")


def test_missing_mlflow_is_one_line_before_the_first_cell(tmp_path):
    db, reports = tmp_path / "q.db", tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-c", WITHOUT_MLFLOW, "run", "smoke", "--mlflow", "--db", str(db),
                           "--reports-dir", str(reports)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("qbench: --mlflow: mlflow is not installed")
    assert "pip install" in proc.stderr and "Traceback" not in proc.stderr
    assert not db.exists() and not reports.exists()  # nothing was run, nothing created


def test_a_failed_export_says_how_to_retry(tmp_path):
    pytest.importorskip("mlflow", reason="the `mlflow` extra (in `test`) is needed")
    from tests.report.synthetic import NEW, build_nightly_db

    build_nightly_db(tmp_path / "q.db")
    args = argparse.Namespace(mlflow=True, mlflow_tracking_uri="nosuch://tracking", mlflow_experiment=None)
    out = export_finished_run(args, tmp_path / "q.db", NEW, None)
    assert set(out) == {"error", "retry"} and "nosuch://tracking" in out["error"]
    assert out["error"].count("\n") == 0
    assert out["retry"] == f"qbench export mlflow {NEW} --tracking-uri nosuch://tracking"
