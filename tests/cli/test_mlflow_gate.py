"""MLflow as a nightly job sees it: two real runs of a tiny suite (fp32 + int8), the second gated and
exported to a real sqlite tracking store. The gate's verdict, the speedup and the stability reach MLflow;
artifacts land beside the tracking database, MLflow's own lines stay out of the terminal without -v,
and a dead or hanging tracking server is one bounded line."""

from __future__ import annotations

import json
import shutil
import socket
import time

import pytest

from tests.helpers import REPO, qbench, tiny_suite, write_suite

mlflow = pytest.importorskip("mlflow", reason="the `mlflow` extra (in `test`) is needed")
pytestmark = pytest.mark.slow

SUITE = tiny_suite("mlgate", recipes=("{name: fp32, kind: fp32}", "{name: int8-ptq, kind: ptq}"),
                   top="calibration: {kind: random, samples: 4, seed: 0}\nnumerics: {samples: 2}\n")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlgate")
    work = root / "work"  # where qbench runs: MLflow must leave nothing here
    shutil.copytree(REPO / "suites" / "models", work / "models")
    suite = write_suite(work, SUITE)
    first = qbench("run", suite, "--json", cwd=work)
    assert first.returncode == 0, first.stderr[-3000:]
    tracking = root / "tracking" / "mlflow.db"
    tracking.parent.mkdir()
    uri = f"sqlite:///{tracking}"
    gated = qbench("run", suite, "--json", "--baseline", "last", "--fail-on-regression", "99%",
                   "--mlflow-tracking-uri", uri, cwd=work)
    return {"root": root, "work": work, "uri": uri, "tracking": tracking, "first": json.loads(first.stdout),
            "gated": gated}


def _children(client, parent):
    return client.search_runs([parent.info.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")


def test_the_gate_verdict_speedup_and_stability_reach_mlflow(runs):
    assert runs["gated"].returncode == 0, runs["gated"].stderr[-3000:]
    doc = json.loads(runs["gated"].stdout)
    client = mlflow.tracking.MlflowClient(tracking_uri=runs["uri"])
    parent = client.get_run(doc["mlflow"]["parent_run_id"])
    tags, metrics = parent.data.tags, parent.data.metrics
    assert (tags["qbench.gate"], tags["qbench.baseline"], tags["qbench.gate_threshold"]) == (
        "pass", runs["first"]["run_id"], "99%")
    assert metrics["gate_regressions"] == 0 and metrics["gate_matched"] == 2
    children = {r.data.params["recipe"]: r for r in _children(client, parent)}
    cells = {c["recipe"]: c for c in doc["cells"]}
    int8 = children["int8-ptq"]
    assert int8.data.metrics["speedup_vs_fp32"] == pytest.approx(cells["int8-ptq"]["speedup_vs_fp32"])
    assert int8.data.metrics["speedup_ci_low"] == pytest.approx(cells["int8-ptq"]["speedup_ci"][0])
    for recipe, child in children.items():
        assert child.data.tags["qbench.stability"] == cells[recipe]["stability"]["verdict"]
        assert child.data.metrics["vs_base_ratio"] == pytest.approx(cells[recipe]["vs_base"]["ratio"])
        assert child.data.tags["qbench.vs_base"] == cells[recipe]["vs_base"]["verdict"]
        assert child.data.tags["qbench.regression"] == "false"


def test_artifacts_go_beside_the_tracking_database_not_into_the_working_folder(runs):
    assert not (runs["work"] / "mlruns").exists() and not (runs["work"] / "mlflow.db").exists()
    pages = list((runs["tracking"].parent / "mlartifacts").rglob("report.html"))
    assert len(pages) == 1


def test_mlflows_own_log_lines_only_with_verbose(runs):
    assert "INFO mlflow" not in runs["gated"].stderr and "alembic" not in runs["gated"].stderr
    other = f"sqlite:///{runs['root'] / 'tracking' / 'other.db'}"
    quiet = qbench("export", "mlflow", "last~1", "--tracking-uri", other, cwd=runs["work"])
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and quiet.stdout.startswith(f"exported {runs['first']['run_id']} to experiment")
    loud = qbench("export", "mlflow", "last~1", "--replace", "-v", "--tracking-uri", other, cwd=runs["work"])
    assert loud.returncode == 0, loud.stderr
    assert " INFO " in loud.stderr  # MLflow's own lines (its database migrations), asked for


def test_a_dead_tracking_server_is_one_line_at_once(runs):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    start = time.monotonic()
    out = qbench("export", "mlflow", "last", "--tracking-uri", f"http://127.0.0.1:{port}", cwd=runs["work"],
                 timeout=120)
    assert time.monotonic() - start < 60  # a Python start and a refused connection; not MLflow's retries
    assert out.returncode == 2, out.stderr
    assert out.stderr == (f"qbench: MLflow tracking server http://127.0.0.1:{port} is not reachable "
                          "(connection refused); nothing was exported\n")


def test_a_hanging_tracking_server_is_bounded_and_one_line(runs):
    """A server that accepts connections and never answers: MLflow's wait is bounded (here the user's
    own MLFLOW_HTTP_REQUEST_TIMEOUT, which qbench keeps), then one line."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)  # the kernel completes handshakes; nobody ever reads or answers
        start = time.monotonic()
        out = qbench("export", "mlflow", "last", "--tracking-uri", f"http://127.0.0.1:{s.getsockname()[1]}",
                     cwd=runs["work"], env={"MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}, timeout=300)
        took = time.monotonic() - start
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("qbench: MLflow (http://127.0.0.1:"), out.stderr
    assert "did not answer within 2 s (2 attempts" in out.stderr
    assert "Retrying" not in out.stderr and "Traceback" not in out.stderr
    assert took < 120, took  # 2 attempts × 2 s plus backoff and Python's start, even on a loaded machine
