"""One map from each stage's result to the columns it writes: the only place that knows which cell
and trial columns a prepared artifact, a trial, a finished cell, a power trial or a failure fill,
and which keys the later stages (device numerics, quiet start, thread warnings, power, op profile)
add to a cell's `extra` JSON.

Inputs are plain values (an artifact, a runner report, trial rows), so the orchestrator, a farm
worker's results and the tests all store the same way.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

# SQLite has no infinity: an exact match (noise 0) is stored as 999 dB, documented in the schema.
EXACT_SQNR_DB = 999.0


# A cell's stability verdicts (pipeline/adaptive.py): stable; disturbed (other work ran during its
# trials and clean ones ran out); imprecise (no trial measured as disturbed, its median's CI stayed wide).
# `noisy` is what stores written before that split say for either.
STABLE_VERDICT = "stable"
UNSTABLE_VERDICTS = ("disturbed", "imprecise", "noisy")


def unstable(stability: dict | None) -> bool:
    """Whether a cell's `stability` (the --json object) says its median may be off."""
    return (stability or {}).get("verdict") in UNSTABLE_VERDICTS


def is_generative(row) -> bool:
    """A cell row (store) of a text-generation model: its samples are decode steps."""
    import json

    extra = row.get("extra") if isinstance(row, dict) else (row["extra"] if "extra" in row.keys() else None)
    extra = json.loads(extra) if isinstance(extra, str) else extra
    if not isinstance(extra, dict):  # NULL in the store, NaN in a frame
        return False
    return "decode_ms_per_token" in (extra.get("generation") or {})


def finite_db(x: float | None) -> float | None:
    if x is None:
        return None
    return EXACT_SQNR_DB if math.isinf(x) and x > 0 else x


def artifact_columns(art) -> dict[str, Any]:
    """A prepared variant (export.cache.Artifact): size, delegation, numerics, accuracy, timings."""
    num = art.numerics or {}
    acc = num.get("accuracy") or {}
    delegation = art.delegation or {}
    return {
        "artifact_key": art.key, "cached": int(art.cached), "pte_bytes": art.program_bytes,
        "arena_bytes": art.arena_bytes, "delegated_ops": delegation.get("delegated_ops"),
        "total_ops": delegation.get("total_ops"), "delegation": delegation or None,
        "sqnr_db": finite_db(num.get("sqnr_db")), "max_abs_error": num.get("max_abs_error"),
        "cosine_similarity": num.get("cosine_similarity"), "top1_agreement": num.get("top1_agreement"),
        "quantize_s": art.timings.get("quantize_s"), "export_s": art.timings.get("export_s"),
        "accuracy_top1": acc.get("top1"), "accuracy_top5": acc.get("top5"), "accuracy_metric": acc.get("metric"),
        "extra": num.get("extra") or None,  # dataset splits, QAT record, int4 notes
    }


def trial_columns(report: dict, *, wall_s: float, thermal_before: dict, thermal_after: dict,
                  cooldown_wait_s: float, finished_at: str) -> dict[str, Any]:
    """One trial's row (its raw samples go to the samples table beside it)."""
    return {
        "runner": report.get("runner"), "threads": report.get("threads"), "affinity": report.get("affinity"),
        "load_ms": report.get("load_ms"), "method_init_ms": report.get("method_init_ms"),
        "first_inference_ms": report.get("first_inference_ms"), "peak_rss_bytes": report.get("peak_rss_bytes"),
        "warmup_iterations": report.get("warmup_iterations"), "iterations": len(report["samples_ns"]),
        "wall_s": wall_s, "thermal_before": thermal_before, "thermal_after": thermal_after,
        "cooldown_wait_s": cooldown_wait_s, "finished_at": finished_at,
        **({"generation": _trial_generation(report["generation"])} if report.get("generation") else {}),
    }


GENERATION_TRIAL_KEYS = ("prompt_tokens", "new_tokens", "seed", "generations", "prefill_ns", "decode_ns", "tokens")


def _trial_generation(gen: dict) -> dict:
    """A text-generation trial's own figures (its decode steps are the samples): per generation."""
    return {key: gen.get(key) for key in GENERATION_TRIAL_KEYS}


def summary_columns(trials: list, samples_by_trial: dict[int, list[int]], device_info: dict,
                    runner_note: str, stability: dict | None = None) -> dict[str, Any]:
    """A finished cell: statistics from the raw samples of the trials used, per-trial fixed costs as
    medians, and the median's stability (verdict, reason, CI, trials used/replaced, interference)."""
    from qbench.stats import summary_stats
    from qbench.results.metrics import from_latency

    import numpy as np

    stats = summary_stats(np.concatenate([np.asarray(samples_by_trial[t]) for t in sorted(samples_by_trial)]))

    def med(col):
        vals = [r[col] for r in trials if r[col] is not None]
        return statistics.median(vals) if vals else None

    return {
        "status": "ok", "stage": None, "error": None, "runner": trials[0]["runner"], "threads": trials[0]["threads"],
        **from_latency(stats), "trials": len(trials),  # the registry's latency columns (results/metrics.py)
        "load_ms": med("load_ms"), "method_init_ms": med("method_init_ms"),
        "first_inference_ms": med("first_inference_ms"),
        "peak_rss_bytes": max((r["peak_rss_bytes"] or 0) for r in trials) or None,
        "device_info": {**device_info, "runner_choice": runner_note},
        **(_stability_columns(stability) if stability else {}),
    }


def _stability_columns(stab: dict) -> dict[str, Any]:
    low, high = stab["median_ci_ms"]
    return {"stability_verdict": stab["verdict"], "stability_reason": stab["reason"],
            "median_ci_low_ms": low, "median_ci_high_ms": high, "trials_used": stab["trials_used"],
            "trials_replaced": stab["trials_replaced"], "interference_share": stab["interference_share"],
            **{k: stab.get(k) for k in ("trials_measured", "trials_clean", "trials_not_judged")}}


def power_columns(result: dict) -> dict[str, Any]:
    """A power trial's figures (its raw samples go to power_samples, the whole result to `extra`)."""
    measured = bool(result.get("measured"))
    return {
        "power_source": result.get("source"), "power_reason": None if measured else result.get("reason"),
        "avg_power_w": result.get("avg_power_w"), "idle_power_w": result.get("idle_power_w"),
        "energy_per_inference_mj": result.get("energy_per_inference_mj"),
        "energy_uncertainty_mj": result.get("uncertainty_per_inference_mj"),
        "power_sample_count": result.get("sample_count"),
    }


def failure_columns(stage: str, message: str) -> dict[str, Any]:
    return {"status": "failed", "stage": stage, "error": message}


# A cell's `extra` (JSON): what a stage adds beside the columns, merged by ResultsStore.merge_extra.

# The power result's keys power_columns stores: kept once, in the columns (report/views.py reads them there).
POWER_COLUMN_KEYS = ("source", "measured", "reason", "avg_power_w", "idle_power_w", "energy_per_inference_mj",
                     "uncertainty_per_inference_mj", "sample_count")


def power_extra(result: dict) -> dict[str, Any]:
    """The rest of the power result (net and gross energy, inferences, durations, rails, notes) beside
    power_columns' figures."""
    return {"power": {k: v for k, v in result.items() if k not in POWER_COLUMN_KEYS}}


def runner_flavour_extra(flavour: str) -> dict[str, Any]:
    """Which build of the runner measured the cell (e.g. portable, xnnpack) or `eager`."""
    return {"runner_flavour": flavour}


def device_numerics_extra(result: dict) -> dict[str, Any]:
    """The device's own outputs against the host reference (collectors/device_numerics.py)."""
    return {"device_numerics": result}


def quiet_start_extra(record: dict) -> dict[str, Any]:
    """How long the device was watched for other load before its first cell, and what was seen."""
    return {"quiet_start": record}


def thread_warning_extra(warning: str) -> dict[str, Any]:
    """More threads than the cores the cell may use (pipeline/thread_count.py)."""
    return {"warnings": [warning]}


def profile_error_extra(message: str) -> dict[str, Any]:
    """Why a cell has no op profile (its latency stands): the first line, at most 300 characters."""
    return {"profile_error": message.splitlines()[0][:300] if message else ""}

