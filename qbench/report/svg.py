"""Inline SVG charts drawn in Python: box plots, horizontal bars, scatter with a Pareto front, forest.

Why server-side: the report must open from a laptop's disk or a CI artifact with no network and no
library, and a static SVG also prints and survives a browser with JavaScript off. Hover text is the
SVG <title> element. Every string that reaches the markup goes through `esc` (suite strings such as
model names are data, never markup); numbers are formatted here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from qbench.report import fmt
from qbench.text import safe, safe_lines

FONT = 11  # px, the size of every label; titles are one step larger
INK, MUTED, GRID = "#1f2933", "#6b7785", "#e4e7eb"
PALETTE = ["#3b6fb6", "#e07b39", "#3f9e6e", "#c2485a", "#8a62b8", "#2ea3b5", "#b0892f", "#d46fa8", "#6d8f3a"]
FP32_COLOUR = "#8c96a3"
VERDICT_COLOURS = {"slower": "#c2485a", "faster": "#2f8f5b", "no significant change": "#6b7785"}
SHAPES = ("circle", "square", "triangle", "diamond", "triangle-down", "cross")


def esc(text) -> str:
    """XML-escaped, one line, control characters shown as escapes (qbench.text.safe)."""
    return str(escape(safe(text)))


def esc_tip(text) -> str:
    """A tooltip (<title>): as `esc`, but its own line breaks stay (names in it are one line already)."""
    return str(escape(safe_lines(text)))


def clip(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def colours_for(names: list[str]) -> dict[str, str]:
    """A stable colour per recipe (or run): fp32, the reference, is always grey."""
    out, i = {}, 0
    for name in names:
        if name in out:
            continue
        if name == "fp32":
            out[name] = FP32_COLOUR
        else:
            out[name] = PALETTE[i % len(PALETTE)]
            i += 1
    return out


def fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.0f}" if v == round(v) else f"{v:.1f}"
    if a >= 1:
        return f"{v:.1f}".rstrip("0").rstrip(".") if v != round(v) else f"{v:.0f}"
    return f"{v:.3g}"


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") if math.isfinite(x) else "0"  # NaN/inf: drawn at 0, never "nan"


# --------------------------------------------------------------------------- scales


class Axis:
    """Maps data values to pixels; log scale when the data span more than `log_above`×."""

    def __init__(self, lo: float, hi: float, p0: float, p1: float, *, log: bool = False, pad: float = 0.05,
                 zero: bool = False):
        lo, hi = _finite_span(lo, hi)
        if zero:
            lo = min(0.0, lo)
        if hi <= lo:
            hi, lo = (lo * 1.1, lo * 0.9) if lo > 0 else (lo + 1, lo - 1 if lo < 0 or not zero else 0)
        self.log = log and lo > 0
        if self.log:
            a, b = math.log10(lo), math.log10(hi)
            span = b - a
            self.lo, self.hi = a - span * pad, b + span * pad
        else:
            span = hi - lo
            self.lo = lo if zero and lo == 0 else lo - span * pad
            self.hi = hi + span * pad
        self.p0, self.p1 = p0, p1

    def __call__(self, v: float) -> float:
        if not math.isfinite(v) or (self.log and v <= 0):
            return self.p0  # a value the axis cannot place (NaN/inf from a store) sits at its start
        t = (math.log10(v) if self.log else v) - self.lo
        return self.p0 + (self.p1 - self.p0) * t / (self.hi - self.lo)

    def clamp(self, v: float) -> float:
        return min(max(self(v), min(self.p0, self.p1)), max(self.p0, self.p1))

    def ticks(self, n: int = 5) -> list[float]:
        if self.log:
            out = []
            for e in range(math.floor(self.lo), math.ceil(self.hi) + 1):
                for m in (1, 2, 5):
                    v = m * 10.0**e
                    if self.lo <= math.log10(v) <= self.hi:
                        out.append(v)
            return out if len(out) >= 2 else [10**self.lo, 10**self.hi]
        return nice_ticks(self.lo, self.hi, n)


def _finite_span(lo: float, hi: float) -> tuple[float, float]:
    """An axis range from data that may hold NaN/inf: the finite ends kept, the others made up."""
    lo = lo if math.isfinite(lo) else (hi - 1 if math.isfinite(hi) else 0.0)
    hi = hi if math.isfinite(hi) else lo + 1
    return lo, hi


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step) + 1)]


# --------------------------------------------------------------------------- building blocks


def _svg(width: int, height: float, parts: list[str], label: str, cls: str = "chart") -> Markup:
    return Markup(
        f'<svg class="{cls}" viewBox="0 0 {width} {_n(height)}" width="{width}" height="{_n(height)}" '
        f'role="img" aria-label="{esc(label)}" xmlns="http://www.w3.org/2000/svg" '
        f'font-size="{FONT}">' + "".join(parts) + "</svg>"
    )


def _text(x, y, text, *, anchor="start", cls="", fill=None, weight=None, size=None, title=None) -> str:
    attrs = f'x="{_n(x)}" y="{_n(y)}"'
    if anchor != "start":
        attrs += f' text-anchor="{anchor}"'
    if cls:
        attrs += f' class="{cls}"'
    if fill:
        attrs += f' fill="{fill}"'
    if weight:
        attrs += f' font-weight="{weight}"'
    if size:
        attrs += f' font-size="{size}"'
    inner = esc(text) + (f"<title>{esc(title)}</title>" if title else "")  # a clipped label's whole text
    return f"<text {attrs}>{inner}</text>"


def _line(x1, y1, x2, y2, stroke, width=1.0, dash=None) -> str:
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{stroke}" '
            f'stroke-width="{width}"{d}/>')


def _x_axis(ax: Axis, y_top: float, y_bottom: float, unit: str, n: int = 5) -> list[str]:
    """Vertical grid lines over [y_top, y_bottom] and tick labels under it."""
    parts = []
    for t in ax.ticks(n):
        x = ax(t)
        parts.append(_line(x, y_top, x, y_bottom, GRID))
        parts.append(_text(x, y_bottom + 13, fmt_tick(t), anchor="middle", fill=MUTED))
    if unit:
        parts.append(_text(ax.p1, y_bottom + 26, unit, anchor="end", fill=MUTED))
    return parts


def marker(shape: str, x: float, y: float, r: float, fill: str, stroke: str = "#fff", sw: float = 1.0) -> str:
    common = f'fill="{fill}" stroke="{stroke}" stroke-width="{sw}"'
    if shape == "square":
        return f'<rect x="{_n(x - r)}" y="{_n(y - r)}" width="{_n(2 * r)}" height="{_n(2 * r)}" {common}/>'
    if shape in ("triangle", "triangle-down"):
        s = 1 if shape == "triangle" else -1
        tip, base = y - s * r * 1.2, y + s * r * 0.8
        pts = f"{_n(x)},{_n(tip)} {_n(x - r * 1.1)},{_n(base)} {_n(x + r * 1.1)},{_n(base)}"
        return f'<polygon points="{pts}" {common}/>'
    if shape == "diamond":
        pts = f"{_n(x)},{_n(y - r * 1.3)} {_n(x + r * 1.1)},{_n(y)} {_n(x)},{_n(y + r * 1.3)} {_n(x - r * 1.1)},{_n(y)}"
        return f'<polygon points="{pts}" {common}/>'
    if shape == "cross":
        d = r * 0.9
        return (f'<path d="M{_n(x - d)} {_n(y - d)}L{_n(x + d)} {_n(y + d)}M{_n(x - d)} {_n(y + d)}L{_n(x + d)} '
                f'{_n(y - d)}" stroke="{fill}" stroke-width="2.2"/>')
    return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}" {common}/>'


def shape_icon(shape: str, colour: str = INK) -> Markup:
    """A 12 px legend icon for a scatter marker shape."""
    return Markup(f'<svg width="12" height="12" viewBox="0 0 12 12" aria-hidden="true">'
                  f'{marker(shape, 6, 6, 4, colour)}</svg>')


# --------------------------------------------------------------------------- box plot


@dataclass
class Box:
    label: str
    colour: str
    q1: float
    median: float
    q3: float
    lo: float  # whiskers (Tukey, 1.5 IQR, clipped to the data)
    hi: float
    n: int
    trial_medians: list[float] = field(default_factory=list)
    above: int = 0  # samples beyond the upper whisker (outliers), drawn as a count
    tooltip: str = ""


def box_stats(samples_ms, trials=None) -> dict:
    """Box-plot figures of raw samples; trial medians show how much processes differ."""
    import numpy as np

    x = np.asarray(samples_ms, dtype=float)
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    iqr = q3 - q1
    inside = x[(x >= q1 - 1.5 * iqr) & (x <= q3 + 1.5 * iqr)]
    out = {"q1": float(q1), "median": float(med), "q3": float(q3), "lo": float(inside.min()),
           "hi": float(inside.max()), "n": int(x.size), "above": int(np.sum(x > q3 + 1.5 * iqr)),
           "p99": float(np.percentile(x, 99)), "trial_medians": []}
    if trials is not None:
        t = np.asarray(trials)
        out["trial_medians"] = [float(np.median(x[t == k])) for k in np.unique(t)]
    return out


def box_panel(title: str, boxes: list[Box], unit: str = "ms", width: int = 640) -> Markup:
    """One row per box; consecutive boxes with the same label (one per run) share it."""
    labels = [fmt.ms(b.median) + (f"  +{b.above}›" if b.above else "") for b in boxes]
    left, row, top = 118, 20, 26
    right = max(76, 12 + 6.6 * max(len(t) for t in labels))  # the value labels stay inside the plot
    height = top + row * len(boxes) + 32
    lo = min(b.lo for b in boxes)
    hi = max(b.hi for b in boxes)
    ax = Axis(lo, hi, left, width - right, log=hi / max(lo, 1e-12) > 8)
    parts = [_text(0, 14, clip(title, 80), weight="600", size=FONT + 1, title=title)]
    parts += _x_axis(ax, top - 4, top + row * len(boxes), unit, n=7)
    for i, b in enumerate(boxes):
        yc = top + row * i + row / 2
        h = 11
        first = i == 0 or boxes[i - 1].label != b.label
        if first and i:
            parts.append(_line(8, yc - row / 2, width - right, yc - row / 2, GRID, 1, "1 2"))
        parts.append(f"<g><title>{esc_tip(b.tooltip)}</title>")
        if first:
            parts.append(_text(left - 8, yc + 4, clip(b.label, 18), anchor="end", fill=INK))
        parts.append(_line(ax(b.lo), yc, ax(b.hi), yc, b.colour, 1.2))
        for w in (b.lo, b.hi):
            parts.append(_line(ax(w), yc - 4, ax(w), yc + 4, b.colour, 1.2))
        x1, x3 = ax(b.q1), ax(b.q3)
        parts.append(f'<rect x="{_n(x1)}" y="{_n(yc - h / 2)}" width="{_n(max(x3 - x1, 1))}" height="{h}" '
                     f'fill="{b.colour}" fill-opacity="0.28" stroke="{b.colour}" stroke-width="1.2" rx="1.5"/>')
        parts.append(_line(ax(b.median), yc - h / 2, ax(b.median), yc + h / 2, INK, 2))
        for tm in b.trial_medians:
            parts.append(marker("diamond", ax.clamp(tm), yc + h / 2 + 3, 2.2, INK, "none", 0))
        parts.append(_text(width - right + 6, yc + 4, labels[i], fill=MUTED))
        parts.append("</g>")
    return _svg(width, height, parts, f"latency distribution: {title}")


# --------------------------------------------------------------------------- horizontal bars


@dataclass
class Bar:
    series: str
    value: float | None
    colour: str
    text: str = ""  # value label drawn after the bar (or instead of it when value is None)
    err: float | None = None  # +- whisker (1 sigma)
    tooltip: str = ""
    ci: tuple[float, float] | None = None  # an asymmetric whisker [low, high] (a confidence interval)


@dataclass
class BarGroup:
    label: str
    bars: list[Bar]


def hbar_panel(title: str, groups: list[BarGroup], *, unit: str = "", ref: float | None = None,
               ref_label: str = "", width: int = 640, label_width: int = 140) -> Markup:
    bar_h, gap, top = 13, 9, 26
    rows = sum(len(g.bars) for g in groups)
    plot_h = rows * (bar_h + 2) + gap * len(groups)
    height = top + plot_h + 34
    vals = [max(b.value + (b.err or 0), b.ci[1] if b.ci else 0) for g in groups for b in g.bars if b.value is not None]
    hi = max(vals + ([ref] if ref else []) + [1e-9])
    value_room = 12 + 6.4 * max((len(b.text) for g in groups for b in g.bars), default=4)  # ~px per char
    ax = Axis(0, hi, label_width, width - value_room, zero=True, pad=0.02)
    label_chars = int((label_width - 12) / 6.2)
    parts = [_text(0, 14, clip(title, 80), weight="600", size=FONT + 1, title=title)]
    parts += _x_axis(ax, top - 4, top + plot_h, unit)
    y = top
    for g in groups:
        gy = y
        for b in g.bars:
            parts.append(f"<g><title>{esc_tip(b.tooltip or b.text)}</title>")
            if b.value is None:
                parts.append(_text(ax(0) + 4, y + bar_h - 3, b.text or "n/a", fill=MUTED, cls="na"))
            else:
                x1 = ax(b.value)
                parts.append(f'<rect x="{_n(ax(0))}" y="{_n(y)}" width="{_n(max(x1 - ax(0), 0.8))}" '
                             f'height="{bar_h}" fill="{b.colour}" rx="1.5"/>')
                end = x1
                if b.err or b.ci:
                    lo, hi = b.ci or (b.value - b.err, b.value + b.err)
                    lo_x, hi_x = ax(max(lo, 0)), ax(hi)
                    parts.append(_line(lo_x, y + 3, lo_x, y + bar_h - 3, INK, 1) if b.ci else "")
                    parts.append(_line(lo_x, y + bar_h / 2, hi_x, y + bar_h / 2, INK, 1))
                    parts.append(_line(hi_x, y + 3, hi_x, y + bar_h - 3, INK, 1))
                    end = hi_x
                parts.append(_text(end + 4, y + bar_h - 3, b.text, fill=INK))
            parts.append("</g>")
            y += bar_h + 2
        parts.append(_text(label_width - 8, gy + (y - gy) / 2 + 3, clip(g.label, label_chars), anchor="end", fill=INK,
                           title=g.label))
        y += gap
    if ref is not None:
        xr = ax(ref)
        parts.append(_line(xr, top - 6, xr, top + plot_h, INK, 1, "4 3"))
        parts.append(_text(xr + 3, top - 8, ref_label, fill=MUTED))
    return _svg(width, height, parts, title)


# --------------------------------------------------------------------------- scatter + Pareto front


@dataclass
class Point:
    x: float
    y: float
    colour: str
    shape: str
    label: str
    tooltip: str
    group: str = ""  # points compete only within their group (one model): each group has its own front


def pareto_front(points: list[Point]) -> list[Point]:
    """Points no other point beats on both axes (lower x = faster, higher y = more accurate)."""
    front, best_y = [], -math.inf
    for p in sorted(points, key=lambda p: (p.x, -p.y)):
        if p.y > best_y:
            front.append(p)
            best_y = p.y
    return front


def scatter_panel(title: str, points: list[Point], *, xlabel: str, ylabel: str, y_cap: float | None = None,
                  cap_label: str = "exact", width: int = 640, height: int = 300) -> Markup:
    """y_cap: values at or above it (SQNR of bit-exact outputs) are drawn on a labelled top line."""
    left, right, top, bottom = 52, 18, 28, 40
    finite_y = [p.y for p in points if y_cap is None or p.y < y_cap]
    y_lo = min(finite_y) if finite_y else 0.0
    y_hi = max(finite_y) if finite_y else 1.0
    capped = y_cap is not None and any(p.y >= y_cap for p in points)
    y_draw_cap = y_hi + max((y_hi - y_lo) * 0.18, 2.0) if capped else None
    ys = [y_draw_cap if (capped and p.y >= y_cap) else p.y for p in points]
    xs = [p.x for p in points]
    ax = Axis(min(xs), max(xs), left, width - right, log=max(xs) / max(min(xs), 1e-12) > 8, pad=0.08)
    ay = Axis(min(ys), max(ys), height - bottom, top, pad=0.1)
    parts = [_text(0, 14, clip(title, 80), weight="600", size=FONT + 1, title=title)]
    parts += _x_axis(ax, top, height - bottom, "")
    parts.append(_text((left + width - right) / 2, height - 6, xlabel, anchor="middle", fill=MUTED))
    for t in ay.ticks(5):
        if capped and t > y_hi + (y_draw_cap - y_hi) / 2:
            continue
        parts.append(_line(left, ay(t), width - right, ay(t), GRID))
        parts.append(_text(left - 5, ay(t) + 4, fmt_tick(t), anchor="end", fill=MUTED))
    if capped:
        parts.append(_line(left, ay(y_draw_cap), width - right, ay(y_draw_cap), MUTED, 1, "2 3"))
        parts.append(_text(left - 5, ay(y_draw_cap) + 4, cap_label, anchor="end", fill=MUTED))
    parts.append(f'<text transform="translate(12 {_n((top + height - bottom) / 2)}) rotate(-90)" '
                 f'text-anchor="middle" fill="{MUTED}">{esc(ylabel)}</text>')
    ypos = {id(p): ay(y) for p, y in zip(points, ys)}
    on_front = set()
    for group in dict.fromkeys(p.group for p in points):
        front = pareto_front([p for p in points if p.group == group])
        on_front |= {id(p) for p in front}
        parts += _staircase(front, ax, ypos, group)
    return _scatter_points(title, points, on_front, ax, ypos, parts, width, height)


def _staircase(front: list[Point], ax: Axis, ypos: dict, group: str) -> list[str]:
    """One group's front as a dashed staircase: each front point is the best accuracy up to its latency."""
    if len(front) < 2:
        return []
    d = f"M{_n(ax(front[0].x))} {_n(ypos[id(front[0])])}"
    for p in front[1:]:
        d += f"H{_n(ax(p.x))}V{_n(ypos[id(p)])}"
    return [f'<path class="pareto" data-group="{esc(group)}" d="{d}" fill="none" stroke="{INK}" stroke-width="1.2" '
            f'stroke-dasharray="5 3" opacity="0.7"/>']


def _scatter_points(title: str, points: list[Point], on_front: set, ax: Axis, ypos: dict, parts: list[str],
                    width: int, height: float) -> Markup:
    for p in points:
        x, y = ax(p.x), ypos[id(p)]
        tip = p.tooltip + ((f" — on {safe(p.group)}'s Pareto front" if p.group else " — on the Pareto front")
                           if id(p) in on_front else "")
        parts.append(f"<g><title>{esc_tip(tip)}</title>")
        if id(p) in on_front:
            parts.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="8" fill="none" stroke="{INK}" stroke-width="1.2"/>')
        parts.append(marker(p.shape, x, y, 4.5, p.colour))
        parts.append("</g>")
    return _svg(width, height, parts, title)


# --------------------------------------------------------------------------- forest (ratios with CIs)


@dataclass
class Interval:
    label: str
    ratio: float
    low: float
    high: float
    verdict: str
    tooltip: str = ""


def forest_panel(title: str, rows: list[Interval], threshold: float, width: int = 1000) -> Markup:
    left, right, row, top = 320, 170, 18, 26
    height = top + row * len(rows) + 34
    lo = min([r.low for r in rows] + [1 - threshold * 2])
    hi = max([r.high for r in rows] + [1 + threshold * 2])
    ax = Axis(lo, hi, left, width - right, pad=0.04)
    parts = [_text(0, 14, title, weight="600", size=FONT + 1)]
    band_top, band_bottom = top - 4, top + row * len(rows)
    for i in range(1, len(rows), 2):  # zebra first, so the band and the grid stay visible on top
        parts.append(f'<rect x="0" y="{_n(top + row * i)}" width="{width}" height="{row}" fill="#f7f8fa"/>')
    parts.append(f'<rect x="{_n(ax(1 - threshold))}" y="{_n(band_top)}" '
                 f'width="{_n(ax(1 + threshold) - ax(1 - threshold))}" height="{_n(band_bottom - band_top)}" '
                 f'fill="#e9edf2" fill-opacity="0.8"/>')
    parts += _x_axis(ax, band_top, band_bottom, "new / base median")
    parts.append(_line(ax(1), band_top, ax(1), band_bottom, INK, 1))
    for i, r in enumerate(rows):
        yc = top + row * i + row / 2
        colour = VERDICT_COLOURS.get(r.verdict, MUTED)
        parts.append(f"<g><title>{esc_tip(r.tooltip)}</title>")
        parts.append(_text(left - 10, yc + 4, clip(r.label, 50), anchor="end", fill=INK))
        parts.append(_line(ax(r.low), yc, ax(r.high), yc, colour, 2))
        parts.append(marker("circle", ax(r.ratio), yc, 4, colour))
        parts.append(_text(width - right + 8, yc + 4, f"{r.ratio:.3f}× [{r.low:.3f}–{r.high:.3f}]", fill=colour))
        parts.append("</g>")
    return _svg(width, height, parts, title)


# --------------------------------------------------------------------------- lines (a sweep's axis)


@dataclass
class Series:
    name: str
    colour: str
    points: list[tuple[float, float, str]]  # (x, y, tooltip)


def line_panel(title: str, series: list[Series], *, xlabel: str, ylabel: str, ideal: bool = False,
               width: int = 640, height: int = 300) -> Markup:
    """y against a small integer x (threads), a polyline per series, a legend at the right.
    `ideal`: the dashed diagonal y = x / x_min (linear scaling) for reference; y = 1 is always drawn."""
    left, right, top, bottom = 52, 210, 28, 40
    xs = sorted({p[0] for s in series for p in s.points})
    ys = [p[1] for s in series for p in s.points] + [1.0]
    if ideal:
        ys.append(xs[-1] / xs[0])
    ax = Axis(xs[0], xs[-1], left, width - right, pad=0.06)
    ay = Axis(min(ys), max(ys), height - bottom, top, pad=0.1)
    parts = [_text(0, 14, clip(title, 80), weight="600", size=FONT + 1, title=title)]
    parts.append('<g class="y-grid">')
    for t in ay.ticks(5):
        parts.append(_line(left, ay(t), width - right, ay(t), GRID))
        parts.append(_text(left - 5, ay(t) + 4, fmt_tick(t), anchor="end", fill=MUTED))
    parts.append("</g>")
    for x in xs:  # only the measured values: threads are counts, not a continuum
        parts.append(_line(ax(x), top, ax(x), height - bottom, GRID))
        parts.append(_text(ax(x), height - bottom + 13, fmt_tick(x), anchor="middle", fill=MUTED))
    parts.append(_text((left + width - right) / 2, height - 6, xlabel, anchor="middle", fill=MUTED))
    parts.append(f'<text transform="translate(12 {_n((top + height - bottom) / 2)}) rotate(-90)" '
                 f'text-anchor="middle" fill="{MUTED}">{esc(ylabel)}</text>')
    parts.append(_line(left, ay(1.0), width - right, ay(1.0), MUTED, 1))
    if ideal and len(xs) > 1:
        parts.append(f'<g class="ideal"><title>linear scaling: {esc(fmt_tick(xs[-1] / xs[0]))}× at '
                     f'{esc(fmt_tick(xs[-1]))} threads</title>'
                     + _line(ax(xs[0]), ay(1.0), ax(xs[-1]), ay(xs[-1] / xs[0]), MUTED, 1, "4 3") + "</g>")
    for i, s in enumerate(series):
        pts = sorted(s.points)
        d = " ".join(f"{'M' if j == 0 else 'L'}{_n(ax(x))} {_n(ay(y))}" for j, (x, y, _) in enumerate(pts))
        parts.append(f'<g class="series" data-name="{esc(s.name)}"><path d="{d}" fill="none" stroke="{s.colour}" '
                     f'stroke-width="1.8"/>')
        for x, y, tip in pts:
            parts.append(f"<g><title>{esc_tip(tip)}</title>{marker('circle', ax(x), ay(y), 4, s.colour)}</g>")
        parts.append("</g>")
        ly = top + 6 + i * 16
        parts.append(_line(width - right + 12, ly, width - right + 30, ly, s.colour, 2.5))
        parts.append(_text(width - right + 35, ly + 4, clip(s.name, 30), title=s.name))
    return _svg(width, height, parts, title)
