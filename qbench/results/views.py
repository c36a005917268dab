"""The per-cell view shared by `--json`, the summary table and the HTML page."""

from __future__ import annotations

import json

from qbench.results.store import ResultsStore


def cell_views(store: ResultsStore, run_id: str) -> list[dict]:
    rows = store.cells(run_id)
    fp32 = {(r["model"], r["device"]): r["latency_median_ms"] for r in rows
            if r["recipe_kind"] == "fp32" and r["status"] == "ok"}
    out = []
    for r in rows:
        base = fp32.get((r["model"], r["device"]))
        median = r["latency_median_ms"]
        view = {
            "model": r["model"], "recipe": r["recipe"], "recipe_kind": r["recipe_kind"], "device": r["device"],
            "status": r["status"] if r["status"] != "pending" else "not measured",
            "latency_ms": None if median is None else {
                "min": r["latency_min_ms"], "median": median, "mean": r["latency_mean_ms"],
                "std": r["latency_std_ms"], "p90": r["latency_p90_ms"], "p99": r["latency_p99_ms"],
                "cv": r["latency_cv"], "samples": r["samples_count"], "trials": r["trials"],
            },
            "speedup_vs_fp32": (base / median) if base and median else None,
            "load_ms": r["load_ms"], "method_init_ms": r["method_init_ms"],
            "first_inference_ms": r["first_inference_ms"], "peak_rss_bytes": r["peak_rss_bytes"],
            "pte_bytes": r["pte_bytes"], "arena_bytes": r["arena_bytes"],
            "sqnr_db": r["sqnr_db"], "max_abs_error": r["max_abs_error"],
            "cosine_similarity": r["cosine_similarity"], "top1_agreement": r["top1_agreement"],
            "delegated_ops": r["delegated_ops"], "total_ops": r["total_ops"],
            "not_delegated": (json.loads(r["delegation"]) or {}).get("not_delegated_by_op") if r["delegation"] else None,
            "runner": r["runner"], "threads": r["threads"], "cached_artifact": bool(r["cached"]) if r["cached"] is not None else None,
        }
        if r["status"] == "failed":
            view["error"] = f"{r['stage']}: {r['error']}" if r["stage"] else r["error"]
        out.append(view)
    return out


def run_document(store: ResultsStore, run_id: str) -> dict:
    run = store.run(run_id)
    return {
        "run_id": run_id,
        "suite": run["suite"],
        "status": run["status"],
        "started_at": run["started_at"],
        "ended_at": run["ended_at"],
        "versions": {k: run[k] for k in ("qbench_version", "torch_version", "executorch_version", "torchao_version")},
        "git_sha": run["git_sha"],
        "db": str(store.path),
        "cells": cell_views(store, run_id),
    }
