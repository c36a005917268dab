"""Tidy pandas views of the results store (one row per cell, or one row per sample)."""

from __future__ import annotations

import json
from pathlib import Path

RUN_COLUMNS = ["suite", "qbench_version", "torch_version", "executorch_version", "git_sha"]
JSON_COLUMNS = ["delegation", "device_info", "extra"]


def default_db() -> str | Path:
    """QBENCH_DB (a file path or a postgresql:// URL) or reports/qbench.db."""
    import os

    from qbench.results.backends import db_target

    return db_target(os.environ["QBENCH_DB"], "QBENCH_DB") if os.environ.get("QBENCH_DB") else Path("reports") / "qbench.db"


def _target(db: str | Path | None) -> str | Path:
    """A store given as a string may be a postgresql:// URL (Path would fold its `//`)."""
    from qbench.results.backends import db_target

    db = db or default_db()
    return db_target(db) if isinstance(db, str) else db


def _query(db, select: str, run_id, order: str):
    """Run `select`, restricted to the given run(s) when any, on a store opened for this read only."""
    from qbench.results.store import open_store

    ids = [run_id] if isinstance(run_id, str) else list(run_id or [])
    where = f" WHERE c.run_id IN ({', '.join('?' * len(ids))})" if ids else ""
    store = open_store(_target(db), readonly=True)
    try:
        return store.frame(select + where + order, ids)
    finally:
        store.close()


def load(db: str | Path | None = None, run_id: str | list[str] | None = None, *, parse_json: bool = True):
    """One row per cell (model × recipe × device × run) with every summary figure, as a DataFrame.

    `run_id` None means every run in the store. Latencies are in milliseconds, sizes in bytes.
    """
    df = _query(
        db,
        "SELECT c.*, r.suite, r.started_at AS run_started_at, r.qbench_version, r.torch_version, "
        "r.executorch_version, r.torchao_version, r.git_sha FROM cells c JOIN runs r USING (run_id)",
        run_id, " ORDER BY r.started_at, c.cell_id",
    )
    df["sweep"] = df["sweep"].fillna("")  # a store read in place from before sweeps has NULL there
    if parse_json:
        for col in JSON_COLUMNS:
            df[col] = df[col].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    return df


def load_samples(db: str | Path | None = None, run_id: str | list[str] | None = None):
    """One row per measured iteration: run_id, model, recipe, device, sweep ('' unless the suite swept
    threads/affinity/batch), trial, iteration, latency_ms,
    thread_cpu_ms (the runner's calling thread; NaN where not recorded) and disturbed (the trial's mark:
    other processes used more than the threshold, so the cell's figures leave it out)."""
    return _query(
        db,
        "SELECT c.run_id, c.model, c.recipe, c.device, COALESCE(c.sweep, '') AS sweep, s.trial, s.iteration, "
        "CAST(s.latency_ns AS DOUBLE PRECISION) / 1e6 AS latency_ms, "
        "CAST(s.thread_cpu_ns AS DOUBLE PRECISION) / 1e6 AS thread_cpu_ms, COALESCE(t.disturbed, 0) AS disturbed "
        "FROM samples s JOIN cells c USING (cell_id) LEFT JOIN trials t USING (cell_id, trial)",
        run_id, " ORDER BY c.cell_id, s.trial, s.iteration",
    )


def load_layers(db: str | Path | None = None, run_id: str | list[str] | None = None):
    """One row per quantized layer from `qbench sensitivity`: run_id, model, recipe, position (graph
    order), module, op, sqnr_db, cosine, max_abs_error, metric_if_fp32 (end-to-end metric with only this
    layer fp32), metric_if_only_quantized (with only this layer quantized), method (which ranked them:
    fp32-one | quantize-one | both), sensitivity_rank, kept_fp32."""
    from qbench.results.store import ResultsStore

    ids = [run_id] if isinstance(run_id, str) else list(run_id or [])
    where = f" WHERE l.run_id IN ({', '.join('?' * len(ids))})" if ids else ""
    store = ResultsStore(_target(db))
    try:
        df = store.frame("SELECT l.*, r.suite, r.started_at AS run_started_at FROM layer_sensitivity l "
                         "JOIN runs r USING (run_id)" + where + " ORDER BY r.started_at, l.model, l.recipe, "
                         "l.position", ids)
    finally:
        store.close()
    df["kept_fp32"] = df["kept_fp32"].astype(bool)
    return df
