"""Markdown table of a run's accuracy, latency and size per recipe (what docs/quantization-quality.md shows).

    .venv/bin/qbench run suites/digits.yaml --device host --json > run.json
    .venv/bin/python examples/quality_table.py run.json
"""

from __future__ import annotations

import json
import sys


def pct(x, signed=False):
    return "—" if x is None else (f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}")


def table(doc: dict) -> str:
    cells = doc["cells"]
    metric = any(c.get("accuracy_metric") is not None for c in cells)
    head = (["recipe", "kind"] + (["metric", "Δ vs fp32"] if metric else ["top-1 %", "Δ pts", "top-5 %"])
            + ["SQNR dB", "latency ms (median)", "speedup", ".pte KiB", "peak RSS MiB", "delegated ops"])
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cells:
        if c["status"] != "ok":
            rows.append(f"| {c['recipe']} | {c['recipe_kind']} | failed: {c.get('error', '')} |")
            continue
        acc = ([f"{c['accuracy_metric']:.4f}" if c["accuracy_metric"] is not None else "—",
                f"{c['accuracy_metric_delta_vs_fp32']:+.4f}" if c["accuracy_metric_delta_vs_fp32"] is not None else "—"]
               if metric else [pct(c["accuracy_top1"]), pct(c["accuracy_top1_delta_vs_fp32"], True), pct(c["accuracy_top5"])])
        lat = c["latency_ms"] or {}
        sqnr = c["sqnr_db"]
        rows.append("| " + " | ".join([
            c["recipe"], c["recipe_kind"], *acc,
            "—" if sqnr is None else ("exact" if sqnr >= 999 else f"{sqnr:.1f}"),
            f"{lat['median']:.3f} (p90 {lat['p90']:.3f})" if lat else "—",
            f"{c['speedup_vs_fp32']:.2f}×" if c["speedup_vs_fp32"] else "—",
            f"{c['pte_bytes'] / 1024:,.0f}" if c["pte_bytes"] else "—",
            f"{c['peak_rss_bytes'] / 2**20:,.0f}" if c["peak_rss_bytes"] else "—",
            f"{c['delegated_ops']}/{c['total_ops']}" if c["total_ops"] else "—",
        ]) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(json.load(open(sys.argv[1]))))
