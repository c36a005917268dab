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

    `run_id` None means every run in the store; else run references (a full id, a unique prefix, `last`,
    `last~N`, `last:SUITE`: results/runref.py), and one that names no run raises RunRefError (the
    CLI's exit 2). Latencies are in milliseconds, sizes in bytes. Integer columns are nullable Int64,
    `cached` is boolean, timestamps are datetime64[ns, UTC]; `run_status` says whether the cell's run
    is complete (a running, failed or interrupted run's cells are here too); `speedup_vs_fp32` is the
    `--json` cell's (fp32 median / this median, same model, device and sweep point).
    """
    df = _query(
        db,
        "SELECT c.*, r.suite, r.status AS run_status, r.started_at AS run_started_at, "
        "r.ended_at AS run_ended_at, r.qbench_version, r.torch_version, "
        "r.executorch_version, r.torchao_version, r.git_sha FROM cells c JOIN runs r USING (run_id)",
        _resolved(db, run_id), " ORDER BY r.started_at, c.cell_id",
    )
    df["sweep"] = df["sweep"].fillna("")  # a store read in place from before sweeps has NULL there
    if parse_json:
        for col in JSON_COLUMNS:
            df[col] = df[col].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    df = typed(df, _declared_types("cells"))
    df["speedup_vs_fp32"] = speedup_vs_fp32(df)
    return df


def _resolved(db, run_id: str | list[str] | None) -> list[str] | None:
    """Run references as run ids (None: every run); one naming no run, or several, raises."""
    if run_id is None:
        return None
    from qbench.results.runref import resolve_runs
    from qbench.results.store import open_store

    store = open_store(_target(db), readonly=True)
    try:
        return resolve_runs(store, [run_id] if isinstance(run_id, str) else list(run_id))
    finally:
        store.close()


BOOL_COLUMNS = {"cached"}
TIME_COLUMNS = {"run_started_at", "run_ended_at", "updated_at"}


def _declared_types(table: str) -> dict[str, str]:
    """Column -> declared SQL type (INTEGER, REAL, TEXT, JSON) of `table`, from the store's schema."""
    import re

    from qbench.results.store import ADDED_COLUMNS, SCHEMA

    body = re.search(rf"CREATE TABLE IF NOT EXISTS {table} \((.*?)\n\);", SCHEMA, re.S).group(1)
    out = {}
    for part in re.sub(r"--[^\n]*", "", body).split(","):
        words = part.split()
        if len(words) >= 2 and words[0].isidentifier() and words[0].upper() not in ("UNIQUE", "PRIMARY"):
            out[words[0]] = words[1].upper()
    out.update({k: v.split()[0].upper() for k, v in ADDED_COLUMNS.get(table, {}).items()})
    return out


def typed(df, declared: dict[str, str]):
    """Dtypes that say what a column holds whatever its NULLs: INTEGER -> Int64, flags -> boolean,
    REAL -> float64 (also when empty), TEXT -> str, timestamps -> datetime64[ns, UTC]."""
    import pandas as pd

    for col in df.columns:
        kind = declared.get(col)
        if col in BOOL_COLUMNS:
            df[col] = df[col].astype("Int64").astype("boolean")
        elif col in TIME_COLUMNS:
            df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
        elif kind == "INTEGER":
            values = pd.to_numeric(df[col])
            whole = values.dropna().mod(1).eq(0).all()  # SQLite keeps what it is given: never truncate
            df[col] = values.astype("Int64") if whole else values.astype("float64")
        elif kind == "REAL":
            df[col] = pd.to_numeric(df[col]).astype("float64")
        elif kind == "TEXT":
            df[col] = df[col].astype("str")  # pandas' text dtype, also for a column that is all NULL
    return df


def speedup_vs_fp32(df):
    """fp32 median / the cell's median, per run, model, device and sweep point (the `--json` figure;
    NaN where there is no measured fp32 cell, and for fp32 cells themselves 1.0)."""
    key = ["run_id", "model", "device", "sweep"]
    fp32 = df[(df["recipe_kind"] == "fp32") & (df["status"] == "ok")]
    base = fp32.drop_duplicates(key).set_index(key)["latency_median_ms"]
    joined = df[key].join(base.rename("_fp32"), on=key)["_fp32"]
    return (joined / df["latency_median_ms"]).astype("float64")


def to_parquet(df, output: Path) -> None:
    """Parquet needs pyarrow (the `parquet` extra): without it one line with the install command."""
    import importlib.util

    from qbench.errors import UsageError

    if importlib.util.find_spec("pyarrow") is None:
        raise UsageError("parquet needs pyarrow, which is not installed: pip install 'qbench[parquet]' "
                         "(or pip install pyarrow)")
    df.to_parquet(output)


def load_samples(db: str | Path | None = None, run_id: str | list[str] | None = None, *, cells=None):
    """One row per measured iteration: run_id, model, recipe, device, sweep ('' unless the suite swept
    threads/affinity/batch) as categoricals, trial, iteration, latency_ms, thread_cpu_ms (the runner's
    calling thread; NaN where not recorded) and disturbed (bool: the trial's mark, other processes used
    more than the threshold, so the cell's figures leave it out). Rows are in cell, trial, iteration order.

    cells: only these cells, each 'model/recipe@device' (a sweep point after a space:
    'model/recipe@device threads=2'), or a (model, recipe, device[, sweep]) tuple; None = every cell.
    A run whose raw samples were pruned (`qbench prune --keep-samples-days`) has no rows here."""
    from qbench.results import samples
    from qbench.results.store import open_store

    ids = _resolved(db, run_id) or []  # references such as `last` or a prefix, as in load()
    where = f" WHERE c.run_id IN ({', '.join('?' * len(ids))})" if ids else ""
    store = open_store(_target(db), readonly=True)
    try:
        meta = store.frame("SELECT c.cell_id, c.run_id, c.model, c.recipe, c.device, COALESCE(c.sweep, '') AS sweep "
                           "FROM cells c" + where + " ORDER BY c.cell_id", ids)
        meta = meta[_chosen(meta, cells)]
        data = samples.read(store, meta["cell_id"].tolist(), thread_cpu=True)
        disturbed = {(r[0], r[1]) for r in store.db.execute("SELECT cell_id, trial FROM trials WHERE disturbed=1")}
    finally:
        store.close()
    return _sample_frame(meta, data, disturbed)


def _chosen(meta, cells):
    """A boolean mask of the cells `cells` names (see load_samples)."""
    if cells is None:
        return [True] * len(meta)
    wanted = set()
    for c in ([cells] if isinstance(cells, str) else cells):
        if isinstance(c, str):
            key, _, point = c.strip().partition(" ")
            model, _, rest = key.partition("/")
            recipe, _, device = rest.partition("@")
            c = (model, recipe, device, point.strip())
        wanted.add(tuple(c) if len(c) == 4 else (*c, ""))
    keys = zip(meta["model"], meta["recipe"], meta["device"], meta["sweep"])
    return [k in wanted for k in keys]


def _sample_frame(meta, data: dict, disturbed: set):
    """The columns of load_samples from {cell_id: {trial: TrialSamples}}: repeated names as categoricals
    (one code per row instead of a string), numbers as numpy arrays."""
    import numpy as np
    import pandas as pd

    parts = [(row, trial, s) for row in meta.itertuples(index=False)
             for trial, s in data.get(row.cell_id, {}).items()]
    sizes = np.array([s.latency_ns.size for _, _, s in parts], dtype=np.int64)
    which = np.repeat(np.arange(len(parts)), sizes)
    out = {}
    for col in ("run_id", "model", "recipe", "device", "sweep"):
        names = [getattr(row, col) for row, _, _ in parts]
        cats = sorted(set(meta[col]))
        index = {name: i for i, name in enumerate(cats)}
        codes = np.array([index[n] for n in names], dtype=np.int32)
        out[col] = pd.Categorical.from_codes(codes[which] if len(parts) else codes, categories=cats)
    out["trial"] = np.repeat(np.array([t for _, t, _ in parts], dtype=np.int64), sizes)
    out["iteration"] = np.concatenate([np.arange(n) for n in sizes]) if len(parts) else np.empty(0, np.int64)
    out["latency_ms"] = _concat([s.latency_ns for _, _, s in parts]) / 1e6
    out["thread_cpu_ms"] = _concat([s.thread_cpu_ns if s.thread_cpu_ns is not None else np.full(n, np.nan)
                                    for (_, _, s), n in zip(parts, sizes)]) / 1e6
    out["disturbed"] = np.repeat(np.array([(row.cell_id, t) in disturbed for row, t, _ in parts], dtype=bool), sizes)
    return pd.DataFrame(out)


def _concat(arrays):
    import numpy as np

    return np.concatenate([a.astype(np.float64) for a in arrays]) if arrays else np.empty(0)


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
