"""The results store: SQLite (one file) or PostgreSQL (shared by a farm), committed after every trial
so a crash loses nothing. backends.py holds the little that differs between the two.

Tables: runs (one per `qbench run`), cells (model × recipe × device, status + summary figures),
trials (one fresh runner process each, with its summary: sample count, median, quantile sketch),
trial_samples (a trial's raw per-iteration latencies as one compressed blob, see packing.py), and
ops (per-op profiles). A cell's figures are computed from its raw samples when its trials end; history
views (trend, the gate's baseline once pruned) read the trials' summaries.
The schema's history is a list of named migrations (migrations.py), run once per store.

Every command opens a store through `open_store`, which turns a missing, damaged, foreign or newer
file into a `StoreError` (one line for the user) and reads a store on a read-only filesystem.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from qbench import strict_json
from qbench.errors import StoreError

from qbench.results import backends, migrations, packing, samples
from qbench.results.metrics import cell_columns
from qbench.results.schema import (  # noqa: F401  (their home is schema.py; callers import them here too)
    ADDED_CELL_COLUMNS, ADDED_COLUMNS, ADDED_RUN_COLUMNS, CELL_KEY, SCHEMA, SCHEMA_VERSION, table_ddl as _table_ddl,
)

# cells columns a caller may set through update_cell (guards against SQL built from arbitrary keys)
CELL_COLUMNS = {
    "status", "stage", "error", "artifact_key", "cached", "runner", "threads", "pte_bytes", "arena_bytes",
    "delegated_ops", "total_ops", "delegation", "sqnr_db", "max_abs_error", "cosine_similarity",
    "top1_agreement", "quantize_s", "export_s", "device_info", "extra",
    *cell_columns(), *ADDED_CELL_COLUMNS,  # the registry's metrics (results/metrics.py) and later columns
}
LAYER_COLUMNS = ["position", "module", "op", "sqnr_db", "cosine", "max_abs_error", "input_sqnr_db", "target",
                 "metric_name", "metric_if_fp32", "metric_if_only_quantized", "method", "sensitivity_rank", "kept_fp32"]
_JSON_COLUMNS = {"host", "settings", "devices", "delegation", "device_info", "extra", "affinity",
                 "thermal_before", "thermal_after", "interference", "generation"}


def _encode(key: str, value: Any) -> Any:
    return strict_json.dumps(value, sort_keys=True, default=str) if key in _JSON_COLUMNS and value is not None else value


class ResultsStore:
    """The store at `path`: a SQLite file (created if missing) or a postgresql:// URL. Commands use
    `open_store`, which says what is wrong in one line.

    readonly: no schema changes and no writes; a SQLite store on a read-only filesystem is read in place.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.target = backends.db_target(path) if isinstance(path, str) else path  # what reopens it
        self.path = backends.redact(self.target) if backends.is_url(self.target) else Path(self.target)  # what messages show
        self.readonly = readonly
        self._lock = threading.RLock()  # one worker thread per device writes here
        # cell_id -> {trial: int64 array}: every view of a run (adaptive stopping after each trial, the
        # stability verdict, summary, speedup CIs, report) reads the same samples, and a 3 µs model
        # has 300k of them a trial. Only add_trial writes samples, and it keeps this in step.
        self._sample_memo: OrderedDict[int, dict[int, Any]] = OrderedDict()
        # figures computed from samples (e.g. a cell's speedup CI): every view of a run wants them; a
        # new trial clears them
        self.derived: dict[Any, Any] = {}
        self.backend = backends.connect(self.target, self._lock, readonly=readonly)
        self.db = self.backend.conn
        try:
            self._check_schema()
        except BaseException:
            self.backend.close()
            raise
        if readonly and not backends.is_url(self.target):
            self._shadow_missing_columns()  # a file read in place; a server is never read-only media
            return
        new = "runs" not in self.backend.tables()
        self.backend.create_schema(SCHEMA)
        if (migrations.applied(self) != {name for name, _ in migrations.MIGRATIONS}
                or migrations.missing_metric_columns(self)):
            with self.backend.migration_lock():  # two orchestrators opening one old database
                migrations.migrate(self, new=new)
                migrations.add_metric_columns(self)
        self.backend.set_schema_version(SCHEMA_VERSION)

    def _check_schema(self) -> None:
        """Refuse a newer store, and never add qbench's tables to somebody else's database."""
        version = self.backend.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer qbench (store schema {version}, this qbench "
                             f"reads up to {SCHEMA_VERSION}): upgrade qbench, or pass --db to another store")
        tables = self.backend.tables()
        if backends.is_url(self.target):
            if self.readonly and not {"runs", "cells"} <= tables:
                raise StoreError(f"no qbench results in the database {self.path} (no runs/cells tables): "
                                 "run a suite with --db first, or pass --db to another store")
        elif (tables or self.readonly) and not {"runs", "cells"} <= tables:
            raise StoreError(f"{self.path} is an SQLite database but not a qbench results store (no runs/cells "
                             "tables): pass --db to a qbench store")

    def _shadow_missing_columns(self) -> None:
        """An older store read in place cannot be migrated: readers still see one schema (the backend
        adds the missing columns as NULL, SQLite through temporary views)."""
        for table, columns in ADDED_COLUMNS.items():
            have = self.backend.columns(table)
            missing = {c: t for c, t in columns.items() if c not in have}
            if have and missing:
                self.backend.shadow_columns(table, missing)

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
                if self.db.in_transaction:  # SQLite already rolled back after e.g. a full disk
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

    def finish_run(self, run_id: str, status: str, ended_at: str, error: str | None = None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status=?, ended_at=?, error=? WHERE run_id=?", (status, ended_at, error, run_id))

    def reopen_run(self, run_id: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status='running', ended_at=NULL, error=NULL WHERE run_id=?", (run_id,))

    def run(self, run_id: str) -> Any | None:
        return self.db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()

    def runs(self) -> list[Any]:
        return self.db.execute("SELECT * FROM runs ORDER BY started_at").fetchall()

    def latest_run_id(self, suite: str | None = None, before: str | None = None) -> str | None:
        """The newest complete run with measured cells (of `suite`, older than `before`): a nightly
        job's baseline. A failed, interrupted or still running run, or one where nothing measured, is
        never a baseline."""
        sql = ("SELECT run_id FROM runs WHERE status='complete' AND EXISTS "
               "(SELECT 1 FROM cells WHERE cells.run_id = runs.run_id AND cells.status='ok')")
        args: list = []
        order = self.backend.run_order
        if suite:
            sql, args = sql + " AND suite=?", args + [suite]
        if before:
            sql, args = sql + f" AND {order} < (SELECT {order} FROM runs WHERE run_id=?)", args + [before]
        row = self.db.execute(sql + f" ORDER BY {order} DESC LIMIT 1", args).fetchone()
        return row[0] if row else None

    # cells --------------------------------------------------------------------------------------
    def ensure_cell(self, run_id: str, model: str, recipe: str, recipe_kind: str, device: str, *,
                    sweep: str = "", batch: int | None = None) -> int:
        """The cell's id, creating it as pending; a resumed run finds the row it already has.
        `sweep`: the sweep point's label (suite/sweep.py), part of the key; `batch`: the input batch."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO cells (run_id, model, recipe, recipe_kind, device, status, sweep, batch) "
                "VALUES (?,?,?,?,?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
                (run_id, model, recipe, recipe_kind, device, sweep, batch),
            )
            row = db.execute(
                "SELECT cell_id FROM cells WHERE run_id=? AND model=? AND recipe=? AND device=? AND sweep=?",
                (run_id, model, recipe, device, sweep),
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
    def add_trial(self, cell_id: int, trial: int, samples_ns: Iterable[int], thread_cpu_ns: Iterable[int] | None = None,
                  **fields: Any) -> None:
        """A trial, its samples (one packed blob) and its summary land together or not at all (nothing
        half-measured is stored)."""
        import numpy as np

        ns = np.array(samples_ns if isinstance(samples_ns, np.ndarray) else list(samples_ns), dtype=np.int64)
        cpu = [] if thread_cpu_ns is None else list(thread_cpu_ns)
        cpu = np.asarray(cpu, dtype=np.int64) if cpu and None not in cpu else np.empty(0, dtype=np.int64)
        keys = ["cell_id", "trial", *fields]
        with self.transaction() as db:
            db.execute("DELETE FROM trials WHERE cell_id=? AND trial=?", (cell_id, trial))
            db.execute(
                f"INSERT INTO trials ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
                [cell_id, trial, *[_encode(k, v) for k, v in fields.items()]],
            )
            self.write_trial_samples(db, cell_id, trial, ns, cpu if cpu.size == ns.size else None)
        self.derived.clear()
        if cell_id in self._sample_memo:  # committed: the memo follows
            self._sample_memo[cell_id][trial] = ns

    @staticmethod
    def write_trial_samples(db, cell_id: int, trial: int, ns, cpu) -> None:
        """A trial's packed samples and its summary (count, median, sketch), inside the caller's transaction."""
        summary = samples.summarise(ns)
        db.execute("DELETE FROM trial_samples WHERE cell_id=? AND trial=?", (cell_id, trial))
        db.execute("INSERT INTO trial_samples (cell_id, trial, latency_ns, thread_cpu_ns) VALUES (?,?,?,?)",
                   (cell_id, trial, packing.pack(ns), None if cpu is None else packing.pack(cpu)))
        db.execute("UPDATE trials SET sample_count=?, median_ns=?, sketch=? WHERE cell_id=? AND trial=?",
                   (summary.count, summary.median_ns if ns.size else None, packing.pack(summary.sketch), cell_id, trial))

    def done_trials(self, cell_id: int) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT trial FROM trials WHERE cell_id=?", (cell_id,))}

    def trials(self, cell_id: int) -> list[Any]:
        return self.db.execute("SELECT * FROM trials WHERE cell_id=? ORDER BY trial", (cell_id,)).fetchall()

    def samples(self, cell_id: int) -> dict[int, list[int]]:
        """{trial: latency samples in ns} as plain lists (what travels as JSON)."""
        return {t: a.tolist() for t, a in self.sample_arrays(cell_id).items()}

    def sample_arrays(self, cell_id: int) -> dict[int, Any]:
        """{trial: int64 array of latency samples in ns}, in trial order. Read once per cell and kept
        (see _sample_memo): callers must not modify the arrays."""
        with self._lock:
            if cell_id in self._sample_memo:
                self._sample_memo.move_to_end(cell_id)
                return dict(self._sample_memo[cell_id])
            got = samples.read(self, [cell_id]).get(cell_id, {})
            out = {t: s.latency_ns for t, s in got.items()}
            self._sample_memo[cell_id] = out
            while len(self._sample_memo) > 1 and self._memo_bytes() > self._SAMPLE_MEMO_BYTES:
                self._sample_memo.popitem(last=False)
            return dict(out)

    _SAMPLE_MEMO_BYTES = 256 << 20  # a run of 3 µs models (300k samples a trial) keeps ~35 cells

    def _memo_bytes(self) -> int:
        return sum(a.nbytes for trials in self._sample_memo.values() for a in trials.values())

    def used_samples(self, cell_id: int) -> dict[int, list[int]]:
        """Samples of the trials the cell's figures use: the clean ones, or all if none was clean."""
        return {t: a.tolist() for t, a in self.used_sample_arrays(cell_id).items()}

    def used_sample_arrays(self, cell_id: int) -> dict[int, Any]:
        """used_samples as int64 arrays (not to be modified)."""
        return samples.used(self.sample_arrays(cell_id), self._disturbed_trials(cell_id))

    def used_summaries(self, cell_id: int) -> dict[int, samples.TrialSummary]:
        """The summaries (count, median, sketch) of the trials the cell's figures use; these outlive
        `qbench prune` of the raw samples."""
        by_trial = samples.summaries(self, [cell_id]).get(cell_id, {})
        return samples.used(by_trial, {t for t, s in by_trial.items() if s.disturbed})

    def _disturbed_trials(self, cell_id: int) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT trial FROM trials WHERE cell_id=? AND disturbed=1", (cell_id,))}

    def replace_power_samples(self, cell_id: int, samples: list[tuple[float, float, dict | None]]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM power_samples WHERE cell_id=?", (cell_id,))
            db.executemany("INSERT INTO power_samples (cell_id, t_s, watts, rails) VALUES (?,?,?,?)",
                           [(cell_id, t, w, strict_json.dumps(r) if r else None) for t, w, r in samples])

    def replace_ops(self, cell_id: int, rows: list[dict]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM ops WHERE cell_id=?", (cell_id,))
            db.executemany(
                "INSERT INTO ops (cell_id, name, kind, delegate, count, total_ms, median_ms, share) VALUES (?,?,?,?,?,?,?,?)",
                [(cell_id, r["name"], r.get("kind"), r.get("delegate"), r.get("count"), r.get("total_ms"),
                  r.get("median_ms"), r.get("share")) for r in rows],
            )

    # per-layer sensitivity (qbench sensitivity) ------------------------------------------------------
    def replace_layers(self, run_id: str, model: str, recipe: str, rows: list[dict]) -> None:
        """rows: dicts with LAYER_COLUMNS keys (missing ones NULL), for one model × recipe of a run."""
        keys = ["run_id", "model", "recipe", *LAYER_COLUMNS]
        with self.transaction() as db:
            db.execute("DELETE FROM layer_sensitivity WHERE run_id=? AND model=? AND recipe=?", (run_id, model, recipe))
            db.executemany(
                f"INSERT INTO layer_sensitivity ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
                [[run_id, model, recipe, *[r.get(k) for k in LAYER_COLUMNS]] for r in rows],
            )

    def layers(self, run_id: str) -> list[Any]:
        return self.db.execute("SELECT * FROM layer_sensitivity WHERE run_id=? ORDER BY model, recipe, position",
                               (run_id,)).fetchall()

# opening ----------------------------------------------------------------------------------------
def open_store(path: str | Path, *, create: bool = False, readonly: bool = False) -> ResultsStore:
    """The one way commands open a store. create: a missing file becomes a new store (`qbench run`);
    otherwise it is an error. readonly: for commands that only read (results, report, compare, ops):
    a store the user cannot write (read-only filesystem or file) is read in place without changes.

    Raises StoreError naming the file and what to do: missing, a folder, not SQLite, damaged, not a
    qbench store, newer than this qbench, or not writable when writing is needed.
    A postgresql:// URL (a string) opens the shared database (credentials never shown).
    """
    if backends.is_url(path):
        return ResultsStore(path, readonly=readonly)
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a results store: pass --db FILE")
    if not path.exists() and not create:
        raise StoreError(f"no results store at {path} (run a suite first, or pass --db)")
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the results store {path}: {exc.strerror or exc}; pass --db to a "
                             "writable place") from None
    in_place = readonly and not _writable(path)
    try:
        store = ResultsStore(path, readonly=in_place)
    except sqlite3.DatabaseError as exc:
        raise StoreError(_describe_sqlite_error(path, exc, writing=not in_place)) from None
    try:
        _probe(store)
    except sqlite3.DatabaseError as exc:
        store.close()
        raise StoreError(_describe_sqlite_error(path, exc, writing=False)) from None
    return store


def _writable(path: Path) -> bool:
    """Can this process write the store (the file, and its folder for the journal files)?"""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _probe(store: ResultsStore) -> None:
    """Read the tables every command reads, so a damaged file fails here, in one line."""
    store.db.execute("SELECT count(*) FROM runs").fetchone()
    store.db.execute("SELECT count(*) FROM cells").fetchone()


def _describe_sqlite_error(path: Path, exc: sqlite3.DatabaseError, *, writing: bool) -> str:
    text = str(exc)
    if "not a database" in text:
        return f"{path} is not an SQLite database (sqlite: {text}): pass --db to a qbench results store"
    if "malformed" in text or "corrupt" in text:
        return (f"{path} is damaged (sqlite: {text}): restore it from a backup, or pass --db to a new file; "
                "`sqlite3 FILE .recover` can often save what it holds")
    if "readonly" in text or "read-only" in text or (writing and "unable to open" in text):
        return f"cannot write the results store {path} (sqlite: {text}): pass --db to a writable place"
    if "full" in text:
        return f"the disk holding {path} is full (sqlite: {text}): free space, or pass --db to another disk"
    return f"cannot open the results store {path} (sqlite: {text})"


def describe_store_error(path: Path | str, exc: sqlite3.Error) -> str:
    """A sqlite error raised while a command was using the store, as one line for the user."""
    return _describe_sqlite_error(Path(path), exc, writing=True) if isinstance(exc, sqlite3.DatabaseError) \
        else f"results store {path}: sqlite: {exc}"
