"""The trend page: one self-contained HTML file (inline SVG, CSS and a small script; no network).

Why hand-made SVG rather than a chart library: a year of 64 cells is 64 small charts of 365 runs;
static paths paint at once and stay readable with JavaScript off, and nothing has to be inlined.
Zoom works without redrawing: each chart's plot area is a nested <svg> whose viewBox is in run
units (x = run index, y = 0..100), so zooming sets the viewBox of every plot to the same run range;
strokes use vector-effect="non-scaling-stroke" and change points are zero-length round-capped
strokes (dots that stay round when stretched). Hover text comes from one JSON block (run date, git
sha, versions; per chart the medians and CIs), shown with textContent. Every suite string goes
through `esc`.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

from qbench.report import fmt
from qbench.report.stats import FASTER, SLOWER
from qbench.report.svg import FP32_COLOUR, GRID, INK, MUTED, PALETTE, VERDICT_COLOURS, esc, nice_ticks

W, H, LEFT, TOP, BOTTOM, RIGHT = 340, 130, 44, 8, 18, 6


def write_trend(db, out: Path, suite: str | None = None, *, last: int | None = None, since: str | None = None,
                threshold: float = 0.05) -> tuple[Path, object]:
    """Write the trend page of the selected runs to `out`; returns (path, the trend DataFrame)."""
    from qbench.errors import UsageError
    from qbench.report.trend import trend

    df = trend(db, suite, last=last, since=since, threshold=threshold)
    if df.empty:
        raise UsageError("no run matches (check the suite name, --since and --last)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(df, threshold), encoding="utf-8")
    return out, df


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(f"{v:.4g}")


def render(df, threshold: float) -> str:
    runs = df.drop_duplicates("run_index").sort_values("run_index")
    n = int(runs["run_index"].max()) + 1
    run_list = [{"id": r.run_id, "date": r.started_at.strftime("%Y-%m-%d %H:%M"), "sha": r.git_sha or "",
                 "versions": f"qbench {r.qbench_version} · torch {r.torch_version} · executorch "
                             f"{r.executorch_version} · torchao {r.torchao_version}"}
                for r in runs.itertuples()]
    suite = str(df["suite"].iloc[0])
    charts, payload, moved = [], [], []
    # fp32-vs-int8 speedup per device: geometric mean over models, one line per quantized recipe
    q = df[(df["recipe_kind"] != "fp32") & df["speedup_vs_fp32"].notna()]
    for device, g in q.groupby("device", sort=True):
        series = []
        for i, (recipe, gr) in enumerate(g.groupby("recipe", sort=True)):
            geo = gr.groupby("run_index")["speedup_vs_fp32"].apply(lambda s: math.exp(s.map(math.log).mean()))
            ys = [geo.get(k, math.nan) for k in range(n)]
            series.append({"name": recipe, "colour": PALETTE[i % len(PALETTE)], "y": ys})
        k = len(payload)
        payload.append({"title": f"{device}: speedup over fp32", "unit": "×",
                        "series": [{"name": s["name"], "y": [_num(v) for v in s["y"]]} for s in series]})
        charts.append(("speedup", device, _chart(k, series, n, unit="×", legend=True, width=2 * W)))
    cells = df.groupby(["device", "model", "recipe", "sweep"], sort=True)  # a sweep point is a line of its own
    cell_html = []
    for (device, model, recipe, point), g in cells:
        title = " · ".join(p for p in (model, recipe, device, point) if p)
        g = g.set_index("run_index")
        med = [g["median_ms"].get(k, math.nan) for k in range(n)]
        lo = [g["ci_low_ms"].get(k, math.nan) for k in range(n)]
        hi = [g["ci_high_ms"].get(k, math.nan) for k in range(n)]
        marks = [(int(k), r.verdict, r) for k, r in g[g["change_point"]].iterrows()]
        k = len(payload)
        verdict_codes = [{SLOWER: "s", FASTER: "f"}.get(g["verdict"].get(i), "") for i in range(n)]
        payload.append({"title": title, "unit": "ms",
                        "series": [{"name": "median", "y": [_num(v) for v in med], "lo": [_num(v) for v in lo],
                                    "hi": [_num(v) for v in hi], "v": verdict_codes,
                                    "r": [_num(g["ratio"].get(i, math.nan)) for i in range(n)]}]})
        colour = FP32_COLOUR if (g["recipe_kind"] == "fp32").all() else PALETTE[0]
        svg = _chart(k, [{"name": "median", "colour": colour, "y": med, "lo": lo, "hi": hi}], n, unit="ms",
                     marks=[(i, v, run_list[i]["id"]) for i, v, _ in marks])
        notes = []
        for i, v, r in marks:
            moved.append({"chart": k, "title": title, "verdict": v,
                          "ratio": r.ratio, "low": r.ratio_low, "high": r.ratio_high, "run": run_list[i]})
            notes.append(f'<li class="{"slower" if v == SLOWER else "faster"}">{esc(v)} ×{r.ratio:.3f} '
                         f'{fmt.ci(r.ratio_low, r.ratio_high)} from <b>{esc(run_list[i]["date"][:10])}</b> '
                         f'({esc(run_list[i]["id"])}, {esc(run_list[i]["sha"][:10])})</li>')
        cell_html.append(
            f'<figure class="cell" id="chart-{k}" data-model="{esc(model)}" data-recipe="{esc(recipe)}" '
            f'data-device="{esc(device)}" data-sweep="{esc(point)}"><figcaption>{esc(title)}</figcaption>'
            f'{svg}<ul class="moved">{"".join(notes)}</ul></figure>')
    moved.sort(key=lambda m: (m["verdict"] != SLOWER, -abs(math.log(m["ratio"]))))  # regressions, worst first
    data = {"runs": run_list, "charts": payload}
    block = json.dumps(data, separators=(",", ":"), allow_nan=False)
    block = block.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    rows = "".join(
        f'<tr class="{"slower" if m["verdict"] == SLOWER else "faster"}"><td><a href="#chart-{m["chart"]}">'
        f'{esc(m["title"])}</a></td><td>{esc(m["verdict"])}</td>'
        f'<td>×{m["ratio"]:.3f} {fmt.ci(m["low"], m["high"])}</td><td>{esc(m["run"]["date"][:10])}</td>'
        f'<td>{esc(m["run"]["id"])}</td><td><code>{esc(m["run"]["sha"][:12])}</code></td></tr>' for m in moved)
    speed = "".join(f'<figure class="cell wide" id="chart-{i}"><figcaption>{esc(dev)}: fp32 median / quantized '
                    f'median (geometric mean over models)</figcaption>{svg}</figure>'
                    for i, (_, dev, svg) in enumerate(charts))
    first, last = run_list[0], run_list[-1]
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>qbench trend · {esc(suite)}</title><style>{CSS}</style></head><body>
<header><h1>qbench trend · {esc(suite)}</h1>
<p>{n} runs from {esc(first["date"])} to {esc(last["date"])} · {len(cell_html)} cells · generated {generated}</p>
<p class="muted">Each point: the cell's median with its 95% CI (bootstrap over trials). A change point is the first
run where the cell moved: the run's samples compared with the cell's current reference run by the ratio of
medians (hierarchical bootstrap, the same statistics as <code>qbench compare</code>), beyond the
{threshold:.0%} threshold; that run then becomes the reference.</p></header>
<section><h2>What moved ({len(moved)})</h2>
{"<table id='moved'><thead><tr><th>cell</th><th>verdict</th><th>ratio [95% CI] vs reference</th><th>first run</th><th>run id</th><th>git sha</th></tr></thead><tbody>" + rows + "</tbody></table>" if moved else "<p>No cell moved beyond the threshold in this window.</p>"}
</section>
<nav id="zoom">Zoom: drag across any chart (all charts follow), double-click to reset.
<button data-last="30">last 30 runs</button><button data-last="90">last 90 runs</button><button data-last="0">all</button>
<span id="range"></span></nav>
<section><h2>fp32 vs quantized speedup per device</h2><div class="grid">{speed}</div></section>
<section><h2>Cells</h2><div class="grid">{"".join(cell_html)}</div></section>
<div id="tip" hidden></div>
<script type="application/json" id="trend-data">{block}</script>
<script>{JS}</script></body></html>
"""


def _chart(k: int, series: list[dict], n: int, *, unit: str, marks=(), legend: bool = False, width: int = W) -> str:
    vals = [v for s in series for key in ("y", "lo", "hi") for v in s.get(key, ()) if v == v and v is not None]
    if not vals:
        vals = [0.0, 1.0]
    ticks = nice_ticks(min(vals), max(vals), 3)
    y0, y1 = min(ticks[0], min(vals)), max(ticks[-1], max(vals))
    span = (y1 - y0) or 1.0
    pw, ph = width - LEFT - RIGHT, H - TOP - BOTTOM
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0  # 1.95 / 2 / 2.05, never 2 / 2 / 2
    xw = max(n - 1, 1)

    def y(v):
        return f"{100 - (v - y0) / span * 100:.1f}"

    parts = []
    for t in ticks:
        ty = TOP + (1 - (t - y0) / span) * ph
        parts.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="{GRID}"/>'
                     f'<text x="{LEFT - 4}" y="{ty + 3:.1f}" text-anchor="end">{t:.{decimals}f}</text>')
    parts.append(f'<text x="{LEFT - 4}" y="{H - 4}" text-anchor="end" class="unit">{esc(unit)}</text>'
                 f'<text x="{LEFT}" y="{H - 4}" class="x0"></text>'
                 f'<text x="{width - RIGHT}" y="{H - 4}" text-anchor="end" class="x1"></text>')
    inner = []
    for s in series:
        if "lo" in s:
            inner.append(f'<path class="band" d="{_band(s["lo"], s["hi"], y)}" fill="{s["colour"]}" '
                         f'fill-opacity="0.18" stroke="none"/>')
        inner.append(f'<path class="line" d="{_line(s["y"], y)}" fill="none" stroke="{s["colour"]}" '
                     f'stroke-width="1.4" vector-effect="non-scaling-stroke"/>')
    for i, verdict, run_id in marks:
        c = VERDICT_COLOURS[verdict]
        v = series[0]["y"][i]
        inner.append(f'<path class="cp {"slower" if verdict == SLOWER else "faster"}" data-run="{esc(run_id)}" '
                     f'data-index="{i}" d="M{i} 0V100" stroke="{c}" stroke-dasharray="3 3" '
                     f'vector-effect="non-scaling-stroke"/><path class="dot" d="M{i} {y(v)}h0" stroke="{c}" '
                     f'stroke-width="8" stroke-linecap="round" vector-effect="non-scaling-stroke"/>')
    if legend:
        parts.append("".join(f'<text x="{LEFT + 90 + 110 * j}" y="{H - 4}" fill="{s["colour"]}" '
                             f'class="legend">{esc(s["name"])}</text>' for j, s in enumerate(series)))
    plot = (f'<svg class="plot" data-chart="{k}" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" '
            f'viewBox="0 0 {xw} 100" preserveAspectRatio="none">'
            f'<rect width="{xw}" height="100" fill="transparent"/>{"".join(inner)}</svg>')
    return (f'<svg class="chart" width="{width}" height="{H}" viewBox="0 0 {width} {H}" role="img" '
            f'style="font: 10px sans-serif; fill: {MUTED}">{"".join(parts)}{plot}'
            f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + ph}" stroke="{INK}" stroke-width="0.5"/></svg>')


def _segments(ys):
    seg = []
    for i, v in enumerate(ys):
        if v is None or v != v:
            if seg:
                yield seg
            seg = []
        else:
            seg.append(i)
    if seg:
        yield seg


def _line(ys, y) -> str:
    out = []
    for seg in _segments(ys):
        out.append("M" + "L".join(f"{i} {y(ys[i])}" for i in seg) + ("h0" if len(seg) == 1 else ""))
    return "".join(out)


def _band(lo, hi, y) -> str:
    out = []
    for seg in _segments(lo):
        if len(seg) > 1:
            out.append("M" + "L".join(f"{i} {y(hi[i])}" for i in seg) + "L"
                       + "L".join(f"{i} {y(lo[i])}" for i in reversed(seg)) + "Z")
    return "".join(out)


CSS = """
body{font:14px/1.4 system-ui,sans-serif;color:#1f2933;margin:16px 24px;max-width:1500px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:18px 0 8px}.muted{color:#6b7785;max-width:70em}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #e4e7eb;text-align:left}
tr.slower td:nth-child(2),li.slower{color:#c2485a}tr.faster td:nth-child(2),li.faster{color:#2f8f5b}
.grid{display:flex;flex-wrap:wrap;gap:10px}figure.cell{margin:0;border:1px solid #e4e7eb;padding:4px;width:342px}
figure.wide{width:auto}figcaption{font-size:12px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
ul.moved{margin:2px 0 0;padding-left:16px;font-size:11px}svg .plot{cursor:crosshair}
#zoom{position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #e4e7eb;z-index:2}
#zoom button{margin-left:6px}#tip{position:fixed;background:#fff;border:1px solid #6b7785;padding:4px 8px;
font-size:12px;pointer-events:none;white-space:pre;z-index:3;box-shadow:0 1px 4px #0003}
"""

JS = """
(() => {
  const data = JSON.parse(document.getElementById('trend-data').textContent);
  const n = data.runs.length, plots = Array.from(document.querySelectorAll('svg.plot'));
  const tip = document.getElementById('tip');
  let view = [0, Math.max(n - 1, 1)];
  function zoom(a, b) {
    a = Math.max(0, Math.floor(a)); b = Math.min(Math.max(n - 1, 1), Math.ceil(b));
    if (b - a < 1) return;
    view = [a, b];
    for (const p of plots) p.setAttribute('viewBox', a + ' 0 ' + (b - a) + ' 100');
    for (const t of document.querySelectorAll('text.x0')) t.textContent = data.runs[a].date.slice(0, 10);
    for (const t of document.querySelectorAll('text.x1')) t.textContent = data.runs[Math.min(b, n - 1)].date.slice(0, 10);
    document.getElementById('range').textContent = ' showing runs ' + (a + 1) + '–' + (Math.min(b, n - 1) + 1) + ' of ' + n;
  }
  function at(p, ev) {
    const r = p.getBoundingClientRect();
    return view[0] + (ev.clientX - r.left) / r.width * (view[1] - view[0]);
  }
  const fmt = (v) => v === null || v === undefined ? '–' : String(v);
  let start = null;
  for (const p of plots) {
    const chart = data.charts[+p.dataset.chart];
    p.addEventListener('mousemove', (ev) => {
      const i = Math.round(at(p, ev)); if (i < 0 || i >= n) { tip.hidden = true; return; }
      const run = data.runs[i];
      const lines = [chart.title, run.date + '  ' + run.id, 'git ' + run.sha, run.versions];
      for (const s of chart.series) {
        let line = s.name + ': ' + fmt(s.y[i]) + ' ' + chart.unit;
        if (s.lo) line += ' [' + fmt(s.lo[i]) + ', ' + fmt(s.hi[i]) + ']';
        if (s.v && s.v[i]) line += '  ' + (s.v[i] === 's' ? 'SLOWER' : 'FASTER') + ' ×' + fmt(s.r[i]) + ' (change point)';
        lines.push(line);
      }
      tip.textContent = lines.join('\\n'); tip.hidden = false;
      tip.style.left = Math.min(ev.clientX + 12, innerWidth - 420) + 'px'; tip.style.top = (ev.clientY + 12) + 'px';
    });
    p.addEventListener('mouseleave', () => { tip.hidden = true; });
    p.addEventListener('mousedown', (ev) => { start = at(p, ev); ev.preventDefault(); });
    p.addEventListener('mouseup', (ev) => {
      if (start === null) return;
      const end = at(p, ev); const a = Math.min(start, end), b = Math.max(start, end); start = null;
      if (b - a >= 1) zoom(a, b);
    });
    p.addEventListener('dblclick', () => zoom(0, n - 1));
  }
  for (const b of document.querySelectorAll('#zoom button')) {
    b.addEventListener('click', () => { const k = +b.dataset.last; zoom(k ? n - k : 0, n - 1); });
  }
  window.qbenchTrendZoom = zoom;
  zoom(0, n - 1);
})();
"""
