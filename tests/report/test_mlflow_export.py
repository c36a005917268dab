"""`qbench export mlflow` into a real local MLflow tracking store (sqlite backend in a temp dir), read
back through MLflow's own client."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qbench.errors import UsageError
from qbench.results.store import ResultsStore

from .synthetic import NEW, XSS_MODEL

mlflow = pytest.importorskip("mlflow", reason="the `mlflow` extra (in `test`) is needed")


@pytest.fixture(scope="module")
def exported(nightly_db, tmp_path_factory):
    from qbench.report.mlflow_export import export_run

    tmp = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    client.create_experiment("qbench/mobile", artifact_location=(tmp / "artifacts").as_uri())
    out = export_run(nightly_db, NEW, tracking_uri=uri)
    return uri, client, out


def test_parent_run_holds_versions_settings_and_the_report(exported):
    uri, client, out = exported
    parent = client.get_run(out["parent_run_id"])
    assert parent.info.run_name == NEW and parent.info.status == "FINISHED"
    p = parent.data.params
    assert p["torch_version"] == "2.14.1" and p["executorch_version"] == "1.5.1" and p["git_sha"] == "3f2c1e9a7b5d"
    assert p["settings.warmup"] == "10" and p["settings.cooldown.max_temp_c"] == "45"
    assert parent.data.tags["qbench.run_id"] == NEW
    assert [a.path for a in client.list_artifacts(out["parent_run_id"])] == ["report.html"]
    html = open(client.download_artifacts(out["parent_run_id"], "report.html"), encoding="utf-8").read()
    assert "qbench · mobile" in html


def test_one_nested_child_per_cell_with_params_and_metrics(exported, nightly_db):
    uri, client, out = exported
    store = ResultsStore(nightly_db, readonly=True)
    n_cells = len(store.cells(NEW))
    store.close()
    exp = client.get_experiment_by_name("qbench/mobile")
    children = client.search_runs([exp.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{out['parent_run_id']}'",
                                  max_results=1000)
    assert len(children) == n_cells == len(out["cells"])
    by = {(r.data.params["model"], r.data.params["recipe"], r.data.params["device"]): r for r in children}
    slow = by[("resnet18", "ptq_int8", "pixel8")]
    m = slow.data.metrics
    for key in ("latency_median_ms", "latency_p90_ms", "latency_cv", "pte_bytes", "peak_rss_bytes", "arena_bytes",
                "sqnr_db", "top1_agreement", "cosine_similarity", "energy_per_inference_mj", "load_ms"):
        assert key in m, key
    assert 27.0 / 2.6 * 1.05 < m["latency_median_ms"] < 27.0 / 2.6 * 1.2  # the synthetic +10% cell
    assert slow.data.params["device.soc"] == "Google Tensor G3"
    assert "energy_per_inference_mj" not in by[("resnet18", "ptq_int8", "host")].data.metrics  # not measured != 0
    failed = by[("resnet18", "dynamic_int8", "host")]
    assert failed.info.status == "FAILED" and "lowering failed" in failed.data.tags["qbench.error"]
    assert (XSS_MODEL, "fp32", "host") in by  # names pass through as data


def test_second_export_is_refused_then_replaced(exported, nightly_db):
    from qbench.report.mlflow_export import export_run

    uri, client, out = exported
    with pytest.raises(UsageError, match="already exported.*--replace"):
        export_run(nightly_db, NEW, tracking_uri=uri)
    again = export_run(nightly_db, NEW, tracking_uri=uri, replace=True)
    assert client.get_run(out["parent_run_id"]).info.lifecycle_stage == "deleted"
    assert client.get_run(again["parent_run_id"]).info.lifecycle_stage == "active"


def test_missing_mlflow_is_one_line_with_the_pip_command(nightly_db, tmp_path):
    code = ("import sys; sys.modules['mlflow'] = None; sys.modules['mlflow.tracking'] = None\n"
            "from qbench.cli import main; sys.exit(main(['export', 'mlflow', 'x', '--db', sys.argv[1]]))")
    res = subprocess.run([sys.executable, "-c", code, str(nightly_db)], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "pip install 'qbench[mlflow]'" in res.stderr


def test_pte_on_request_from_the_artifact_cache(exported, nightly_db, tmp_path, monkeypatch):
    import shutil

    from qbench.export.cache import Artifact, ArtifactCache
    from qbench.report.mlflow_export import export_run

    uri, client, _ = exported
    db = tmp_path / "qbench.db"
    shutil.copyfile(nightly_db, db)
    store = ResultsStore(db)
    cells = {(c["model"], c["recipe"], c["device"]): c["cell_id"] for c in store.cells(NEW)}
    store.update_cell(cells[("resnet18", "ptq_int8", "pixel8")], artifact_key="k-cached")
    store.update_cell(cells[("resnet18", "fp32", "pixel8")], artifact_key="k-gone")
    store.close()
    program = b"PTE" * 100  # a stand-in program: the exporter copies bytes, it does not load them
    cache = ArtifactCache(tmp_path / "cache")  # committed as prepare does (meta.json recorded and sealed)
    staging = cache.staging("k-cached")
    (staging / "model.pte").write_bytes(program)
    cache.commit(staging, Artifact(key="k-cached", dir=staging, program="model.pte", kind="pte",
                                   program_bytes=len(program)))
    monkeypatch.setenv("QBENCH_CACHE", str(tmp_path / "cache"))
    client.create_experiment("qbench/pte", artifact_location=(tmp_path / "artifacts").as_uri())  # not ./mlruns
    out = export_run(db, NEW, tracking_uri=uri, experiment="qbench/pte", with_pte=True)
    cached = out["cells"]["resnet18 · ptq_int8 · pixel8"]
    assert [a.path for a in client.list_artifacts(cached, "pte")] == ["pte/model.pte"]
    gone = client.get_run(out["cells"]["resnet18 · fp32 · pixel8"])
    assert "not in the local artifact cache" in gone.data.tags["qbench.pte"]
