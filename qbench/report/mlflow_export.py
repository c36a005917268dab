"""Export one stored qbench run to MLflow: `qbench export mlflow RUN_ID [--tracking-uri ...]`.

Layout: one MLflow *parent* run per qbench run, one *nested child* run per cell. Why: the MLflow
runs table shows a nightly as one row that expands into its cells, and the parent is the natural
home of what the whole run shares (versions, git sha, suite settings, the HTML report), while the
children carry model / recipe / device as params and the cell's figures as metrics, so the UI's
compare view, parallel-coordinates and chart views can set recipes and devices side by side (and
the same cell of successive nightlies can be found by searching params). One flat run per cell
would lose the grouping by night and repeat the run-level params 64 times.

The experiment is named `qbench/<suite>` unless --experiment says otherwise. Every MLflow run is
tagged `qbench.run_id`, so an export is found again; exporting the same run twice is refused
unless `replace=True`, which deletes the earlier export first.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from qbench.errors import QbenchError, UsageError
from qbench.text import cell_label

PIP_HINT = "mlflow is not installed: pip install 'qbench[mlflow]' (or pip install mlflow)"
# cell columns that are not measurements (ids, text, JSON); every other numeric column is a metric
NOT_METRICS = {"cell_id", "run_id", "cached", "threads", "batch"}
CELL_PARAMS = ("model", "recipe", "recipe_kind", "device", "runner", "threads", "affinity", "status", "stage",
               "artifact_key", "sweep", "batch")  # sweep: the point of a threads/batch/affinity sweep ('' none)
VERSION_PARAMS = ("qbench_version", "torch_version", "executorch_version", "torchao_version", "git_sha", "suite")
MAX_PARAM = 6000  # MLflow's limit on a param value's length


# A dead or hanging tracking server costs at most ~(1 + retries) × timeout, not MLflow's defaults (7 retries
# with exponential backoff, 120 s a request: minutes). The user's own settings win.
HTTP_BOUNDS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}
CONNECT_TIMEOUT_S = 5.0
MLFLOW_LOGGERS = ("mlflow", "alembic", "urllib3")  # MLflow's own lines: table creation, migrations, retries
ARTIFACTS_DIR = "mlartifacts"  # beside a sqlite tracking database, as `mlflow server` names it


def _require_mlflow() -> None:
    import importlib.util

    try:
        found = importlib.util.find_spec("mlflow") is not None
    except ValueError:  # in sys.modules as None: blocked, as good as absent
        found = False
    if not found:
        raise UsageError(PIP_HINT)


def _client(tracking_uri: str | None, verbose: bool = False):
    """(MlflowClient, the tracking URI it uses): MLflow's log lines only when verbose, its HTTP waits
    bounded, and a server that does not accept connections one line before any request."""
    import os

    for key, value in HTTP_BOUNDS.items():
        os.environ.setdefault(key, value)
    try:
        import mlflow
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UsageError(PIP_HINT) from None
    for name in MLFLOW_LOGGERS:  # set after the import: importing mlflow configures its logger
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)
    uri = tracking_uri or mlflow.get_tracking_uri()
    _check_reachable(uri)
    try:
        return MlflowClient(tracking_uri=uri), uri
    except Exception as exc:  # an unsupported URI scheme fails here, before any request
        raise _mlflow_error(tracking_uri, exc) from None


def _check_reachable(uri: str) -> None:
    """An http(s) tracking server must accept a connection within CONNECT_TIMEOUT_S."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        why = (f"no answer within {CONNECT_TIMEOUT_S:.0f} s" if isinstance(exc, TimeoutError)
               else (exc.strerror or type(exc).__name__).lower())
        raise UsageError(f"MLflow tracking server {parts.scheme}://{parts.hostname}:{port} is not reachable "
                         f"({why}); nothing was exported") from None


def artifact_location(uri: str) -> str | None:
    """Where a new experiment's artifacts go: beside a sqlite tracking database (MLflow's default is
    ./mlruns in whatever folder qbench runs from); None = the tracking server's own choice."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri[len("sqlite:///"):])  # sqlite:////abs/path keeps its leading slash
    return (database.resolve().parent / ARTIFACTS_DIR).as_uri()


def _mlflow_error(tracking_uri: str | None, exc: Exception) -> UsageError:
    """MLflow's own errors (unreachable server, bad URI) in one line."""
    import os

    if "Read timed out" in str(exc):  # a server that accepts connections but does not answer
        wait, retries = (os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"))
        return UsageError(f"MLflow ({tracking_uri}): the tracking server did not answer within {wait} s "
                          f"({1 + int(retries or 0)} attempts; MLFLOW_HTTP_REQUEST_TIMEOUT waits longer); "
                          "the export did not finish: run it again (with --replace if part of it arrived)")
    return UsageError(f"MLflow ({tracking_uri or 'default tracking URI'}): {type(exc).__name__}: "
                      f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")


def _read_run(db, run_id: str) -> tuple[str, dict, list[dict], list[dict]]:
    """(run id, run row, cell rows, the cells' `--json` views: speedup and stability as qbench prints them)."""
    from qbench.report.data import check_runs, open_for_reading
    from qbench.report.views import cell_views

    store = open_for_reading(db)
    try:  # the run first: a reference that names no run must not create a tracking store
        [run_id] = check_runs(store, [run_id])
        return run_id, dict(store.run(run_id)), [dict(c) for c in store.cells(run_id)], cell_views(store, run_id)
    finally:
        store.close()


def export_run(db, run_id: str, *, tracking_uri: str | None = None, experiment: str | None = None,
               with_pte: bool = False, replace: bool = False, report: Path | None = None,
               gate: dict | None = None, verbose: bool = False) -> dict:
    """Export `run_id` from the store at `db`; returns {"run_id", "experiment_id", "parent_run_id", "cells": {...}}.

    `report`: a page already written for this run (`qbench run` passes its index.html, which holds the
    comparison with the baseline), logged as report.html instead of writing the report again.
    `gate`: the nightly gate's verdict (`qbench run --baseline`: the `--json` document's `baseline`, with
    `vs_base` per cell key), logged as tags and metrics. `verbose`: let MLflow's own log lines through."""
    _require_mlflow()
    run_id, run, cells, views = _read_run(db, run_id)
    client, uri = _client(tracking_uri, verbose)
    name = experiment or f"qbench/{run['suite']}"
    try:
        exp = client.get_experiment_by_name(name)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(
            name, artifact_location=artifact_location(uri))
        _previous(client, exp_id, run_id, replace)
        pid = _export_parent(client, exp_id, db, run_id, run, cells, report, gate)
        out = {}
        for cell, view in zip(cells, views):
            label, cid = _export_cell(client, exp_id, pid, run_id, run, cell, view, gate, with_pte)
            out[label] = cid
        client.set_terminated(pid, "FINISHED" if run["status"] == "complete" else "FAILED",
                              end_time=_ms(run["ended_at"]) if run["ended_at"] else None)
    except QbenchError:
        raise
    except Exception as exc:  # MLflow's own errors (unreachable server, bad URI) in one line
        raise _mlflow_error(tracking_uri, exc) from None
    return {"run_id": run_id, "experiment_id": exp_id, "experiment": name, "parent_run_id": pid, "cells": out}


def _export_parent(client, exp_id: str, db, run_id: str, run: dict, cells: list[dict], report, gate) -> str:
    """The parent MLflow run: versions and settings as params, counts (and the gate) as metrics, the page."""
    from qbench.report.data import json_field

    start = _ms(run["started_at"])
    parent = client.create_run(exp_id, start_time=start, run_name=run_id,
                               tags={"qbench.run_id": run_id, "qbench.suite": run["suite"],
                                     "mlflow.source.git.commit": run["git_sha"] or "",
                                     "mlflow.note.content": f"qbench run {run_id} of suite {run['suite']}",
                                     **_gate_tags(gate)})
    pid = parent.info.run_id
    params = {k: run[k] for k in VERSION_PARAMS if run.get(k) is not None}
    params.update(_flatten(json_field(run["settings"]) or {}, "settings."))
    params["devices"] = ",".join(json_field(run["devices"]) or [])
    params["cells"] = len(cells)
    _log(client, pid, params, {**_run_metrics(cells), **_gate_metrics(gate)}, start)
    with tempfile.TemporaryDirectory(prefix="qbench-mlflow-") as tmp:
        page = Path(tmp) / "report.html"
        if report is not None and Path(report).is_file():
            shutil.copyfile(report, page)
        else:
            from qbench.report.html import write_report

            write_report(db, [run_id], page)
        client.log_artifact(pid, str(page))
    return pid


def _export_cell(client, exp_id: str, pid: str, run_id: str, run: dict, cell: dict, view: dict, gate,
                 with_pte: bool) -> tuple[str, str]:
    """One nested child run: the cell's params, its figures (speedup, stability, vs base too) as metrics."""
    from qbench.report.data import json_field

    start = _ms(run["started_at"])
    label = cell_label(cell["model"], cell["recipe"], cell["device"], cell.get("sweep"))
    vs_base = (gate or {}).get("vs_base", {}).get((cell["model"], cell["recipe"], cell["device"], cell.get("sweep") or ""))
    child = client.create_run(exp_id, start_time=start, run_name=label,
                              tags={"mlflow.parentRunId": pid, "qbench.run_id": run_id, "qbench.cell": label,
                                    **_view_tags(view, vs_base)})
    cid = child.info.run_id
    cparams = {k: cell[k] for k in CELL_PARAMS if cell.get(k) not in (None, "")}
    cparams.update(_flatten(json_field(cell.get("device_info")) or {}, "device."))
    _log(client, cid, cparams, {**_cell_metrics(cell, json_field), **_view_metrics(view, vs_base)}, start)
    if cell["status"] == "failed":
        client.set_tag(cid, "qbench.error", (cell.get("error") or "")[:MAX_PARAM])
    if with_pte and cell.get("artifact_key"):
        _log_pte(client, cid, cell["artifact_key"])
    client.set_terminated(cid, "FINISHED" if cell["status"] == "ok" else "FAILED",
                          end_time=_ms(run["ended_at"]) if run["ended_at"] else None)
    return label, cid


def _finite(values: dict) -> dict:
    return {k: float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _view_metrics(view: dict, vs_base: dict | None) -> dict:
    """The `--json` cell's speedup over fp32 with its CI, and the latency ratio against the baseline."""
    ci = view.get("speedup_ci") or [None, None]
    base_ci = (vs_base or {}).get("ci") or [None, None]
    return _finite({"speedup_vs_fp32": view.get("speedup_vs_fp32"), "speedup_ci_low": ci[0], "speedup_ci_high": ci[1],
                    "vs_base_ratio": (vs_base or {}).get("ratio"), "vs_base_ci_low": base_ci[0],
                    "vs_base_ci_high": base_ci[1]})


def _view_tags(view: dict, vs_base: dict | None) -> dict:
    """Words as tags: the stability verdict and why, and the cell's verdict against the baseline."""
    stability = view.get("stability") or {}
    tags = {"qbench.stability": stability.get("verdict"), "qbench.stability_reason": stability.get("reason")}
    if vs_base is not None:
        tags.update({"qbench.vs_base": vs_base["verdict"], "qbench.regression": str(bool(vs_base["regression"])).lower()})
    return {k: str(v)[:MAX_PARAM] for k, v in tags.items() if v is not None}


def _gate_tags(gate: dict | None) -> dict:
    if not gate:
        return {}
    return {"qbench.gate": gate["verdict"], "qbench.baseline": gate.get("run_id") or "",
            "qbench.gate_threshold": f"{gate['threshold']:.0%}"}


def _gate_metrics(gate: dict | None) -> dict:
    counts = (gate or {}).get("counts") or {}
    return _finite({f"gate_{k}": v for k, v in counts.items()})


def _previous(client, exp_id: str, run_id: str, replace: bool) -> None:
    found = client.search_runs([exp_id], filter_string=f"tags.`qbench.run_id` = '{run_id}'", max_results=5000)
    if found and not replace:
        parent = next((r for r in found if "mlflow.parentRunId" not in r.data.tags), found[0])
        raise UsageError(f"run {run_id} is already exported (MLflow run {parent.info.run_id}); pass --replace "
                         "to export it again")
    for r in found:
        client.delete_run(r.info.run_id)


def _log(client, mlflow_run_id: str, params: dict, metrics: dict, timestamp: int) -> None:
    from mlflow.entities import Metric, Param

    ps = [Param(k, str(v)[:MAX_PARAM]) for k, v in params.items() if v is not None]
    ms = [Metric(k, float(v), timestamp, 0) for k, v in metrics.items()]
    for i in range(0, max(len(ps), len(ms)), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(mlflow_run_id, metrics=ms[i:i + 100], params=ps[i:i + 100])


def _cell_metrics(cell: dict, json_field) -> dict:
    from qbench.report.data import energy

    out = {}
    for k, v in cell.items():
        if k in NOT_METRICS or isinstance(v, (str, bytes)) or v is None or isinstance(v, bool):
            continue
        if isinstance(v, (int, float)) and math.isfinite(v):
            out[k] = v
    e = energy(json_field(cell.get("extra")))
    if e and e["mj"] is not None:  # not measured stays absent, never 0
        out["energy_per_inference_mj"] = e["mj"]
        if e["u_mj"] is not None:
            out["energy_uncertainty_mj"] = e["u_mj"]
    return out


def _run_metrics(cells: list[dict]) -> dict:
    return {"cells_ok": sum(c["status"] == "ok" for c in cells),
            "cells_failed": sum(c["status"] == "failed" for c in cells)}


def _log_pte(client, mlflow_run_id: str, key: str) -> None:
    from qbench.export.cache import ArtifactCache

    art = ArtifactCache().lookup(key)
    if art is None or not art.path.exists():
        client.set_tag(mlflow_run_id, "qbench.pte", "not in the local artifact cache (rebuild with qbench run)")
        return
    client.log_artifact(mlflow_run_id, str(art.path), artifact_path="pte")


def _flatten(d: dict, prefix: str) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        elif v is not None:
            out[f"{prefix}{k}"] = v if not isinstance(v, list) else ",".join(map(str, v))
    return out


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)
