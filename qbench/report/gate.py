"""The nightly gate's words: its verdict, the one line that says it, and each cell's `vs base` figure.

Computed once from the comparison the run already made (report/compare.py), so the terminal line,
the `vs base` column, the `--json` document (`baseline`, and `vs_base` per cell) and the exit code agree.
"""

from __future__ import annotations

from qbench.report.data import make_key
from qbench.stats import FASTER, SLOWER

PASS, FAIL, NOT_ENFORCED = "pass", "fail", "not enforced"


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
