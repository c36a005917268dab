"""The store's schema history as named migrations, each run once and recorded (the sqlite-utils way).

A store remembers which migrations it has had in `qbench_migrations` (name, applied_at). Opening a
store for writing runs, in order, those it has not had, and records each right after it ran; every
step checks what is already there, so a crash in between only repeats it. A new store is created at
the current schema and records them all as applied without running them. Stores written before this
table existed (schema 1-3) run them all. PostgreSQL: the store holds an advisory lock meanwhile
(backends.py), so two orchestrators opening one old database migrate it once.

Never edit or rename a migration that has shipped; add a new one at the end.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import numpy as np

from qbench.results.schema import ADDED_CELL_COLUMNS, CELL_KEY, table_ddl

TABLE = "qbench_migrations"


def _add_columns(backend, table: str, columns: dict[str, str]) -> None:
    have = backend.columns(table)
    for name, sql_type in columns.items():
        if name not in have:
            backend.add_column(table, name, sql_type)


def cell_accuracy_and_power(store) -> None:
    """Schema 2: accuracy on the eval split, power and energy as cell columns."""
    names = ("accuracy_top1", "accuracy_top5", "accuracy_metric", "power_source", "power_reason", "avg_power_w",
             "idle_power_w", "energy_per_inference_mj", "energy_uncertainty_mj", "power_sample_count")
    _add_columns(store.backend, "cells", {n: ADDED_CELL_COLUMNS[n] for n in names})


def run_error(store) -> None:
    """Why a failed run stopped."""
    _add_columns(store.backend, "runs", {"error": "TEXT"})


def interference_and_stability(store) -> None:
    """Interference per trial, thread CPU time per iteration, the stability verdict per cell."""
    _add_columns(store.backend, "trials", {"disturbed": "INTEGER", "interference_share": "REAL",
                                           "interference": "JSON"})
    if "samples" in store.backend.tables():
        _add_columns(store.backend, "samples", {"thread_cpu_ns": "INTEGER"})
    names = ("stability_verdict", "stability_reason", "median_ci_low_ms", "median_ci_high_ms", "trials_used",
             "trials_replaced", "interference_share")
    _add_columns(store.backend, "cells", {n: ADDED_CELL_COLUMNS[n] for n in names})


def sensitivity_methods(store) -> None:
    """qbench sensitivity --method quantize-one|both."""
    _add_columns(store.backend, "layer_sensitivity", {"metric_if_only_quantized": "REAL", "method": "TEXT"})


def sweep_key(store) -> None:
    """Schema 3: a cell's key has its sweep point (cells.sweep) and the batch it asked for."""
    _add_columns(store.backend, "cells", {"sweep": "TEXT NOT NULL DEFAULT ''", "batch": "INTEGER"})
    store.backend.widen_unique_key("cells", CELL_KEY, table_ddl("cells"))


def packed_samples(store) -> None:
    """Schema 4: one compressed blob per trial (trial_samples) instead of a row per iteration, and
    each trial's summary (sample_count, median_ns, sketch) in `trials`; the old rows are converted."""
    _add_columns(store.backend, "trials", {"sample_count": "INTEGER", "median_ns": "REAL", "sketch": "BLOB"})
    if "samples" not in store.backend.tables():
        return
    cells = [r[0] for r in store.db.execute("SELECT DISTINCT cell_id FROM samples ORDER BY cell_id")]
    for cell_id in cells:  # one cell at a time: a year of rows never sits in memory at once
        with store.transaction() as db:
            rows = db.execute("SELECT trial, latency_ns, thread_cpu_ns FROM samples WHERE cell_id=? "
                              "ORDER BY trial, iteration", (cell_id,)).fetchall()
            for trial, ns, cpu in _by_trial(rows):
                store.write_trial_samples(db, cell_id, trial, ns, cpu)
    store.db.execute("DROP TABLE samples")
    if cells:
        store.backend.vacuum()  # once: the rows were most of the file


def trial_counts_and_generation(store) -> None:
    """Trials measured / clean / not judged per cell (disturbed vs imprecise); a text-generation
    trial's own figures."""
    names = ("trials_measured", "trials_clean", "trials_not_judged")
    _add_columns(store.backend, "cells", {n: ADDED_CELL_COLUMNS[n] for n in names})
    _add_columns(store.backend, "trials", {"generation": "JSON"})


def missing_metric_columns(store) -> dict[str, str]:
    """The registry's metric columns (results/metrics.py) the store's cells table lacks."""
    from qbench.results.metrics import cell_columns

    have = store.backend.columns("cells")
    return {name: sql_type for name, sql_type in cell_columns().items() if name not in have}


def add_metric_columns(store) -> None:
    """Added on a writable open, after the named migrations: a new metric needs no migration of its
    own (a nullable column, added once; earlier cells read NULL there)."""
    _add_columns(store.backend, "cells", missing_metric_columns(store))


def _by_trial(rows):
    """(trial, latency int64 array, thread CPU int64 array or None) from rows ordered by trial, iteration."""
    table = np.array([(r[0], r[1], -1 if r[2] is None else r[2]) for r in rows], dtype=np.int64).reshape(-1, 3)
    has_cpu = np.array([r[2] is not None for r in rows], dtype=bool)
    trials, starts = np.unique(table[:, 0], return_index=True)
    for trial, part, cpu_known in zip(trials, np.split(table, starts[1:]), np.split(has_cpu, starts[1:])):
        yield int(trial), part[:, 1], part[:, 2] if cpu_known.all() else None


# name -> function(store); the order is the order they run in
MIGRATIONS: list[tuple[str, Callable]] = [
    ("0001_cell_accuracy_and_power", cell_accuracy_and_power),
    ("0002_run_error", run_error),
    ("0003_interference_and_stability", interference_and_stability),
    ("0004_sensitivity_methods", sensitivity_methods),
    ("0005_sweep_key", sweep_key),
    ("0006_packed_samples", packed_samples),
    ("0007_trial_counts_and_generation", trial_counts_and_generation),
]


def applied(store) -> set[str]:
    if TABLE not in store.backend.tables():
        return set()
    return {r[0] for r in store.db.execute(f"SELECT name FROM {TABLE}")}


def migrate(store, *, new: bool) -> list[str]:
    """Run the migrations `store` has not had (none for a `new` store: recorded as applied). Returns
    the names run."""
    store.db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done, ran = applied(store), []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        if not new:
            step(store)
            ran.append(name)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        store.db.execute(f"INSERT INTO {TABLE} (name, applied_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, now))
    return ran
