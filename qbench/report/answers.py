"""The first screen of a run compared with its baseline: what changed, worst first.

Built from one existing `CompareResult` (compare.py: ratio of medians with the hierarchical
bootstrap CI, the threshold verdicts, metric flags); nothing is judged again here. Each answer
links to its cell's row in the same page (table.cell_anchor).

Worst first: a cell that newly failed, then latency regressions by how much slower they are *at
least* (the CI's lower bound, so a wide noisy interval does not outrank a certain one), then
regressions flagged only on accuracy, size or memory. Improvements follow, the surest first.
"""

from __future__ import annotations

from qbench.report import fmt, trust
from qbench.report.compare import CellComparison, CompareResult, describe_latency
from qbench.report.data import cell_key
from qbench.report.table import cell_anchor
from qbench.stats import FASTER, SLOWER
from qbench.text import cell_label

SHOWN = 12  # answers listed per kind; the rest are in the comparison table below


def answers(result: CompareResult, cells: list[dict]) -> dict:
    """{"counts", "regressions", "improvements", "confidence", ...} for the template; `cells` are the
    gathered cells of the page (those of `result.new_run` are linked to)."""
    new_cells = {cell_key(c): c for c in cells if c.get("run_id") == result.new_run and c.get("cell_id") is not None}
    anchors = {k: cell_anchor(c) for k, c in new_cells.items()}
    marks = {k: trust.verdict(c) for k, c in new_cells.items() if trust.unsure(c)}
    n = result.counts()
    regressions = sorted(result.regressions, key=_severity)
    improvements = sorted(result.improvements, key=lambda c: c.latency.high)  # surest speed-up first
    confidence = next((c.latency.confidence for c in result.cells if c.latency), 0.95)
    return {
        "base_run": result.base_run, "new_run": result.new_run, "confidence": confidence,
        "threshold": result.thresholds["latency"],
        "counts": {"regressions": n["regressions"], "improvements": len(improvements),
                   "unchanged": sum(1 for c in result.cells if not c.is_regression and not c.is_improvement
                                    and c.latency is not None),
                   "not_compared": sum(1 for c in result.cells if c.latency is None and not c.is_regression),
                   "only_in_base": n["only_in_base"], "only_in_new": n["only_in_new"]},
        "regressions": [_row(c, anchors, "regression", marks) for c in regressions[:SHOWN]],
        "improvements": [_row(c, anchors, "improvement", marks) for c in improvements[:SHOWN]],
        "more_regressions": max(0, len(regressions) - SHOWN),
        "more_improvements": max(0, len(improvements) - SHOWN),
        "warnings": list(result.warnings),
    }


def _severity(c: CellComparison) -> tuple:
    if c.newly_failed:
        return (0, 0.0)
    if c.latency is not None and c.latency.regression:
        return (1, -c.latency.low)
    return (2, -len(c.flags))


def _row(c: CellComparison, anchors: dict, kind: str, marks: dict) -> dict:
    """marks: the verdict word of each new-run cell whose median is unsure (noisy): its change is shown
    with that word, never as plain fact."""
    lat = c.latency
    flags = [m.describe() for m in c.flags]
    if c.newly_failed:
        headline, others = "failed: " + fmt.first_line(c.new_error, 90), flags
    elif lat is not None and lat.verdict in (SLOWER, FASTER):
        headline, others = f"{fmt.pct_change(lat.ratio - 1)} latency", flags
    else:
        headline, others = "; ".join(flags), []
    return {
        "model": c.model, "recipe": c.recipe, "device": c.device, "sweep": c.sweep, "kind": kind,
        "label": cell_label(c.model, c.recipe, c.device, c.sweep),
        "href": "#" + anchors[c.key] if c.key in anchors else "#compare",
        "headline": headline, "others": others, "mark": marks.get(c.key, "") if not c.newly_failed else "",
        "latency": (f"{fmt.ms(c.base_median_ms)} → {fmt.ms(c.new_median_ms)} ms, ratio {describe_latency(lat)}"
                    if lat is not None else ""),
    }
