"""Reading what the reports need from the results store: runs, cells, raw samples, ops.

Every report module goes through here, so an unknown run id or a missing store reads the same
everywhere (a `UsageError` the CLI prints as one line).
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from qbench.errors import UsageError
from qbench.results.store import ResultsStore
from qbench.text import cell_label

# (model, recipe, device[, sweep]): how cells of two runs are matched. sweep is the sweep point's label
# (suite/sweep.py); a cell without one (no lists in its suite, or a store from before sweeps) has the
# three-part key it always had.
CellKey = tuple[str, ...]
KEY_FIELDS = ("model", "recipe", "device", "sweep")


@contextmanager
def reading(db_path: str | Path | ResultsStore) -> Iterator[ResultsStore]:
    """The store to read from: db_path opened (and closed after), or a store already open (the run
    that just finished: its samples and speedup CIs are in memory already), left open."""
    if isinstance(db_path, ResultsStore):
        yield db_path
        return
    store = open_for_reading(db_path)
    try:
        yield store
    finally:
        store.close()


def open_for_reading(db_path: str | Path) -> ResultsStore:
    """The store at db_path (a file or a postgresql:// URL), for reading (a missing or broken file is
    a StoreError: one line)."""
    from qbench.results.backends import db_target
    from qbench.results.store import open_store as open_results

    return open_results(db_target(db_path) if isinstance(db_path, str) else db_path, readonly=True)


def check_runs(store: ResultsStore, run_ids: list[str]) -> list[str]:
    """The run ids the references name (full id, unique prefix, `last`, `last~N`, `last:SUITE`: see
    results/runref.py); a reference naming no run or several is a UsageError listing candidates."""
    from qbench.results.runref import resolve_runs

    if not run_ids:
        raise UsageError("give at least one run id; `qbench results --runs` lists them")
    return resolve_runs(store, run_ids)


def cell_key(row) -> CellKey:
    return make_key(row["model"], row["recipe"], row["device"], cell_sweep(row))


def make_key(model: str, recipe: str, device: str, sweep: str = "") -> CellKey:
    return (model, recipe, device, sweep) if sweep else (model, recipe, device)


def cell_sweep(row) -> str:
    """The row's sweep label ('' without one, also in a store from before sweeps)."""
    keys = row.keys()
    return (row["sweep"] if "sweep" in keys else None) or ""


def key_label(key: CellKey) -> str:
    """The cell's one spelling (qbench.text.cell_label): `model/recipe@device[ point]`."""
    return cell_label(*key)


def key_dict(key: CellKey) -> dict:
    """For JSON: model, recipe, device, and sweep only when there is one (output without sweeps is unchanged)."""
    return dict(zip(KEY_FIELDS, key))


def json_field(value) -> Any:
    """JSON columns come back as text from sqlite; None and broken JSON read as None."""
    if value is None or isinstance(value, (dict, list)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None


def json_safe(value):
    """JSON has no NaN/Infinity (JSON.parse and strict parsers reject them): they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def run_info(store: ResultsStore, run_id: str) -> dict:
    row = store.run(run_id)
    return {
        "run_id": run_id, "suite": row["suite"], "status": row["status"],
        "started_at": row["started_at"], "ended_at": row["ended_at"], "git_sha": row["git_sha"],
        "versions": {k.removesuffix("_version"): row[k] for k in
                     ("qbench_version", "torch_version", "executorch_version", "torchao_version")},
        "settings": json_field(row["settings"]) or {},
        "host": json_field(row["host"]) or {},
        "devices": json_field(row["devices"]) or [],
    }


def trial_samples(store: ResultsStore, cell_id: int) -> tuple[list[int], list[int]]:
    """(samples_ns, trial label per sample), pooled in trial order; trials marked disturbed are left
    out when the cell has clean ones (the same samples its figures come from)."""
    values: list[int] = []
    labels: list[int] = []
    for trial, ns in store.used_sample_arrays(cell_id).items():
        values.extend(ns.tolist())
        labels.extend([trial] * len(ns))
    return values, labels


def sketch_samples(store: ResultsStore, cell_id: int) -> tuple[list[int], list[int], dict[int, int]]:
    """(sketch values in ns, trial label per value, {trial: its sample count}) of the trials the cell's
    figures use: what a CI needs once the raw samples are pruned (see results/packing.py)."""
    used = {t: s for t, s in store.used_summaries(cell_id).items() if s.count}
    values: list[int] = []
    labels: list[int] = []
    for trial, s in used.items():
        values.extend(s.sketch.tolist())
        labels.extend([trial] * s.sketch.size)
    return values, labels, {t: s.count for t, s in used.items()}


def ops(store: ResultsStore, cell_id: int, limit: int | None = None) -> list[dict]:
    """Per-op profile rows, largest share first (empty when the cell was not profiled)."""
    sql = "SELECT name, kind, delegate, count, total_ms, median_ms, share FROM ops WHERE cell_id=? " \
          "ORDER BY share DESC, total_ms DESC"
    rows = store.db.execute(sql + (f" LIMIT {int(limit)}" if limit else ""), (cell_id,)).fetchall()
    return [dict(r) for r in rows]


def cell_error(row) -> str | None:
    if row["status"] != "failed":
        return None
    return f"{row['stage']}: {row['error']}" if row["stage"] else (row["error"] or "failed (no cause recorded)")
