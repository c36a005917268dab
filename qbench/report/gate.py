"""The nightly gate: the run against its baseline, compared once on the open store, its verdict, the
one line that says it, and each cell's `vs base` figure.

`compare_with_baseline` makes the one comparison; the page, junit.xml, summary.md, the step summary,
MLflow, the terminal line, the `--json` document (`baseline`, and `vs_base` per cell) and the exit code
all read it, so they agree. Nothing here prints: the command line says what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qbench.report.data import make_key
from qbench.stats import FASTER, SLOWER
from qbench.text import cell_label

PASS, FAIL, NOT_ENFORCED = "pass", "fail", "not enforced"


@dataclass
class Compared:
    """The run against its baseline, once: the page, junit.xml, summary.md and the gate all use it."""

    base: str | None  # None: the first night, nothing to compare with
    result: object  # CompareResult | None
    threshold: float
    nothing: str | None  # why the gate had nothing to judge, if so
    notes: list[str] = field(default_factory=list)  # what the command line says about it (not a warning)


def compare_with_baseline(store, suite: str, run_id: str, baseline: str | None, threshold: float | None) -> Compared:
    """Compare with `baseline` (`last` or None: the latest earlier usable run of the suite).

    `nothing` (a sentence) is set when the gate had nothing to judge: no earlier complete run with
    measured cells although earlier runs exist, or no cell measured in both runs."""
    from qbench.report.compare import compare_runs

    threshold = 0.05 if threshold is None else threshold
    base, nothing, notes = baseline or "last", None, []
    if base == "last":
        base = store.latest_run_id(suite=suite, before=run_id)
        if base is None:
            nothing = _no_usable_baseline(store, suite, run_id)
            if nothing is None:
                notes.append(f"no earlier run of suite {suite!r} in {store.path}: nothing to compare with (first night)")
    result = compare_runs(store, base, run_id, threshold=threshold) if base else None
    if result is not None and not any(c.latency for c in result.cells):
        nothing = (f"nothing comparable between baseline {base} and run {run_id}: no cell was measured in both "
                   f"({len(result.cells)} matched)")
    if nothing and result is not None:
        result.warnings.append(nothing)
    return Compared(base, result, threshold, nothing, notes)


def _no_usable_baseline(store, suite: str, run_id: str) -> str | None:
    """Why no earlier run can be the baseline although earlier runs exist (None: this is the first)."""
    started = store.run(run_id)["started_at"]
    earlier = [r for r in store.runs() if r["suite"] == suite and r["run_id"] != run_id and r["started_at"] <= started]
    if not earlier:
        return None
    return (f"no earlier complete run of suite {suite!r} with measured cells in {store.path} "
            f"({len(earlier)} earlier run(s), none usable: "
            + ", ".join(f"{r['run_id']} {r['status']}" for r in earlier[-3:]) + ")")


def gate_document(compared: Compared, result, junit, summary, enforced: bool) -> dict:
    """The `--json` document's `baseline`: what the gate judged, its verdict, and where its files are."""
    regressions = [cell_label(c.model, c.recipe, c.device, c.sweep) for c in (result.regressions if result else [])]
    return {"run_id": compared.base, "threshold": compared.threshold,
            "verdict": verdict(result, compared.nothing, enforced),
            "counts": result.counts() if result else None, "regressions": regressions, "junit": str(junit),
            "summary": str(summary), "nothing_compared": compared.nothing,
            "settings_differ": result.settings_differ if result else {}}


def verdict(result, nothing: str | None, enforced: bool) -> str:
    """pass | fail | not enforced (a --baseline without --fail-on-regression compares, never fails)."""
    if not enforced:
        return NOT_ENFORCED
    return FAIL if nothing or (result is not None and result.regressions) else PASS


def gate_line(gate: dict) -> str:
    """One line: verdict, counts, base run, threshold, and where junit.xml and summary.md are."""
    head = "gate: " + ("FAIL" if gate["verdict"] == FAIL else gate["verdict"])
    counts = gate.get("counts")
    if gate.get("nothing_compared"):
        body = f"nothing compared: {gate['nothing_compared']}"
    elif counts is None:
        body = "no baseline yet (the first run of this suite in the store): nothing to compare"
    else:
        body = (f"{counts['regressions']} regression(s) in {counts['matched']} compared cell(s) ("
                f"{counts['slower']} slower, {counts['faster']} faster, {counts['no_change']} no significant change"
                + (f", {counts['not_compared']} not compared" if counts["not_compared"] else "") + ")"
                f" vs run {gate['run_id']}, threshold {gate['threshold']:.0%}")
    return f"{head} — {body}; junit {gate['junit']}, summary {gate['summary']}"


def vs_base(c) -> dict:
    """A cell against its baseline cell: latency ratio new/base (lower is better) with its CI, the
    verdict at the threshold, and whether the gate counts it as a regression (and why)."""
    lat = c.latency
    return {"ratio": lat.ratio if lat else None, "ci": [lat.low, lat.high] if lat else None,
            "verdict": c.verdict, "regression": c.is_regression, "reasons": c.reasons()}


def attach_vs_base(cells: list[dict], result) -> None:
    """Each `--json` cell of the run gets `vs_base` (None: not in the baseline run)."""
    matched = {c.key: c for c in result.cells}
    for cell in cells:
        c = matched.get(make_key(cell["model"], cell["recipe"], cell["device"], cell.get("sweep") or ""))
        cell["vs_base"] = vs_base(c) if c is not None else None


def vs_base_text(v: dict | None) -> str:
    """'+12.0% slower' / '−3.1% faster' / '+0.4% same': the latency change against the baseline (+ is
    slower) and the verdict; 'regressed' when the gate flags something else (accuracy, size, failure)."""
    if v is None:
        return "new cell"
    if v["ratio"] is None:
        return "regressed" if v["regression"] else v["verdict"]
    change = f"{v['ratio'] - 1:+.1%}".replace("-", "−")
    word = {SLOWER: "slower", FASTER: "faster"}.get(v["verdict"], "same")
    return f"{change} {'regressed' if v['regression'] and word != 'slower' else word}"
