"""End to end with the real thing: PT2E quantization, XNNPACK lowering, ExecuTorch runtime, SQLite.

One small suite runs once per module (every recipe, plus a model the runtime cannot run); the tests
then read its JSON, its store, its cache and its page.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import REPO, halve_samples, qbench, qbench_popen, write_suite

pytestmark = pytest.mark.slow

SUITE = """
name: e2e
models:
  - name: tiny_mlp
    source: python:models/tiny.py:tiny_mlp
    inputs: [{shape: [1, 64], dtype: float32}]
  - name: sorter   # aten::sort has no ExecuTorch kernel here: this model must fail, not the suite
    source: python:models/broken.py:sorter
    inputs: [{shape: [1, 8], dtype: float32}]
recipes:
  - {name: fp32, kind: fp32}
  - {name: int8-ptq, kind: ptq, per_channel: true}
  - {name: int8-ptq-tensor, kind: ptq, per_channel: false}
  - {name: int8-dynamic, kind: dynamic}
  - {name: int8-qat, kind: qat, steps: 3, lr: 1.0e-4}
  - {name: eager, kind: eager}
calibration: {kind: random, samples: 8, seed: 0}
numerics: {samples: 4}
devices: [host]
benchmark: {warmup: 2, warmup_seconds: 0, iterations: 5, min_seconds: 0, trials: 2, max_trials: 2, threads: 1}
"""

BROKEN = '''
import torch


class Sorter(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)

    def forward(self, x):
        return torch.sort(self.lin(x), dim=-1).values


def sorter():
    return Sorter()
'''


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("e2e")
    shutil.copytree(REPO / "suites" / "models", root / "models")
    (root / "models" / "broken.py").write_text(BROKEN)
    suite = write_suite(root, SUITE)
    db = root / "q.db"
    proc = qbench("run", suite, "--db", db, "--reports-dir", root / "reports", "--json")
    return {"root": root, "suite": suite, "db": db, "proc": proc, "doc": json.loads(proc.stdout or "{}")}


def cell(doc, model, recipe):
    return next(c for c in doc["cells"] if c["model"] == model and c["recipe"] == recipe)


def test_exit_code_one_when_some_cells_failed(e2e):
    assert e2e["proc"].returncode == 1, e2e["proc"].stderr[-3000:]


def test_every_recipe_measured_with_the_documented_json_fields(e2e):
    doc = e2e["doc"]
    assert doc["run_id"] and len(doc["cells"]) == 12
    for recipe in ["fp32", "int8-ptq", "int8-ptq-tensor", "int8-dynamic", "int8-qat", "eager"]:
        c = cell(doc, "tiny_mlp", recipe)
        assert c["status"] == "ok", c
        assert c["device"] == "host" and c["model"] == "tiny_mlp" and c["recipe"] == recipe
        lat = c["latency_ms"]
        assert set(["min", "median", "mean", "std", "p90", "p99"]) <= set(lat)
        assert 0 < lat["min"] <= lat["median"] <= lat["p99"]
        # two trials measured (max_trials: 2); those used leave out any a busy machine really disturbed
        stab = c["stability"]
        assert stab["trials_measured"] == 2 and lat["trials"] == stab["trials_used"] >= 1 and lat["samples"] >= 5
        assert c["load_ms"] > 0 and c["first_inference_ms"] > 0 and c["peak_rss_bytes"] > 0
        assert c["pte_bytes"] > 0
        if recipe != "eager":
            assert 0 < c["delegated_ops"] <= c["total_ops"]


def test_quantized_cells_record_numerics_against_fp32(e2e):
    doc = e2e["doc"]
    for recipe in ["int8-ptq", "int8-ptq-tensor", "int8-dynamic", "int8-qat"]:
        c = cell(doc, "tiny_mlp", recipe)
        assert 10 < c["sqnr_db"] < 80, c  # int8: close to fp32, but not identical
        assert 0 <= c["top1_agreement"] <= 1 and c["max_abs_error"] > 0 and c["cosine_similarity"] > 0.9
    fp32 = cell(doc, "tiny_mlp", "fp32")
    assert fp32["sqnr_db"] > 80  # the fp32 program matches eager PyTorch (almost) exactly
    assert cell(doc, "tiny_mlp", "int8-ptq")["pte_bytes"] < 0.5 * fp32["pte_bytes"]


def test_a_model_the_runtime_cannot_run_fails_its_cells_with_the_cause(e2e):
    doc = e2e["doc"]
    failed = [c for c in doc["cells"] if c["model"] == "sorter" and c["recipe"] != "eager"]
    assert failed and all(c["status"] == "failed" for c in failed)
    assert all("sort" in c["error"] for c in failed), [c["error"] for c in failed]
    assert cell(doc, "sorter", "eager")["status"] == "ok"  # PyTorch itself can run it


def test_trials_are_interleaved_across_recipes(e2e):
    db = sqlite3.connect(e2e["db"])
    order = [row[0] for row in db.execute(
        "SELECT t.trial FROM trials t JOIN cells c USING (cell_id) WHERE c.run_id=? ORDER BY t.rowid",
        (e2e["doc"]["run_id"],))]
    assert order == sorted(order)  # every cell's trial 0 before any trial 1: A B A B, not A A B B
    assert order.count(0) == order.count(1) >= 6


def test_raw_samples_are_kept_and_summaries_come_from_them(e2e):
    import qbench.results

    samples = qbench.results.load_samples(e2e["db"], e2e["doc"]["run_id"])
    one = samples[(samples.model == "tiny_mlp") & (samples.recipe == "int8-ptq")]
    assert one.trial.nunique() == 2
    assert one.latency_ms.median() == pytest.approx(cell(e2e["doc"], "tiny_mlp", "int8-ptq")["latency_ms"]["median"])


def test_results_export_csv_json_parquet(e2e, tmp_path):
    db = e2e["db"]
    csv = qbench("results", "--db", db, "--format", "csv")
    assert csv.returncode == 0, csv.stderr
    from io import StringIO

    df = pd.read_csv(StringIO(csv.stdout))
    assert {"model", "recipe", "device", "status", "latency_median_ms", "sqnr_db", "torch_version"} <= set(df.columns)
    js = qbench("results", "--db", db, "--format", "json")
    assert len(json.loads(js.stdout)) == len(df)
    out = tmp_path / "r.parquet"
    assert qbench("results", "--db", db, "--format", "parquet", "-o", out).returncode == 0
    assert len(pd.read_parquet(out)) == len(df)
    bad = qbench("results", "--db", db, "--run", "nope")
    assert bad.returncode == 2 and "--run: no run 'nope'" in bad.stderr


def test_run_page_is_written(e2e):
    page = Path(e2e["doc"]["report"])
    html = page.read_text()
    assert page.is_file() and "tiny_mlp" in html and "int8-qat" in html


def test_rerun_of_an_unchanged_suite_hits_the_artifact_cache(e2e):
    from qbench.export.cache import default_cache_dir

    artifacts = default_cache_dir() / "artifacts"
    before = sorted(p.name for p in artifacts.iterdir())
    again = qbench("run", e2e["suite"], "--db", e2e["db"], "--reports-dir", e2e["root"] / "reports", "--json")
    doc = json.loads(again.stdout)
    ok = [c for c in doc["cells"] if c["status"] == "ok"]
    assert ok and all(c["cached_artifact"] for c in ok)
    assert sorted(p.name for p in artifacts.iterdir()) == before  # nothing exported again
    assert doc["run_id"] != e2e["doc"]["run_id"]


def test_interrupted_run_keeps_finished_trials_and_resume_completes_without_duplicates(e2e, tmp_path):
    import shutil

    root = tmp_path
    shutil.copytree(REPO / "suites" / "models", root / "models")
    # only tiny_mlp (the sorter model would fail anyway), three trials
    without_sorter = SUITE.split("  - name: sorter")[0] + "recipes:" + SUITE.split("recipes:")[1]
    # trials of a second each: tiny trials all landed between two polls once the harness got quicker
    suite = write_suite(root, without_sorter.replace("trials: 2", "trials: 3").replace("min_seconds: 0", "min_seconds: 1.0"))
    db = root / "q.db"
    proc = qbench_popen("run", suite, "--db", db, "--reports-dir", root / "reports")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # interrupt as soon as one trial is stored
        time.sleep(0.5)
        if db.exists():
            try:
                n = sqlite3.connect(db).execute("SELECT count(*) FROM trials").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if n >= 1:
                break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err
    con = sqlite3.connect(db)
    run_id, status = con.execute("SELECT run_id, status FROM runs").fetchone()
    assert status == "interrupted"
    kept = con.execute("SELECT count(*) FROM trials").fetchone()[0]
    assert kept >= 1

    resumed = qbench("run", suite, "--db", db, "--reports-dir", root / "reports", "--resume", run_id, "--json")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    doc = json.loads(resumed.stdout)
    assert doc["run_id"] == run_id and all(c["status"] == "ok" for c in doc["cells"])
    n_cells = len(doc["cells"])
    assert con.execute("SELECT count(*) FROM trials").fetchone()[0] == n_cells * 3
    assert con.execute("SELECT count(*) FROM cells").fetchone()[0] == n_cells
    assert con.execute("SELECT status FROM runs").fetchone()[0] == "complete"


def test_nightly_gate_exits_3_on_a_regression_and_writes_junit_and_markdown(e2e, tmp_path):
    """A baseline whose fp32 samples are twice as fast as today's: that cell is 'slower'. The run's page
    opens with it, and --mlflow-tracking-uri exports the run (page included) to a real sqlite MLflow store."""
    import re
    import shutil
    import xml.etree.ElementTree as ET

    mlflow = pytest.importorskip("mlflow", reason="the `mlflow` extra (in `test`) is needed")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    client.create_experiment("qbench/e2e", artifact_location=(tmp_path / "mlartifacts").as_uri())  # not ./mlruns

    db = tmp_path / "nightly.db"
    shutil.copy(e2e["db"], db)
    base = e2e["doc"]["run_id"]
    halve_samples(db, base, "fp32", model="tiny_mlp")
    out = tmp_path / "reports"
    proc = qbench("run", e2e["suite"], "--db", db, "--reports-dir", out, "--baseline", base,
                  "--fail-on-regression", "5%", "--json", "--mlflow-tracking-uri", uri)
    assert proc.returncode == 3, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert "tiny_mlp/fp32@host" in doc["baseline"]["regressions"]
    # the comparison reached the run's own page, the injected regression first
    page = Path(doc["report"]).read_text(encoding="utf-8")
    assert f"What changed since <code>{base}</code>" in page
    first = re.search(r'id="answers-regressions">\s*<li class="regression"><a href="#(cell-\d+)"><b class="cellname">'
                      r'([^<]*)</b>', page)
    assert first and first.group(2) == "tiny_mlp/fp32@host", page[page.find('id="answers"'):][:1500]
    assert f'id="{first.group(1)}" data-run=' in page
    # ... and the run, with that page, reached MLflow
    parent = client.get_run(doc["mlflow"]["parent_run_id"])
    assert parent.data.tags["qbench.run_id"] == doc["run_id"]
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == len(doc["cells"])
    exported = client.download_artifacts(parent.info.run_id, "report.html", str(tmp_path))
    assert f"What changed since <code>{base}</code>" in Path(exported).read_text(encoding="utf-8")
    junit = ET.parse(doc["baseline"]["junit"]).getroot()
    cases = junit.findall(".//testcase")
    assert len(cases) == len(doc["cells"])
    assert any(c.find("failure") is not None and "tiny_mlp" in c.get("name", "") + c.get("classname", "") for c in cases)
    assert "tiny\\_mlp" in Path(doc["baseline"]["summary"]).read_text() or "tiny_mlp" in Path(doc["baseline"]["summary"]).read_text()
    unknown = qbench("run", e2e["suite"], "--db", db, "--reports-dir", out, "--baseline", "nope", "--check")
    assert unknown.returncode == 0  # --check validates the suite only


def test_the_runtime_log_stays_out_of_the_terminal(e2e):
    assert "cpuinfo_utils" not in e2e["proc"].stderr  # ExecuTorch's own lines go to the qbench.runtime logger
    # nor torch's own log format (`W1129 23:58:38.942000 4759 path:630] ...`): a cold run imports torchao
    assert not re.search(r"^[DIWE]\d{4} \d\d:\d\d:\d\d", e2e["proc"].stderr, re.M), e2e["proc"].stderr[-2000:]
