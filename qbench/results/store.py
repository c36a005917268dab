"""The results store: SQLite (one file) or PostgreSQL (shared by a farm), committed after every trial
so a crash loses nothing. backends.py holds the little that differs between the two.

Tables: runs (one per `qbench run`), cells (model × recipe × device, status + summary figures),
trials (one fresh runner process each), samples (raw per-iteration latencies), and ops (per-op
profiles). Summary figures are always recomputed from the raw samples.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from qbench.results import backends

SCHEMA_VERSION = 2

# Columns added to `cells` after schema 1: added on open to a store that lacks them (older files keep
# working; their cells just have NULL there).
ADDED_CELL_COLUMNS = {
    "accuracy_top1": "REAL",  # fraction of the eval split, 0..1
    "accuracy_top5": "REAL",
    "accuracy_metric": "REAL",  # the model's `metric:` on the eval split
    # power (separate trial; NULL = not measured, and power_reason says why)
    "power_source": "TEXT",
    "power_reason": "TEXT",
    "avg_power_w": "REAL",
    "idle_power_w": "REAL",
    "energy_per_inference_mj": "REAL",  # idle power subtracted
    "energy_uncertainty_mj": "REAL",  # 1 sigma, per inference
    "power_sample_count": "INTEGER",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    suite TEXT NOT NULL,
    suite_path TEXT,
    suite_yaml TEXT,
    status TEXT NOT NULL,              -- running | complete | interrupted
    started_at TEXT NOT NULL,
    ended_at TEXT,
    qbench_version TEXT, torch_version TEXT, executorch_version TEXT, torchao_version TEXT,
    git_sha TEXT,
    host JSON,
    settings JSON,
    devices JSON
);
CREATE TABLE IF NOT EXISTS cells (
    cell_id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    model TEXT NOT NULL, recipe TEXT NOT NULL, recipe_kind TEXT NOT NULL, device TEXT NOT NULL,
    status TEXT NOT NULL,              -- pending | ok | failed
    stage TEXT, error TEXT,
    artifact_key TEXT, cached INTEGER,
    runner TEXT, threads INTEGER,
    pte_bytes INTEGER, arena_bytes INTEGER,
    delegated_ops INTEGER, total_ops INTEGER, delegation JSON,
    sqnr_db REAL, max_abs_error REAL, cosine_similarity REAL, top1_agreement REAL,
    latency_min_ms REAL, latency_median_ms REAL, latency_mean_ms REAL, latency_std_ms REAL,
    latency_p90_ms REAL, latency_p99_ms REAL, latency_cv REAL, samples_count INTEGER, trials INTEGER,
    load_ms REAL, method_init_ms REAL, first_inference_ms REAL, peak_rss_bytes INTEGER,
    quantize_s REAL, export_s REAL,
    accuracy_top1 REAL, accuracy_top5 REAL, accuracy_metric REAL,
    device_info JSON, extra JSON,
    updated_at TEXT,
    UNIQUE (run_id, model, recipe, device)
);
CREATE TABLE IF NOT EXISTS trials (
    cell_id INTEGER NOT NULL REFERENCES cells(cell_id),
    trial INTEGER NOT NULL,
    runner TEXT, threads INTEGER, affinity JSON,
    load_ms REAL, method_init_ms REAL, first_inference_ms REAL, peak_rss_bytes INTEGER,
    warmup_iterations INTEGER, iterations INTEGER, wall_s REAL,
    thermal_before JSON, thermal_after JSON, cooldown_wait_s REAL,
    finished_at TEXT,
    PRIMARY KEY (cell_id, trial)
);
CREATE TABLE IF NOT EXISTS samples (
    cell_id INTEGER NOT NULL,
    trial INTEGER NOT NULL,
    iteration INTEGER NOT NULL,
    latency_ns INTEGER NOT NULL,
    PRIMARY KEY (cell_id, trial, iteration)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS power_samples (
    cell_id INTEGER NOT NULL,
    t_s REAL NOT NULL,                 -- device clock, seconds
    watts REAL NOT NULL,
    rails JSON                         -- per-rail watts where the source has rails
);
CREATE TABLE IF NOT EXISTS ops (
    cell_id INTEGER NOT NULL,
    name TEXT NOT NULL, kind TEXT, delegate TEXT,
    count INTEGER, total_ms REAL, median_ms REAL, share REAL
);
"""

# cells columns a caller may set through update_cell (guards against SQL built from arbitrary keys)
CELL_COLUMNS = {
    "status", "stage", "error", "artifact_key", "cached", "runner", "threads", "pte_bytes", "arena_bytes",
    "delegated_ops", "total_ops", "delegation", "sqnr_db", "max_abs_error", "cosine_similarity",
    "top1_agreement", "latency_min_ms", "latency_median_ms", "latency_mean_ms", "latency_std_ms",
    "latency_p90_ms", "latency_p99_ms", "latency_cv", "samples_count", "trials", "load_ms",
    "method_init_ms", "first_inference_ms", "peak_rss_bytes", "quantize_s", "export_s", "device_info", "extra",
    *ADDED_CELL_COLUMNS,
}
_JSON_COLUMNS = {"host", "settings", "devices", "delegation", "device_info", "extra", "affinity",
                 "thermal_before", "thermal_after"}


def _encode(key: str, value: Any) -> Any:
    return json.dumps(value, sort_keys=True, default=str) if key in _JSON_COLUMNS and value is not None else value


class ResultsStore:
    def __init__(self, path: str | Path):
        self.target = backends.db_target(path) if isinstance(path, str) else path  # what reopens it
        self.path = backends.redact(self.target) if backends.is_url(self.target) else Path(self.target)  # what messages show
        self._lock = threading.RLock()  # one worker thread per device writes here
        self.backend = backends.connect(self.target, self._lock)
        self.db = self.backend.conn
        version = self.backend.schema_version()
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} was written by a newer qbench (schema {version})")
        self.backend.create_schema(SCHEMA)
        self._add_missing_columns()
        self.backend.set_schema_version(SCHEMA_VERSION)

    def _add_missing_columns(self) -> None:
        """Migration: CREATE TABLE IF NOT EXISTS leaves an older `cells` as it was; add what it lacks."""
        have = self.backend.columns("cells")
        for name, sql_type in ADDED_CELL_COLUMNS.items():
            if name not in have:
                self.backend.add_column("cells", name, sql_type)

    def close(self) -> None:
        self.backend.close()

    def frame(self, sql: str, params: Iterable[Any] = ()):
        """A query's rows as a pandas DataFrame (what pd.read_sql_query gives, on either backend)."""
        import pandas as pd

        cur = self.db.execute(sql, tuple(params))
        names = [d[0] for d in cur.description]
        return pd.DataFrame.from_records([tuple(r) for r in cur.fetchall()], columns=names, coerce_float=True)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._lock:
            self.db.execute(self.backend.begin)
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # runs ---------------------------------------------------------------------------------------
    def create_run(self, **fields: Any) -> None:
        keys = list(fields)
        with self.transaction() as db:
            db.execute(
                f"INSERT INTO runs ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
                [_encode(k, fields[k]) for k in keys],
            )

    def finish_run(self, run_id: str, status: str, ended_at: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status=?, ended_at=? WHERE run_id=?", (status, ended_at, run_id))

    def reopen_run(self, run_id: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status='running', ended_at=NULL WHERE run_id=?", (run_id,))

    def run(self, run_id: str) -> Any | None:
        return self.db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()

    def runs(self) -> list[Any]:
        return self.db.execute("SELECT * FROM runs ORDER BY started_at").fetchall()

    def latest_run_id(self, suite: str | None = None, before: str | None = None) -> str | None:
        """The newest complete run (of `suite`, older than `before`): a nightly job's baseline."""
        order = self.backend.run_order
        sql, args = "SELECT run_id FROM runs WHERE status='complete'", []
        if suite:
            sql, args = sql + " AND suite=?", args + [suite]
        if before:
            sql, args = sql + f" AND {order} < (SELECT {order} FROM runs WHERE run_id=?)", args + [before]
        row = self.db.execute(sql + f" ORDER BY {order} DESC LIMIT 1", args).fetchone()
        return row[0] if row else None

    # cells --------------------------------------------------------------------------------------
    def ensure_cell(self, run_id: str, model: str, recipe: str, recipe_kind: str, device: str) -> int:
        """The cell's id, creating it as pending; a resumed run finds the row it already has."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO cells (run_id, model, recipe, recipe_kind, device, status) VALUES (?,?,?,?,?, 'pending') "
                "ON CONFLICT DO NOTHING",
                (run_id, model, recipe, recipe_kind, device),
            )
            row = db.execute(
                "SELECT cell_id FROM cells WHERE run_id=? AND model=? AND recipe=? AND device=?",
                (run_id, model, recipe, device),
            ).fetchone()
        return int(row[0])

    def update_cell(self, cell_id: int, **fields: Any) -> None:
        unknown = set(fields) - CELL_COLUMNS
        if unknown:
            raise KeyError(f"not cell columns: {sorted(unknown)}")
        from datetime import datetime, timezone

        fields["updated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE cells SET {sets} WHERE cell_id=?", [_encode(k, v) for k, v in fields.items()] + [cell_id])

    def merge_extra(self, cell_id: int, **parts: Any) -> None:
        """Add keys to the cell's `extra` JSON, keeping what other stages put there."""
        with self._lock:
            raw = self.cell(cell_id)["extra"]
            self.update_cell(cell_id, extra={**(json.loads(raw) if raw else {}), **parts})

    def cell(self, cell_id: int) -> Any:
        return self.db.execute("SELECT * FROM cells WHERE cell_id=?", (cell_id,)).fetchone()

    def cells(self, run_id: str) -> list[Any]:
        return self.db.execute("SELECT * FROM cells WHERE run_id=? ORDER BY cell_id", (run_id,)).fetchall()

    # trials and samples -------------------------------------------------------------------------
    def add_trial(self, cell_id: int, trial: int, samples_ns: Iterable[int], **fields: Any) -> None:
        """A trial and its samples land together or not at all (nothing half-measured is stored)."""
        samples = list(samples_ns)
        keys = ["cell_id", "trial", *fields]
        with self.transaction() as db:
            db.execute("DELETE FROM trials WHERE cell_id=? AND trial=?", (cell_id, trial))
            db.execute(
                f"INSERT INTO trials ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
                [cell_id, trial, *[_encode(k, v) for k, v in fields.items()]],
            )
            db.execute("DELETE FROM samples WHERE cell_id=? AND trial=?", (cell_id, trial))
            db.executemany(
                "INSERT INTO samples (cell_id, trial, iteration, latency_ns) VALUES (?,?,?,?)",
                [(cell_id, trial, i, int(ns)) for i, ns in enumerate(samples)],
            )

    def done_trials(self, cell_id: int) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT trial FROM trials WHERE cell_id=?", (cell_id,))}

    def trials(self, cell_id: int) -> list[Any]:
        return self.db.execute("SELECT * FROM trials WHERE cell_id=? ORDER BY trial", (cell_id,)).fetchall()

    def samples(self, cell_id: int) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for trial, ns in self.db.execute(
            "SELECT trial, latency_ns FROM samples WHERE cell_id=? ORDER BY trial, iteration", (cell_id,)
        ):
            out.setdefault(trial, []).append(ns)
        return out

    def replace_power_samples(self, cell_id: int, samples: list[tuple[float, float, dict | None]]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM power_samples WHERE cell_id=?", (cell_id,))
            db.executemany("INSERT INTO power_samples (cell_id, t_s, watts, rails) VALUES (?,?,?,?)",
                           [(cell_id, t, w, json.dumps(r) if r else None) for t, w, r in samples])

    def replace_ops(self, cell_id: int, rows: list[dict]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM ops WHERE cell_id=?", (cell_id,))
            db.executemany(
                "INSERT INTO ops (cell_id, name, kind, delegate, count, total_ms, median_ms, share) VALUES (?,?,?,?,?,?,?,?)",
                [(cell_id, r["name"], r.get("kind"), r.get("delegate"), r.get("count"), r.get("total_ms"),
                  r.get("median_ms"), r.get("share")) for r in rows],
            )
