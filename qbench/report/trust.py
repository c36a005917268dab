"""What the first screen of a page says can be trusted, before any winner: how many cells are noisy or
failed, and why, one line each, linked to the cell's row.

Verdict words are read here and only here: a cell whose stability verdict is anything but STABLE
(today `noisy`; tomorrow perhaps `disturbed` or `imprecise`) is "unsure", and the page shows the word
the store holds. A new word therefore needs no change to the pages.
"""

from __future__ import annotations

import re

from qbench.report import fmt
from qbench.report.table import cell_anchor

STABLE = "stable"


def verdict(cell: dict) -> str | None:
    """The cell's stability verdict as stored, None when it was not judged (failed, or an old store)."""
    return (cell.get("stability") or {}).get("verdict")


def unsure(cell: dict) -> bool:
    """A measured cell whose median the stability check did not call stable."""
    v = verdict(cell)
    return v is not None and v != STABLE


def unsure_word(cells: list[dict]) -> str:
    """The verdict word(s) of these unsure cells, for a heading: 'noisy', or 'disturbed / imprecise'."""
    return " / ".join(dict.fromkeys(verdict(c) for c in cells if unsure(c))) or "noisy"


def cell_name(cell: dict) -> str:
    sweep = cell.get("sweep") or ""
    return f"{cell['model']}/{cell['recipe']}@{cell['device']}" + (f" · {sweep}" if sweep else "")


def trust(cells: list[dict]) -> dict:
    """The trust block of one run's cells: {"measured", "unsure", "failed", "word", "common", "clean"}; each
    unsure and failed entry carries the cell's name, link and why (failed: stage and the full cause);
    "common" is the reason most unsure cells share, for the folded summary."""
    unsure_cells = [c for c in cells if unsure(c)]
    failed = [c for c in cells if c["status"] == "failed"]
    reasons = [(c.get("stability") or {}).get("reason") or "its median's CI missed the precision" for c in unsure_cells]
    common = max(dict.fromkeys(reasons), key=reasons.count) if reasons else ""
    return {
        "measured": sum(1 for c in cells if c["status"] == "ok"),
        "common": {"why": common, "count": reasons.count(common)},
        "word": unsure_word(unsure_cells),
        "unsure": [{"name": cell_name(c), "href": _href(c), "verdict": verdict(c), "why": why}
                   for c, why in zip(unsure_cells, reasons)],
        "failed": [_failure(c) for c in failed],
        "clean": not unsure_cells and not failed,
    }


def _failure(cell: dict) -> dict:
    """A failed cell's stage and cause. The report's cells carry the stage; the --json view only the
    error as 'stage: cause' (views.py), from which a lower-case first word is taken as the stage."""
    error = cell.get("error") or "no error text recorded"
    stage = cell.get("stage") or (m.group(1) if (m := re.match(r"([a-z][a-z_-]*): ", error)) else "")
    cause = error[len(stage) + 2:] if stage and error.startswith(f"{stage}: ") else error
    return {"name": cell_name(cell), "href": _href(cell), "stage": stage or "unknown stage",
            "head": fmt.first_line(cause, 140), "cause": cause}


def _href(cell: dict) -> str:
    anchor = cell_anchor(cell)
    return f"#{anchor}" if anchor else "#cells"
