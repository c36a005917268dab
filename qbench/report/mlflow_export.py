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


def _client(tracking_uri: str | None):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UsageError(PIP_HINT) from None
    try:
        return MlflowClient(tracking_uri=tracking_uri)
    except Exception as exc:  # an unsupported URI scheme fails here, before any request
        raise _mlflow_error(tracking_uri, exc) from None


def _mlflow_error(tracking_uri: str | None, exc: Exception) -> UsageError:
    """MLflow's own errors (unreachable server, bad URI) in one line."""
    return UsageError(f"MLflow ({tracking_uri or 'default tracking URI'}): {type(exc).__name__}: "
                      f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")


def export_run(db, run_id: str, *, tracking_uri: str | None = None, experiment: str | None = None,
               with_pte: bool = False, replace: bool = False, report: Path | None = None) -> dict:
    """Export `run_id` from the store at `db`; returns {"experiment_id", "parent_run_id", "cells": {...}}.

    `report`: a page already written for this run (`qbench run` passes its index.html, which holds the
    comparison with the baseline), logged as report.html instead of writing the report again."""
    from qbench.report.data import check_runs, json_field, open_store

    client = _client(tracking_uri)
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its table-creation INFO lines are not ours to print
    store = open_store(db)
    try:
        check_runs(store, [run_id])
        run = dict(store.run(run_id))
        cells = [dict(c) for c in store.cells(run_id)]
    finally:
        store.close()
    name = experiment or f"qbench/{run['suite']}"
    try:
        exp = client.get_experiment_by_name(name)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(name)
        _previous(client, exp_id, run_id, replace)
        start = _ms(run["started_at"])
        parent = client.create_run(exp_id, start_time=start, run_name=run_id,
                                   tags={"qbench.run_id": run_id, "qbench.suite": run["suite"],
                                         "mlflow.source.git.commit": run["git_sha"] or "",
                                         "mlflow.note.content": f"qbench run {run_id} of suite {run['suite']}"})
        pid = parent.info.run_id
        params = {k: run[k] for k in VERSION_PARAMS if run.get(k) is not None}
        params.update(_flatten(json_field(run["settings"]) or {}, "settings."))
        params["devices"] = ",".join(json_field(run["devices"]) or [])
        params["cells"] = len(cells)
        _log(client, pid, params, _run_metrics(cells), start)
        with tempfile.TemporaryDirectory(prefix="qbench-mlflow-") as tmp:
            page = Path(tmp) / "report.html"
            if report is not None and Path(report).is_file():
                shutil.copyfile(report, page)
            else:
                from qbench.report.html import write_report

                write_report(db, [run_id], page)
            client.log_artifact(pid, str(page))
        out = {}
        for cell in cells:
            label = cell_label(cell["model"], cell["recipe"], cell["device"], cell.get("sweep"))
            child = client.create_run(exp_id, start_time=start, run_name=label,
                                      tags={"mlflow.parentRunId": pid, "qbench.run_id": run_id,
                                            "qbench.cell": label})
            cid = child.info.run_id
            cparams = {k: cell[k] for k in CELL_PARAMS if cell.get(k) not in (None, "")}
            cparams.update(_flatten(json_field(cell.get("device_info")) or {}, "device."))
            _log(client, cid, cparams, _cell_metrics(cell, json_field), start)
            if cell["status"] == "failed":
                client.set_tag(cid, "qbench.error", (cell.get("error") or "")[:MAX_PARAM])
            if with_pte and cell.get("artifact_key"):
                _log_pte(client, cid, cell["artifact_key"])
            client.set_terminated(cid, "FINISHED" if cell["status"] == "ok" else "FAILED",
                                  end_time=_ms(run["ended_at"]) if run["ended_at"] else None)
            out[label] = cid
        client.set_terminated(pid, "FINISHED" if run["status"] == "complete" else "FAILED",
                              end_time=_ms(run["ended_at"]) if run["ended_at"] else None)
    except QbenchError:
        raise
    except Exception as exc:  # MLflow's own errors (unreachable server, bad URI) in one line
        raise _mlflow_error(tracking_uri, exc) from None
    return {"experiment_id": exp_id, "experiment": name, "parent_run_id": pid, "cells": out}


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
