"""Findings about a cell that its figures alone do not say: computed once here, from the cell views,
and read by every printer (summary, `--json`, the HTML page).

Each finding is {"kind", "text"}; `kind` is the stable key, `text` the words a person reads.
"""

from __future__ import annotations

from qbench.report.fmt import ci as ci_text

QUANTIZED_NOTHING = "quantized_nothing"
QAT_BELOW_PTQ = "qat_below_ptq"
SLOWER_THAN_FP32 = "slower_than_fp32"

# QAT "clearly below" PTQ: its SQNR lower by this much (6 dB = four times the error power)
QAT_MARGIN_DB = 6.0


def attach_findings(views: list[dict]) -> list[dict]:
    """Each view gets `findings`: a list, empty when there is nothing to flag."""
    for view in views:
        view["findings"] = cell_findings(view, views)
    return views


def cell_findings(view: dict, views: list[dict]) -> list[dict]:
    if view["recipe_kind"] in ("fp32", "eager") or view["status"] != "ok":
        return []
    found = [quantized_nothing(view), qat_below_ptq(view, views), slower_than_fp32(view)]
    return [f for f in found if f]


def quantized_nothing(view: dict) -> dict | None:
    if view.get("quantized_layers") != 0:
        return None  # some layers quantized, or not counted (an artifact from before the count)
    return {"kind": QUANTIZED_NOTHING, "text": "quantized nothing: identical to fp32"}


def qat_below_ptq(view: dict, views: list[dict]) -> dict | None:
    if view["recipe_kind"] != "qat" or view.get("sqnr_db") is None:
        return None
    ptq = [v for v in views if v["recipe_kind"] == "ptq" and v["status"] == "ok" and v.get("sqnr_db") is not None
           and _same_point(v, view)]
    best = max(ptq, key=lambda v: v["sqnr_db"], default=None)
    if best is None or view["sqnr_db"] > best["sqnr_db"] - QAT_MARGIN_DB:
        return None
    return {"kind": QAT_BELOW_PTQ,
            "text": f"QAT below PTQ: SQNR {view['sqnr_db']:.1f} dB vs {best['sqnr_db']:.1f} dB ({best['recipe']})"}


def slower_than_fp32(view: dict) -> dict | None:
    ci = view.get("speedup_ci")
    if not ci or ci[1] >= 1.0:
        return None  # faster, or no clear difference
    return {"kind": SLOWER_THAN_FP32,
            "text": f"slower than fp32: speedup {view['speedup_vs_fp32']:.2f}× {ci_text(ci[0], ci[1], 2)}"}


def _same_point(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in ("model", "device", "sweep", "batch"))


def findings_text(view: dict) -> str:
    """All of a cell's findings in one line ('' when none)."""
    return "; ".join(f["text"] for f in view.get("findings") or [])
