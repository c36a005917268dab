"""The per-cell view shared by `--json`, the summary table and the HTML page."""

from __future__ import annotations

import json

from qbench.results.metrics import ENERGY, LATENCY, in_json
from qbench.results.store import ResultsStore


def cell_views(store: ResultsStore, run_id: str) -> list[dict]:
    """One `--json` cell per cell of the run, in store order, with findings attached."""
    from qbench.report.data import cell_sweep
    from qbench.report.findings import attach_findings

    rows = store.cells(run_id)
    # speedups are over fp32 at the same sweep point (same threads, batch and cores)
    fp32_rows = {(r["model"], r["device"], cell_sweep(r)): r for r in rows
                 if r["recipe_kind"] == "fp32" and r["status"] == "ok"}
    return attach_findings([_cell_view(store, r, fp32_rows.get((r["model"], r["device"], cell_sweep(r))))
                            for r in rows])


def _cell_view(store: ResultsStore, r, fp32_row) -> dict:
    from qbench.report.data import cell_sweep
    from qbench.report.generation import generation_view

    extra = _json(r["extra"]) or {}
    view = {
        "model": r["model"], "recipe": r["recipe"], "recipe_kind": r["recipe_kind"], "device": r["device"],
        "status": r["status"] if r["status"] != "pending" else "not measured",
        "latency_ms": _figures(r, LATENCY) if r["latency_median_ms"] is not None else None,
        **_speedup(store, r, fp32_row),
        "stability": _stability(r),
        **_figures(r, None),  # startup, size and memory, numerics (results/metrics.py)
        **_accuracy(r, fp32_row),
        **_delegation(r),
        "runner": r["runner"], "threads": r["threads"],
        "cached_artifact": bool(r["cached"]) if r["cached"] is not None else None,
        "energy": _energy(r, extra),
        # what the recipe recorded: dataset splits, QAT training, int4 linears and where their ops ran;
        # for structured outputs, the leaf the headline figures are from and every leaf's figures;
        # NaN/inf outputs and why a numerics figure is null (a finding, never a number); the runner's
        # numerics on the device itself and which runner build measured; compute layers between a q-dq
        # pair in the quantized graph (None: an artifact from before the count)
        **{k: extra.get(k) for k in EXTRA_KEYS},
    }
    if (gen := generation_view(extra or None)) is not None:  # a text-generation cell (report/generation.py)
        view["generation"] = gen
    if cell_sweep(r) or _col(r, "batch") is not None:  # a sweep's point (absent otherwise: output unchanged)
        view.update(sweep=cell_sweep(r), batch=_col(r, "batch"))
    if r["status"] == "failed":
        view["error"] = f"{r['stage']}: {r['error']}" if r["stage"] else r["error"]
    return view


EXTRA_KEYS = ("dataset", "qat", "int4", "output", "outputs", "nonfinite", "numerics_reason", "device_numerics",
              "runner_flavour", "quantized_layers")


def _figures(row, where: str | None) -> dict:
    """The registry's metrics of one `--json` object (results/metrics.py), read from their columns."""
    return {m.json: _col(row, m.column) for m in in_json(where)}


def _speedup(store: ResultsStore, row, fp32_row) -> dict:
    base = fp32_row["latency_median_ms"] if fp32_row is not None else None
    median = row["latency_median_ms"]
    return {"speedup_vs_fp32": (base / median) if base and median else None, **_speedup_ci(store, row, fp32_row)}


def _delegation(row) -> dict:
    by_op = (json.loads(row["delegation"]) or {}) if row["delegation"] else None
    return {"delegated_ops": row["delegated_ops"], "total_ops": row["total_ops"],
            "not_delegated": by_op.get("not_delegated_by_op") if by_op is not None else None,
            "delegated": by_op.get("delegated_by_op") if by_op is not None else None}


def _energy(row, extra: dict) -> dict | None:
    """The power trial, one shape everywhere (JSON, tables, plots, MLflow): its figures from the
    columns; a store from before the columns (schema 1) had them only in extra["power"]."""
    if _col(row, "power_source"):
        figures = _figures(row, ENERGY)
        return {"source": row["power_source"], "measured": figures["per_inference_mj"] is not None,
                "reason": row["power_reason"], **figures}
    power = extra.get("power")
    if not isinstance(power, dict) or not power.get("source"):
        return None
    measured = bool(power.get("measured", True)) and power.get("energy_per_inference_mj") is not None
    old = {"per_inference_mj": "energy_per_inference_mj", "uncertainty_mj": "uncertainty_per_inference_mj",
           "avg_power_w": "avg_power_w", "idle_power_w": "idle_power_w", "samples": "sample_count"}
    return {"source": power["source"], "measured": measured, "reason": None if measured else power.get("reason"),
            **{m.json: power.get(old.get(m.json, m.json)) if measured else None for m in in_json(ENERGY)}}


def _stability(row) -> dict | None:
    if _col(row, "stability_verdict") is None:
        return None  # not finished, or a store from before stability was measured
    return {"verdict": row["stability_verdict"], "reason": row["stability_reason"],
            "median_ci_ms": [row["median_ci_low_ms"], row["median_ci_high_ms"]],
            "trials_used": row["trials_used"], "trials_replaced": row["trials_replaced"],
            "interference_share": row["interference_share"],
            # added with the disturbed/imprecise split (None in older stores)
            **{k: _col(row, k) for k in ("trials_measured", "trials_clean", "trials_not_judged")}}


NO_CLEAR_DIFFERENCE = "no clear difference"


def _speedup_ci(store: ResultsStore, row, fp32_row) -> dict:
    """fp32 median / this median with the two-level bootstrap CI over both cells' trials; a CI that
    spans 1.0 reads "no clear difference" (speedup_text), whatever the point estimate."""
    if fp32_row is None or row["recipe_kind"] == "fp32" or row["status"] != "ok":
        return {"speedup_ci": None}
    key = ("speedup_ci", row["cell_id"], fp32_row["cell_id"])
    if key not in store.derived:  # the summary, JSON and page of one run all show it: bootstrap once
        store.derived[key] = _bootstrap_speedup_ci(store, row, fp32_row)
    return {"speedup_ci": store.derived[key]}


def _bootstrap_speedup_ci(store: ResultsStore, row, fp32_row) -> list | None:
    import numpy as np

    from qbench.stats import ratio_of_medians, thin_for_ci

    this, fp32 = store.used_sample_arrays(row["cell_id"]), store.used_sample_arrays(fp32_row["cell_id"])
    if not this or not fp32:
        return None
    # thinned per trial (quantiles kept): a 3 µs model has 300k samples a trial, and every view of
    # the run (summary, JSON, report, Markdown) computes this
    this = {t: thin_for_ci(s) for t, s in this.items()}
    fp32 = {t: thin_for_ci(s) for t, s in fp32.items()}
    est = ratio_of_medians(np.concatenate(list(this.values())), np.concatenate(list(fp32.values())),
                           trials_base=[t for t, s in this.items() for _ in s],
                           trials_new=[t for t, s in fp32.items() for _ in s], n_boot=1000)
    return [est.low, est.high]


def speedup_text(speedup: float | None, ci: list | None, digits: int = 2) -> str:
    """'1.84× [1.71–1.95]', or 'no clear difference' when the CI includes 1.0."""
    if not speedup:
        return ""
    if not ci:
        return f"{speedup:.{digits}f}×"
    lo, hi = ci
    if lo <= 1.0 <= hi:
        return NO_CLEAR_DIFFERENCE
    from qbench.report.fmt import ci as ci_text

    return f"{speedup:.{digits}f}× {ci_text(lo, hi, digits)}"


ACCURACY = ("top1", "top5", "metric")


def _accuracy(row, fp32_row) -> dict:
    """accuracy_* as stored (fractions, or the metric's value) and their difference from the model's fp32
    cell on the same device (negative = lost to quantization), like speedup_vs_fp32."""
    out = {}
    for name in ACCURACY:
        value = _col(row, f"accuracy_{name}")
        base = _col(fp32_row, f"accuracy_{name}") if fp32_row is not None else None
        out[f"accuracy_{name}"] = value
        out[f"accuracy_{name}_delta_vs_fp32"] = (value - base) if value is not None and base is not None else None
    return out


def _col(row, name):
    return row[name] if name in row.keys() else None  # a store opened read-only may predate the column


def _json(raw):
    return json.loads(raw) if raw else None


def run_document(store: ResultsStore, run_id: str) -> dict:
    run = store.run(run_id)
    return {
        "run_id": run_id,
        "suite": run["suite"],
        "status": run["status"],
        "error": run["error"],  # why a failed run stopped
        "started_at": run["started_at"],
        "ended_at": run["ended_at"],
        "versions": {k: run[k] for k in ("qbench_version", "torch_version", "executorch_version", "torchao_version")},
        "git_sha": run["git_sha"],
        "db": str(store.path),
        "cells": cell_views(store, run_id),
    }
