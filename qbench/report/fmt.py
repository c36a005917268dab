"""Number formatting shared by the HTML report, the Markdown summary, JUnit and `qbench compare`.

One place decides how a latency, a size or a ratio reads, so the three outputs agree (sizes, shares
and trial counts in qbench/units.py, which the pipeline prints with too).
Missing values are None and render as a dash (or "not measured"), never as 0.
"""

from __future__ import annotations

import math

from qbench.units import DASH, bytes_, infinite, missing, percent, trial_counts  # noqa: F401  (re-used here)

SQNR_EXACT_DB = 900.0  # the store keeps +inf dB (bit-exact output) as 999, see results.columns.finite_db


def ms(value, dash: str = DASH) -> str:
    """A latency in ms with about three significant digits (0.0123, 1.23, 12.3, 123)."""
    if missing(value):
        return dash
    if infinite(value):
        return infinite(value)
    v = float(value)
    if v == 0:
        return "0"
    digits = max(0, min(4, 2 - math.floor(math.log10(abs(v)))))
    return f"{v:,.{digits}f}"


def num(value, digits: int = 2, dash: str = DASH) -> str:
    return dash if missing(value) else infinite(value) or f"{float(value):,.{digits}f}"


def ratio(value, dash: str = DASH) -> str:
    return dash if missing(value) else infinite(value) or f"{float(value):.3f}×"


def pct_change(value, dash: str = DASH) -> str:
    """+0.123 -> '+12.3%'."""
    if missing(value):
        return dash
    if math.isinf(value):
        return "+∞" if value > 0 else "−∞"
    return f"{value * 100:+.1f}%".replace("-", "−")


def sqnr(value, dash: str = DASH) -> str:
    if missing(value):
        return dash
    if math.isinf(value):  # a store written before non-finite outputs were findings
        return "exact" if value > 0 else "−∞ dB"
    return "exact" if value >= SQNR_EXACT_DB else f"{value:.1f} dB"


def ci(low, high, digits: int = 3) -> str:
    """A confidence interval, everywhere the same way: '[0.950–1.020]'."""
    return f"[{float(low):.{digits}f}–{float(high):.{digits}f}]"


def cv(value, dash: str = DASH) -> str:
    """The coefficient of variation (std / mean), everywhere as a percentage: '3.4%'."""
    return share(value, dash)


def share(value, dash: str = DASH) -> str:
    return dash if missing(value) else infinite(value) or f"{value * 100:.1f}%"


def p_value(value, dash: str = DASH) -> str:
    if missing(value):
        return dash
    return "<0.001" if value < 1e-3 else f"{value:.3f}"


def first_line(text: str | None, limit: int = 160) -> str:
    """The first non-empty line of an error, shortened: tables show this, details show the rest."""
    if not text:
        return ""
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def when(iso: str | None) -> str:
    """'2025-11-27T03:00:12+00:00' -> '2025-11-27 03:00:12 UTC+00:00' (stays readable without parsing)."""
    if not iso:
        return DASH
    text = str(iso).replace("T", " ")
    if text.endswith("+00:00") or text.endswith("Z"):
        text = text.rsplit("+", 1)[0].rstrip("Z") + " UTC"
    return text


def metric(spec: tuple, value, *, plain: bool = False) -> str:
    """A registered metric's figure by its rendering spec (results/metrics.py: Metric.text / .plain);
    text tables leave a missing figure empty, HTML shows a dash."""
    kind, *args = spec
    dash = "" if plain else DASH
    if kind == "fixed":  # scripts parse these: fixed decimals, no thousands separator
        digits, divisor = args
        return "" if missing(value) or not value and divisor != 1 else f"{float(value) / divisor:.{digits}f}"
    formatter = {"ms": ms, "cv": cv, "bytes": bytes_, "num": num}[kind]
    return formatter(value, *args, dash=dash)
