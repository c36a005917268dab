"""Numbers read and written in the same words everywhere: a percentage from the command line, a size
in binary units, a share, a cell's trial counts.

Low in the layers so that the pipeline's progress lines and the reports (report/fmt.py builds on
these) print a figure the same way. Missing values are None (or NaN) and render as a dash.
"""

from __future__ import annotations

import math

from qbench.errors import UsageError

DASH = "—"


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def infinite(value) -> str | None:
    """'∞' / '−∞' for an infinite value (a store may hold one), else None: formats never raise on it."""
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return None


def bytes_(value, dash: str = DASH) -> str:
    """Binary units, as `ls -h` and Android's memory tools print them."""
    if missing(value):
        return dash
    if infinite(value):
        return infinite(value)
    v = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(v) < 1024 or unit == "GiB":
            return f"{v:,.0f} {unit}" if unit == "B" else f"{v:,.1f} {unit}"
        v /= 1024
    return DASH  # unreachable


def percent(fraction: float) -> str:
    """A target share as the user wrote it: 0.05 -> '5%', 0.002 -> '0.2%' (never rounded to '0%')."""
    return f"{fraction * 100:.4g}%"


def parse_threshold(text: str | float) -> float:
    """'5%' -> 0.05, '0.05' -> 0.05, '5' -> 0.05 (a bare number of 1 or more is read as percent)."""
    try:
        if isinstance(text, str) and text.strip().endswith("%"):
            value = float(text.strip()[:-1]) / 100
        else:
            value = float(text)
            value = value / 100 if value >= 1 else value
    except ValueError:
        raise UsageError(f"threshold {text!r}: expected a percentage such as 5% or a fraction such as 0.05") from None
    if not 0 <= value < 1 or math.isnan(value):
        raise UsageError(f"threshold {text!r} must be between 0% and 100%")
    return value


def trial_counts(measured: int, clean: int, replaced: int, not_judged: int = 0) -> str:
    """How a cell's trials went, the same words everywhere: '3 trials (3 clean)', '5 trials (3 clean,
    2 replaced)', '9 trials, all disturbed', '... 3 not judged' (no interference signal resolved them)."""
    head = f"{measured} trial{'s' * (measured != 1)}"
    if measured and not clean:
        return f"{head}, all disturbed"
    parts = [f"{clean} clean"]
    if measured - clean - replaced:
        parts.append(f"{measured - clean - replaced} disturbed, not replaced")
    if replaced:
        parts.append(f"{replaced} replaced")
    if not_judged:
        parts.append(f"{not_judged} not judged")
    return f"{head} ({', '.join(parts)})"
