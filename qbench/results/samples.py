"""The one way raw samples and trial summaries are read from a store (every reader goes through here:
the store's sample arrays behind bootstrap, percentiles, plots, compare and MLflow; load_samples;
trend's summaries).

`read` gives each trial's samples in iteration order; `summaries` gives each trial's sample count,
exact median and quantile sketch (packing.sketch), computed from the raw samples where an older store
read in place has none. Both read the packed layout (trial_samples) and, for an old store read in
place on read-only media (it cannot be migrated), the old row-per-iteration `samples` table.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

import numpy as np

from qbench.errors import StoreError
from qbench.results import packing

_CHUNK = 500  # cell ids per IN (...) list


class TrialSamples(NamedTuple):
    latency_ns: np.ndarray  # int64, iteration order
    thread_cpu_ns: np.ndarray | None  # int64, or None when not recorded


class TrialSummary(NamedTuple):
    count: int
    median_ns: float
    sketch: np.ndarray  # sorted int64 order statistics standing for `count` samples
    disturbed: bool


def _chunks(ids: Iterable[int]):
    ids = list(ids)
    for i in range(0, len(ids), _CHUNK):
        yield ids[i:i + _CHUNK]


def _in(ids: list[int]) -> str:
    return f"({', '.join('?' * len(ids))})"


def read(store, cell_ids: Iterable[int], *, thread_cpu: bool = False) -> dict[int, dict[int, TrialSamples]]:
    """{cell_id: {trial: TrialSamples}} in trial order; cells without samples are absent."""
    packed = "trial_samples" in store.backend.tables()
    out: dict[int, dict[int, TrialSamples]] = {}
    for ids in _chunks(cell_ids):
        if packed:
            cpu = "thread_cpu_ns" if thread_cpu else "NULL"
            rows = store.db.execute(f"SELECT cell_id, trial, latency_ns, {cpu} FROM trial_samples WHERE cell_id IN "
                                    f"{_in(ids)} ORDER BY cell_id, trial", ids).fetchall()
            for cell, trial, ns, cpu_blob in rows:
                out.setdefault(cell, {})[trial] = TrialSamples(
                    _unpack(ns, cell, trial, "samples"),
                    _unpack(cpu_blob, cell, trial, "thread CPU samples") if cpu_blob is not None else None)
        else:
            _read_rows(store, ids, thread_cpu, out)
    return out


def _unpack(blob, cell: int, trial: int, what: str) -> np.ndarray:
    try:
        return packing.unpack(blob)
    except packing.DamagedBlob as e:
        raise StoreError(f"results store: cell {cell} trial {trial}: its stored {what} are damaged ({e}); "
                         "restore the store from a backup (its other cells still read; `qbench results` lists them)") from None


def _read_rows(store, ids: list[int], thread_cpu: bool, out: dict) -> None:
    """The layout before schema 4: a row per iteration."""
    cpu = "thread_cpu_ns" if thread_cpu and "thread_cpu_ns" in store.backend.columns("samples") else "NULL"
    rows = store.db.execute(f"SELECT cell_id, trial, latency_ns, {cpu} FROM samples WHERE cell_id IN {_in(ids)} "
                            "ORDER BY cell_id, trial, iteration", ids).fetchall()
    if not rows:
        return
    known = np.array([r[3] is not None for r in rows])
    table = np.array([(r[0], r[1], r[2], r[3] or 0) for r in rows], dtype=np.int64)
    keys = table[:, 0] * (1 << 32) + table[:, 1]
    _, starts = np.unique(keys, return_index=True)
    for part, has in zip(np.split(table, starts[1:]), np.split(known, starts[1:])):
        out.setdefault(int(part[0, 0]), {})[int(part[0, 1])] = TrialSamples(
            part[:, 2].copy(), part[:, 3].copy() if has.all() else None)


def summaries(store, cell_ids: Iterable[int]) -> dict[int, dict[int, TrialSummary]]:
    """{cell_id: {trial: TrialSummary}} for trials that have samples (or a summary of pruned ones)."""
    out: dict[int, dict[int, TrialSummary]] = {}
    missing: list[int] = []
    for ids in _chunks(cell_ids):
        rows = store.db.execute(f"SELECT cell_id, trial, sample_count, median_ns, sketch, disturbed FROM trials "
                                f"WHERE cell_id IN {_in(ids)} ORDER BY cell_id, trial", ids).fetchall()
        for cell, trial, count, median, sketch, disturbed in rows:
            if sketch is None:
                missing.append(cell)
                continue
            out.setdefault(cell, {})[trial] = TrialSummary(int(count), float(median),
                                                           _unpack(sketch, cell, trial, "sketch"), bool(disturbed))
    if missing:  # an old store read in place: summarise its raw samples now
        disturbed = _disturbed(store, missing)
        for cell, trials in read(store, sorted(set(missing))).items():
            for trial, s in trials.items():
                out.setdefault(cell, {})[trial] = summarise(s.latency_ns, disturbed.get((cell, trial), False))
    return out


def summarise(latency_ns: np.ndarray, disturbed: bool = False) -> TrialSummary:
    """A trial's summary from its samples (what the store writes when the trial ends)."""
    median = float(np.median(latency_ns)) if latency_ns.size else float("nan")
    return TrialSummary(int(latency_ns.size), median, packing.sketch(latency_ns), disturbed)


def _disturbed(store, cell_ids: list[int]) -> dict[tuple[int, int], bool]:
    out = {}
    for ids in _chunks(sorted(set(cell_ids))):
        for cell, trial, d in store.db.execute(f"SELECT cell_id, trial, disturbed FROM trials WHERE cell_id IN "
                                               f"{_in(ids)}", ids).fetchall():
            out[(cell, trial)] = bool(d)
    return out


def used(by_trial: dict, disturbed: set[int]) -> dict:
    """The trials a cell's figures use: the clean ones, or all when none was clean."""
    return {t: v for t, v in by_trial.items() if t not in disturbed} or by_trial
