"""Trends across runs: per cell (model × recipe × device), its median with a CI run after run, and
the runs where it moved.

    >>> df = trend("reports/qbench.db", suite="mobile", last=90)    # one row per cell × run
    >>> df[df.change_point][["model", "recipe", "device", "run_id", "verdict", "ratio"]]

How a change is found (the statistics of `qbench compare`, not new ones): each cell keeps a
*reference run*, at first the oldest run of the window. Every later run is compared with it by
`stats.compare` (ratio of medians, hierarchical bootstrap over trials, verdict with the threshold).
A "slower" or "faster" verdict makes that run a change point (the first run where the cell moved)
and the new reference, so a step is named once, and a slow drift is named at the run where the
accumulated drift became material. A run whose point ratio is inside the threshold cannot get a
verdict (`verdict` demands the whole CI beyond it), so it is not bootstrapped: a year of runs costs
a few bootstraps per cell, not hundreds.

What it reads: figures stored when each run measured them, never raw samples. A cell's median and
its CI band are the cell's own (`latency_median_ms`, `median_ci_low_ms`/`high_ms`: what the run's
summary printed); a ratio's CI is bootstrapped from the trials' quantile sketches (results/packing.py),
weighted by each trial's sample count, so runs whose raw samples were pruned still count. A store
too old to have a cell's CI gets one from the sketches (BAND_BOOT replicates).
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

from qbench.errors import UsageError
from qbench.results.columns import is_generative
from qbench.stats import FASTER, NO_CHANGE, SLOWER, compare, median_ci
from qbench.units import parse_threshold

# A CI band on a chart does not need the gate's 2000 replicates; 200 keep a year of cells fast.
BAND_BOOT = 200
RUN_COLUMNS = ("run_id", "started_at", "git_sha", "qbench_version", "torch_version", "executorch_version",
               "torchao_version", "status")
COLUMNS = ["suite", "model", "recipe", "recipe_kind", "device", "sweep", "run_id", "run_index", "started_at", "git_sha",
           "qbench_version", "torch_version", "executorch_version", "torchao_version", "status", "median_ms",
           "ci_low_ms", "ci_high_ms", "reference_run", "ratio", "ratio_low", "ratio_high", "verdict",
           "change_point", "speedup_vs_fp32", "decode_tokens_per_s"]


def parse_since(text: str) -> str:
    """'2026-03-01' or an ISO timestamp -> the ISO prefix runs' started_at are compared with."""
    try:
        return datetime.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise UsageError(f"--since {text!r}: expected a date such as 2026-03-01") from None


def select_runs(db: str | Path | None, suite: str | None = None, *, last: int | None = None,
                since: str | None = None) -> list[dict]:
    """The runs a trend covers, oldest first: those of `suite` (every suite when None; the store must
    then hold one), started at or after `since`, the newest `last` of them."""
    from qbench.results.frame import default_db
    from qbench.results.store import open_store

    store = open_store(db or default_db(), readonly=True)
    try:
        rows = [dict(r) for r in store.runs()]
    finally:
        store.close()
    suites = sorted({r["suite"] for r in rows})
    if suite is None and len(suites) > 1:
        raise UsageError(f"the store holds several suites ({', '.join(suites)}): name one, e.g. qbench trend "
                         f"{suites[0]}")
    if suite is not None and suite not in suites:
        raise UsageError(f"no run of suite {suite!r} in the store" + (f" (it has: {', '.join(suites)})" if suites
                                                                       else " (it is empty)"))
    rows = [r for r in rows if (suite is None or r["suite"] == suite) and r["status"] != "running"]
    if since:
        rows = [r for r in rows if (r["started_at"] or "") >= parse_since(since)]
    if last is not None:
        if last < 1:
            raise UsageError(f"--last {last}: give at least 1 run")
        rows = rows[-last:]
    return rows


def trend(db: str | Path | None = None, suite: str | None = None, *, last: int | None = None,
          since: str | None = None, threshold: float | str = 0.05, n_boot: int = 2000, seed: int | None = 0):
    """One row per cell × run (see COLUMNS), oldest run first; empty frame when no run matches.

    median_ms / ci_low_ms / ci_high_ms: the cell's median with its 95% two-level bootstrap CI.
    ratio: median / the reference run's median; ratio_low/high: its CI where it was bootstrapped;
    verdict: "slower" / "faster" / "no significant change" against the reference (None for the first
    measured run or a failed cell); change_point: the run where the cell moved. speedup_vs_fp32:
    the fp32 cell's median (same model, device and run) / this median.
    """
    import pandas as pd

    from qbench.results.frame import load

    threshold = parse_threshold(threshold)  # "5%" as on the command line
    runs = select_runs(db, suite, last=last, since=since)
    if not runs:
        return pd.DataFrame(columns=COLUMNS)
    ids = [r["run_id"] for r in runs]
    cells = load(db, ids, parse_json=False)
    order = {rid: i for i, rid in enumerate(ids)}
    run_by_id = {r["run_id"]: r for r in runs}
    out = []
    with _Sketches(db) as sketches:
        # a line is one cell: model × recipe × device × sweep point (threads, batch, affinity when swept)
        for (model, recipe, device, point), group in cells.groupby(["model", "recipe", "device", "sweep"], sort=True):
            rows = sorted(group.itertuples(index=False), key=lambda r: order[r.run_id])
            out += _cell_line(rows, (model, recipe, device, point), run_by_id, order, sketches,
                              (threshold, n_boot, seed))
    df = pd.DataFrame(out)
    df = df.sort_values(["run_index", "model", "recipe", "device", "sweep"], kind="stable").reset_index(drop=True)
    df["speedup_vs_fp32"] = _speedups(df)
    # a text-generation cell's median is ms per decoded token: its trend in tokens/s (as report/generation.py shows it)
    df["decode_tokens_per_s"] = [1000 / m if g and m > 0 else math.nan for g, m in zip(df["generative"], df["median_ms"])]
    df["started_at"] = pd.to_datetime(df["started_at"], utc=True, format="ISO8601")
    return df[COLUMNS]


def _cell_line(rows, key, run_by_id, order, sketches, options) -> list[dict]:
    """One cell's records, run after run, each compared with the cell's current reference run."""
    model, recipe, device, point = key
    threshold, n_boot, seed = options
    ref = None  # (run_id, cell_id, median_ms)
    out = []
    for row in rows:
        run = run_by_id[row.run_id]
        rec = {"suite": run["suite"], "model": model, "recipe": recipe, "recipe_kind": row.recipe_kind,
               "device": device, "sweep": point, "run_index": order[row.run_id], "status": row.status,
               **{k: run[k] for k in RUN_COLUMNS if k != "status"},
               "median_ms": math.nan, "ci_low_ms": math.nan, "ci_high_ms": math.nan, "reference_run": None,
               "ratio": math.nan, "ratio_low": math.nan, "ratio_high": math.nan, "verdict": None,
               "change_point": False, "generative": is_generative(row._asdict())}
        if row.status == "ok" and row.cell_id in sketches.measured and not _missing(row.latency_median_ms):
            rec.update(median_ms=row.latency_median_ms, **_band(row, sketches, seed))
            if ref is not None:
                rec.update(_against(ref, row.cell_id, rec["median_ms"], sketches, threshold, n_boot, seed))
            if ref is None or rec["change_point"]:
                ref = (row.run_id, row.cell_id, rec["median_ms"])
        out.append(rec)
    return out


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _band(row, sketches, seed) -> dict:
    """The cell's median CI in ms: the one its run stored, else bootstrapped from the sketches."""
    lo, hi = getattr(row, "median_ci_low_ms", None), getattr(row, "median_ci_high_ms", None)
    if _missing(lo) or _missing(hi):
        values, labels, sizes = sketches(row.cell_id)
        if not values.size:
            return {}  # no samples and no summary (an old store read in place): no band
        _, lo, hi = median_ci(values, trials=labels, trial_sizes=sizes, n_boot=BAND_BOOT, seed=seed)
        lo, hi = lo / 1e6, hi / 1e6
    return {"ci_low_ms": lo, "ci_high_ms": hi}


def _against(ref, cell_id, median_ms, sketches, threshold, n_boot, seed) -> dict:
    ref_run, ref_cell, ref_median = ref
    rec = {"reference_run": ref_run, "ratio": median_ms / ref_median, "verdict": NO_CHANGE}
    if abs(rec["ratio"] - 1) <= threshold:
        return rec  # `verdict` needs the whole CI past the threshold, so the point must be past it too
    (ref_values, ref_labels, ref_sizes), (values, labels, sizes) = sketches(ref_cell), sketches(cell_id)
    c = compare(ref_values, values, trials_base=ref_labels, trials_new=labels, sizes_base=ref_sizes, sizes_new=sizes,
                medians=(ref_median, median_ms), threshold=threshold, n_boot=n_boot, seed=seed)
    rec.update(ratio=c.ratio, ratio_low=c.low, ratio_high=c.high, verdict=c.verdict,
               change_point=c.verdict in (SLOWER, FASTER))
    return rec


class _Sketches:
    """The trials' sketches of a cell, read when first needed (a cell's band or a ratio CI): a year of
    runs whose cells have stored CIs and never moved reads none. Called with a cell id: (sketch values
    in ns, trial label per value, {trial: sample count}) of the trials the cell's figures use (the clean
    ones, or all when none was clean). `measured`: the cells that have trials with samples."""

    def __init__(self, db):
        from qbench.results.frame import _target
        from qbench.results.store import open_store

        self.store = open_store(_target(db), readonly=True)
        self.measured = {r[0] for r in self.store.db.execute("SELECT DISTINCT cell_id FROM trials WHERE "
                                                             "sample_count IS NULL OR sample_count > 0")}
        self._cache: dict[int, tuple] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.store.close()

    def __call__(self, cell_id: int) -> tuple:
        import numpy as np

        cell_id = int(cell_id)  # a frame's Int64 value: drivers bind plain ints
        if cell_id not in self._cache:
            used = {t: s for t, s in self.store.used_summaries(cell_id).items() if s.count}
            self._cache[cell_id] = (np.concatenate([s.sketch for s in used.values()] or [np.empty(0)]).astype(float),
                                    np.repeat(list(used), [s.sketch.size for s in used.values()]),
                                    {t: s.count for t, s in used.items()})
        return self._cache[cell_id]


def _speedups(df):
    fp32 = df[df["recipe_kind"] == "fp32"].groupby(["run_id", "model", "device", "sweep"])["median_ms"].first()
    keys = list(zip(df["run_id"], df["model"], df["device"], df["sweep"]))
    base = [fp32.get(k, math.nan) for k in keys]
    return [b / m if m and not math.isnan(m) and m > 0 else math.nan for b, m in zip(base, df["median_ms"])]
