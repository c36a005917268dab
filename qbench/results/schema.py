"""The store's tables as today's qbench creates them, and what older schemas lacked (for reading an old
file in place). How a store of an older schema gets here: migrations.py."""

from __future__ import annotations

SCHEMA_VERSION = 4  # 3: a cell's key has its sweep point (cells.sweep); 4: samples packed per trial

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
    # stability of the median (see pipeline/adaptive.py): stable | disturbed | imprecise (older
    # stores: noisy), and why
    "stability_verdict": "TEXT",
    "stability_reason": "TEXT",
    "median_ci_low_ms": "REAL",  # 95% CI of the median, two-level bootstrap over the trials used
    "median_ci_high_ms": "REAL",
    "trials_used": "INTEGER",  # trials whose samples make the figures (disturbed ones left out)
    "trials_replaced": "INTEGER",  # disturbed trials kept in `trials` but replaced by another
    "interference_share": "REAL",  # median over the trials used
    "trials_measured": "INTEGER",  # every trial run, disturbed ones included
    "trials_clean": "INTEGER",  # trials not disturbed (judged clean, or not judged)
    "trials_not_judged": "INTEGER",  # trials no interference signal could resolve (counted as clean)
    # sweeps (suite/sweep.py): the point's label, part of the cell's key ('' = nothing swept), and the batch
    "sweep": "TEXT NOT NULL DEFAULT ''",
    "batch": "INTEGER",  # the input batch the suite asked for (NULL: as the model declares it)
}
# The cells' unique key (schema 3 added `sweep`; older stores are rebuilt with it on open).
CELL_KEY = ("run_id", "model", "recipe", "device", "sweep")
# Columns added to `runs` after schema 2, the same way.
ADDED_RUN_COLUMNS = {
    "error": "TEXT",  # why a `failed` run stopped (the exception that ended it)
}
# Per table, what a store of an older schema may lack (per trial: what else ran, its summary; per
# iteration of the old row layout: the thread's CPU time). An older store read in place sees them as NULL.
ADDED_COLUMNS = {
    "cells": ADDED_CELL_COLUMNS,
    "runs": ADDED_RUN_COLUMNS,
    "trials": {"disturbed": "INTEGER", "interference_share": "REAL", "interference": "JSON",
               "sample_count": "INTEGER", "median_ns": "REAL", "sketch": "BLOB",
               # a text-generation trial's prefill/TTFT per generation and tokens (pipeline/generation.py)
               "generation": "JSON"},
    "samples": {"thread_cpu_ns": "INTEGER"},
    # qbench sensitivity --method quantize-one|both: the metric with only this layer quantized
    "layer_sensitivity": {"metric_if_only_quantized": "REAL", "method": "TEXT"},
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    suite TEXT NOT NULL,
    suite_path TEXT,
    suite_yaml TEXT,
    status TEXT NOT NULL,              -- running | complete | failed | interrupted
    error TEXT,                        -- failed: the cause
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
    power_source TEXT, power_reason TEXT, avg_power_w REAL, idle_power_w REAL, energy_per_inference_mj REAL,
    energy_uncertainty_mj REAL, power_sample_count INTEGER,
    stability_verdict TEXT, stability_reason TEXT, median_ci_low_ms REAL, median_ci_high_ms REAL,
    trials_used INTEGER, trials_replaced INTEGER, interference_share REAL,
    trials_measured INTEGER, trials_clean INTEGER, trials_not_judged INTEGER,
    updated_at TEXT,
    sweep TEXT NOT NULL DEFAULT '',    -- the sweep point, e.g. 'threads=2 batch=4' ('' = no sweep)
    batch INTEGER,
    UNIQUE (run_id, model, recipe, device, sweep)
);
CREATE TABLE IF NOT EXISTS trials (
    cell_id INTEGER NOT NULL REFERENCES cells(cell_id),
    trial INTEGER NOT NULL,
    runner TEXT, threads INTEGER, affinity JSON,
    load_ms REAL, method_init_ms REAL, first_inference_ms REAL, peak_rss_bytes INTEGER,
    warmup_iterations INTEGER, iterations INTEGER, wall_s REAL,
    thermal_before JSON, thermal_after JSON, cooldown_wait_s REAL,
    finished_at TEXT,
    disturbed INTEGER, interference_share REAL, interference JSON,
    sample_count INTEGER,              -- the trial's summary, written with its samples
    median_ns REAL,
    sketch BLOB,                       -- sorted samples thinned to <= 2000 order statistics (packing.py)
    generation JSON,                   -- a text-generation trial: prefill/TTFT per generation, tokens
    PRIMARY KEY (cell_id, trial)
);
CREATE TABLE IF NOT EXISTS trial_samples (
    cell_id INTEGER NOT NULL,
    trial INTEGER NOT NULL,
    latency_ns BLOB NOT NULL,          -- every iteration in order, packed (packing.py)
    thread_cpu_ns BLOB,                -- the runner thread's CPU time per iteration (NULL: not recorded)
    PRIMARY KEY (cell_id, trial)
);
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
""" + """
CREATE TABLE IF NOT EXISTS layer_sensitivity (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    model TEXT NOT NULL, recipe TEXT NOT NULL,
    position INTEGER NOT NULL,         -- graph order
    module TEXT NOT NULL, op TEXT,
    sqnr_db REAL, cosine REAL, max_abs_error REAL, input_sqnr_db REAL,
    target TEXT, metric_name TEXT,     -- e.g. sqnr>=30, sqnr_db
    metric_if_fp32 REAL,               -- end-to-end metric with only this layer kept fp32 (NULL = not tried)
    metric_if_only_quantized REAL,     -- end-to-end metric with only this layer quantized (NULL = not tried)
    method TEXT,                       -- which of the two ranked the layers: fp32-one | quantize-one | both
    sensitivity_rank INTEGER,          -- 1 = keeping it fp32 helps most
    kept_fp32 INTEGER NOT NULL,        -- 1 = in the suggested skip:
    PRIMARY KEY (run_id, model, recipe, position)
);
"""


def table_ddl(table: str) -> str:
    """The CREATE TABLE statement of `table` in SCHEMA (for a migration that rebuilds it)."""
    start = SCHEMA.index(f"CREATE TABLE IF NOT EXISTS {table} (")
    return SCHEMA[start:SCHEMA.index("\n);", start) + 3]


def ddl_columns(table: str) -> set[str]:
    """The column names `table`'s CREATE TABLE in SCHEMA declares."""
    import re

    body = re.sub(r"--[^\n]*", "", table_ddl(table).split("(", 1)[1])
    return {words[0] for part in body.split(",") if (words := part.split()) and words[0].isidentifier()}


def _registered_cell_columns() -> dict[str, str]:
    """Metric columns (results/metrics.py) newer than the CREATE TABLE above: added on open like the rest."""
    from qbench.results.metrics import cell_columns

    declared = ddl_columns("cells")
    return {c: t for c, t in cell_columns().items() if c not in declared and c not in ADDED_CELL_COLUMNS}


ADDED_CELL_COLUMNS.update(_registered_cell_columns())
