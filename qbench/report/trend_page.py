"""The trend page: one self-contained HTML file (inline SVG, CSS and a small script; no network).

Why hand-made SVG rather than a chart library: a year of 64 cells is 64 small charts of 365 runs;
static paths paint at once and stay readable with JavaScript off, and nothing has to be inlined. The
zoom, the filters (model, recipe, device: they only hide figures, all data is in the page) and a
point's link to its run's page are ~120 lines of script; a small inlined library (uPlot, ~45 kB
minified) would add its weight to every page and redraw 64 canvases on zoom, for no behaviour these
lines lack. The page uses the report's stylesheet (templates/report.css), so both look alike.
Zoom works without redrawing: each chart's plot area is a nested <svg> whose viewBox is in run
units (x = run index, y = 0..100), so zooming sets the viewBox of every plot to the same run range;
strokes use vector-effect="non-scaling-stroke" and change points are zero-length round-capped
strokes (dots that stay round when stretched). Hover text comes from one JSON block (run date, git
sha, versions; per chart the medians and CIs), shown with textContent. Every suite string goes
through `esc`.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

from qbench import strict_json
from qbench.report import fmt
from qbench.report.svg import FP32_COLOUR, GRID, INK, MUTED, PALETTE, VERDICT_COLOURS, esc, nice_ticks
from qbench.stats import FASTER, SLOWER

W, H, LEFT, TOP, BOTTOM, RIGHT = 340, 130, 44, 8, 18, 6


def write_trend(db, out: Path, suite: str | None = None, *, last: int | None = None, since: str | None = None,
                threshold: float = 0.05) -> tuple[Path, object]:
    """Write the trend page of the selected runs to `out`; returns (path, the trend DataFrame). A run whose
    page (`<run_id>/index.html`, as `qbench run` writes it) exists beside `out` is linked from its points."""
    from qbench.errors import UsageError
    from qbench.results.cell_trends import trend

    df = trend(db, suite, last=last, since=since, threshold=threshold)
    if df.empty:
        raise UsageError("no run matches (check the suite name, --since and --last)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(df, threshold, beside=out.parent), encoding="utf-8")
    return out, df


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(f"{v:.4g}")


RUN_PAGES = ("index.html", "report.html")  # what `qbench run` and `qbench report` write in reports/<run_id>/


def _runs(df, beside: Path | None) -> list[dict]:
    """One entry per run, in order: id, date-time, sha ('' when none), versions, and its page's relative
    link when that page exists beside the trend page."""
    runs = df.drop_duplicates("run_index").sort_values("run_index")
    out = []
    for r in runs.itertuples():
        page = next((f"{r.run_id}/{name}" for name in RUN_PAGES
                     if beside is not None and (beside / r.run_id / name).is_file()), "")
        out.append({"id": r.run_id, "date": r.started_at.strftime("%Y-%m-%d %H:%M"), "sha": r.git_sha or "",
                    "href": page, "versions": f"qbench {r.qbench_version} · torch {r.torch_version} · executorch "
                                              f"{r.executorch_version} · torchao {r.torchao_version}"})
    return out


def _run_words(run: dict) -> str:
    """'run-id, sha' or just 'run-id' when the run has no git sha (never 'run-id, ')."""
    return ", ".join(p for p in (run["id"], run["sha"][:10]) if p)


def _speedup_charts(df, n: int, payload: list) -> list[str]:
    """Per device: fp32 median / quantized median, geometric mean over models, one line per recipe."""
    figures = []
    q = df[(df["recipe_kind"] != "fp32") & df["speedup_vs_fp32"].notna()]
    for device, g in q.groupby("device", sort=True):
        series = []
        for i, (recipe, gr) in enumerate(g.groupby("recipe", sort=True)):
            geo = gr.groupby("run_index")["speedup_vs_fp32"].apply(lambda s: math.exp(s.map(math.log).mean()))
            series.append({"name": recipe, "colour": PALETTE[i % len(PALETTE)], "y": [geo.get(k, math.nan)
                                                                                      for k in range(n)]})
        k = len(payload)
        payload.append({"title": f"{device}: speedup over fp32", "unit": "×",
                        "series": [{"name": s["name"], "y": [_num(v) for v in s["y"]]} for s in series]})
        legend = "".join(f'<span class="key"><i style="background:{s["colour"]}"></i>{esc(s["name"])}</span>'
                         for s in series)
        figures.append(f'<figure class="cell wide" id="chart-{k}" data-device="{esc(device)}"><figcaption>'
                       f'{esc(device)}: fp32 median / quantized median (geometric mean over models)</figcaption>'
                       f'<div class="legend">{legend}</div>{_chart(k, series, n, unit="×", width=2 * W)}</figure>')
    return figures


def _cell_charts(df, n: int, run_list: list[dict], payload: list, moved: list) -> list[str]:
    """One chart per cell (a sweep point is a line of its own), its change points listed under it."""
    figures = []
    for (device, model, recipe, point), g in df.groupby(["device", "model", "recipe", "sweep"], sort=True):
        title = " · ".join(p for p in (model, recipe, device, point) if p)
        g = g.set_index("run_index")
        med, lo, hi = ([g[col].get(k, math.nan) for k in range(n)] for col in ("median_ms", "ci_low_ms", "ci_high_ms"))
        marks = [(int(k), r.verdict, r) for k, r in g[g["change_point"]].iterrows()]
        k = len(payload)
        payload.append({"title": title, "unit": "ms",
                        "series": [{"name": "median", "y": [_num(v) for v in med], "lo": [_num(v) for v in lo],
                                    "hi": [_num(v) for v in hi],
                                    "v": [{SLOWER: "s", FASTER: "f"}.get(g["verdict"].get(i), "") for i in range(n)],
                                    "r": [_num(g["ratio"].get(i, math.nan)) for i in range(n)]}]})
        colour = FP32_COLOUR if (g["recipe_kind"] == "fp32").all() else PALETTE[0]
        svg = _chart(k, [{"name": "median", "colour": colour, "y": med, "lo": lo, "hi": hi}], n, unit="ms",
                     marks=[(i, v, run_list[i]["id"]) for i, v, _ in marks])
        notes = []
        for i, v, r in marks:
            moved.append({"chart": k, "title": title, "verdict": v,
                          "ratio": r.ratio, "low": r.ratio_low, "high": r.ratio_high, "run": run_list[i]})
            notes.append(f'<li class="{"slower" if v == SLOWER else "faster"}">{esc(v)} ×{r.ratio:.3f} '
                         f'{fmt.ci(r.ratio_low, r.ratio_high)} from <b>{esc(run_list[i]["date"])}</b> '
                         f'({esc(_run_words(run_list[i]))})</li>')
        figures.append(
            f'<figure class="cell" id="chart-{k}" data-model="{esc(model)}" data-recipe="{esc(recipe)}" '
            f'data-device="{esc(device)}" data-sweep="{esc(point)}"><figcaption title="{esc(title)}">{esc(title)}'
            f'</figcaption>{svg}<ul class="moved">{"".join(notes)}</ul></figure>')
    return figures


def _moved_rows(moved: list[dict]) -> str:
    moved.sort(key=lambda m: (m["verdict"] != SLOWER, -abs(math.log(m["ratio"]))))  # regressions, worst first
    rows = []
    for m in moved:
        run = m["run"]
        name = (f'<a href="{esc(run["href"])}">{esc(run["id"])}</a>' if run["href"] else esc(run["id"]))
        rows.append(f'<tr class="{"slower" if m["verdict"] == SLOWER else "faster"}"><td><a href="#chart-{m["chart"]}">'
                    f'{esc(m["title"])}</a></td><td>{esc(m["verdict"])}</td>'
                    f'<td class="num">×{m["ratio"]:.3f} {fmt.ci(m["low"], m["high"])}</td>'
                    f'<td>{esc(run["date"])}</td>'
                    f'<td>{name}</td><td><code>{esc(run["sha"][:12]) or "—"}</code></td></tr>')
    return "".join(rows)


def _trust(df, run_list: list[dict], moved: list[dict], threshold: float) -> str:
    """The first screen's line of what to trust: how many points are missing (failed or unmeasured
    cells) and in which runs, and what a change point needs."""
    missing = df[df["median_ms"].isna()]
    runs_hit = sorted(set(missing["run_index"]))
    where = ", ".join(esc(run_list[i]["date"]) for i in runs_hit[:4]) + (" …" if len(runs_hit) > 4 else "")
    gaps = (f'<a href="#cells" class="bad">{len(missing)} cell-run(s) without a median</a> (failed or not '
            f'measured) in {len(runs_hit)} run(s): {where}' if len(missing) else "every cell has a median in every run")
    return (f'<p class="trust-line"><b>What to trust:</b> {len(run_list)} runs · {gaps} · '
            f'{len(moved)} change point(s), each a move beyond ±{threshold:.0%} whose whole 95% CI clears it; '
            "a band is a median's 95% CI (bootstrap over trials).</p>")


def _filters(df) -> str:
    out = []
    for key, label in (("model", "all models"), ("recipe", "all recipes"), ("device", "all devices")):
        values = sorted(df[key].unique(), key=str.lower)
        options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
        out.append(f'<select data-filter="{key}" id="filter-{key}" aria-label="{key}"><option value="">{label}</option>'
                   f'{options}</select>')
    return "".join(out)


def render(df, threshold: float, beside: Path | None = None) -> str:
    run_list = _runs(df, beside)
    n = len(run_list)
    suite = str(df["suite"].iloc[0])
    payload, moved = [], []
    speed = _speedup_charts(df, n, payload)
    cells = _cell_charts(df, n, run_list, payload, moved)
    rows = _moved_rows(moved)
    block = strict_json.dumps({"runs": run_list, "charts": payload}, separators=(",", ":"))
    block = block.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    first, last = run_list[0], run_list[-1]
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    table = (f"<div class='scroll'><table id='moved' class='data'><thead><tr><th>cell</th><th>verdict</th>"
             f"<th class='num'>ratio [95% CI] vs reference</th><th>first run</th><th>run id</th><th>git sha</th></tr>"
             f"</thead><tbody>{rows}</tbody></table></div>" if moved
             else "<p>No cell moved beyond the threshold in this window.</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>qbench trend · {esc(suite)}</title><style>{_report_css()}{CSS}</style></head><body>
<header class="top"><div class="wrap"><div class="brand">qbench trend</div><h1>{esc(suite)}</h1>
<p class="meta">{n} runs from {esc(first["date"])} to {esc(last["date"])} UTC · {len(cells)} cells · generated {generated}</p>
</div></header>
<nav><div class="wrap"><a href="#trust">Trust</a><a href="#moved-section">What moved</a><a href="#speedup">Speedup</a>
<a href="#cells">Cells</a></div></nav>
<main class="wrap">
<section id="trust" class="panel trust{" clean" if df["median_ms"].notna().all() else ""}">{_trust(df, run_list, moved, threshold)}</section>
<section class="panel" id="moved-section"><h2>What moved ({len(moved)})</h2>
<p class="caption">A change point is the first run where the cell moved: the run's samples compared with the cell's
current reference run by the ratio of medians (hierarchical bootstrap, the same statistics as <code>qbench
compare</code>), beyond the {threshold:.0%} threshold; that run then becomes the reference.</p>{table}</section>
<div id="zoom" class="filters"><span class="muted small">Show</span>{_filters(df)}
<span class="zoom-buttons"><button data-last="30">last 30 runs</button><button data-last="90">last 90 runs</button><button
data-last="0">all</button></span><span id="range" class="muted small"></span>
<span class="muted small hint">Drag across a chart to zoom (all follow), double-click to reset; click a point to open its
run's page.</span></div>
<section class="panel" id="speedup"><h2>fp32 vs quantized speedup per device</h2><div class="grid">{"".join(speed)}</div></section>
<section class="panel" id="cells"><h2>Cells</h2>
<p class="caption">Each dot: one run's median ({sum(1 for r in run_list if r["href"])} of {n} runs have a page beside
this one; click to open it); band: its 95% CI; dashed: a change point.</p>
<div class="grid">{"".join(cells)}</div><p id="filter-empty" class="empty" hidden>No cell matches the filters.</p></section>
</main>
<div id="tip" hidden></div>
<script type="application/json" id="trend-data">{block}</script>
<script>{JS}</script></body></html>
"""


def _report_css() -> str:
    """The report's own stylesheet, so a trend page looks like the pages it links to."""
    return (Path(__file__).parent / "templates" / "report.css").read_text(encoding="utf-8")


def _chart(k: int, series: list[dict], n: int, *, unit: str, marks=(), width: int = W) -> str:
    """A chart of one or more series over run index: the outer SVG holds the y axis and the date-time
    ticks (`g.xticks`, set by the script for the shown range), the nested one the lines in run units."""
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
                 f'<g class="xticks" data-left="{LEFT}" data-width="{pw}" data-y="{H - 4}"></g>')
    inner = []
    for s in series:
        if "lo" in s:
            inner.append(f'<path class="band" d="{_band(s["lo"], s["hi"], y)}" fill="{s["colour"]}" '
                         f'fill-opacity="0.18" stroke="none"/>')
        inner.append(f'<path class="line" d="{_line(s["y"], y)}" fill="none" stroke="{s["colour"]}" '
                     f'stroke-width="1.4" vector-effect="non-scaling-stroke"/>')
        inner.append(f'<path class="runs" d="{_dots(s["y"], y)}" stroke="{s["colour"]}" stroke-width="4" '
                     f'stroke-linecap="round" vector-effect="non-scaling-stroke"/>')  # a marker per run
    for i, verdict, run_id in marks:
        c = VERDICT_COLOURS[verdict]
        v = series[0]["y"][i]
        inner.append(f'<path class="cp {"slower" if verdict == SLOWER else "faster"}" data-run="{esc(run_id)}" '
                     f'data-index="{i}" d="M{i} 0V100" stroke="{c}" stroke-dasharray="3 3" '
                     f'vector-effect="non-scaling-stroke"/><path class="dot" d="M{i} {y(v)}h0" stroke="{c}" '
                     f'stroke-width="8" stroke-linecap="round" vector-effect="non-scaling-stroke"/>')
    plot = (f'<svg class="plot" data-chart="{k}" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" '
            f'viewBox="0 0 {xw} 100" preserveAspectRatio="none">'
            f'<rect width="{xw}" height="100" fill="transparent"/>{"".join(inner)}</svg>')
    return (f'<svg class="chart" width="{width}" height="{H}" viewBox="0 0 {width} {H}" role="img" '
            f'style="font: 10px sans-serif; fill: {MUTED}">{"".join(parts)}{plot}'
            f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + ph}" stroke="{INK}" stroke-width="0.5"/></svg>')


def _dots(ys, y) -> str:
    """A zero-length, round-capped stroke at every run with a value: a dot per run that stays round when
    the plot's viewBox stretches (zoom)."""
    return "".join(f"M{i} {y(v)}h0" for i, v in enumerate(ys) if v is not None and v == v)


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
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(340px,100%),1fr));gap:10px}
figure.cell{margin:0;border:1px solid var(--line);border-radius:6px;padding:6px;min-width:0}
figure.wide{grid-column:1/-1;max-width:700px}
figcaption{font-size:12px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
ul.moved{margin:2px 0 0;padding-left:16px;font-size:11px}li.slower,tr.slower td:nth-child(2){color:var(--bad)}
li.faster,tr.faster td:nth-child(2){color:var(--good)}svg .plot{cursor:crosshair}
#zoom{position:sticky;top:33px;z-index:6;background:var(--bg);padding:8px 0;margin-bottom:8px}
#zoom button{font:inherit;font-size:12px;padding:2px 9px;border:1px solid #cfd5dc;border-radius:12px;background:#fff;
cursor:pointer;margin-right:4px}
#tip{position:fixed;background:#fff;border:1px solid var(--muted);padding:4px 8px;font-size:12px;pointer-events:none;
white-space:pre-wrap;max-width:min(420px,90vw);z-index:7;box-shadow:0 1px 4px #0003}
figure[hidden]{display:none}
section,figure.cell,svg.plot{scroll-margin-top:140px}  /* below the sticky nav and filters */
@media (max-width:700px){#zoom{position:static}}  /* a phone keeps its screen for the charts */
"""

JS = """
(() => {
  const data = JSON.parse(document.getElementById('trend-data').textContent);
  const n = data.runs.length, plots = Array.from(document.querySelectorAll('svg.plot'));
  const tip = document.getElementById('tip'), SVG = 'http://www.w3.org/2000/svg';
  let view = [0, Math.max(n - 1, 1)];
  function ticks(a, b) {  // about four date-time ticks over the shown runs; the date only where it changes
    const last = Math.min(b, n - 1), step = Math.max(1, Math.ceil((last - a) / 3)), out = [];
    for (let i = a; i <= last; i += step) out.push(i);
    if (out[out.length - 1] !== last && last - out[out.length - 1] >= step / 2) out.push(last);
    return out;
  }
  function drawTicks(a, b) {
    const idx = ticks(a, b);
    for (const g of document.querySelectorAll('g.xticks')) {
      g.textContent = '';
      const left = +g.dataset.left, width = +g.dataset.width;
      let prev = '';
      idx.forEach((i, j) => {
        const t = document.createElementNS(SVG, 'text'), d = data.runs[i].date;
        t.setAttribute('x', left + (i - a) / Math.max(b - a, 1) * width); t.setAttribute('y', g.dataset.y);
        t.setAttribute('text-anchor', j === 0 ? 'start' : (j === idx.length - 1 ? 'end' : 'middle'));
        t.textContent = d.slice(0, 10) === prev ? d.slice(11) : d.slice(5); prev = d.slice(0, 10);
        g.appendChild(t);
      });
    }
  }
  function zoom(a, b) {
    a = Math.max(0, Math.floor(a)); b = Math.min(Math.max(n - 1, 1), Math.ceil(b));
    if (b - a < 1) return;
    view = [a, b];
    for (const p of plots) p.setAttribute('viewBox', a + ' 0 ' + (b - a) + ' 100');
    drawTicks(a, b);
    document.getElementById('range').textContent = ' showing runs ' + (a + 1) + '–' + (Math.min(b, n - 1) + 1) + ' of ' + n;
  }
  function at(p, ev) {
    const r = p.getBoundingClientRect();
    return view[0] + (ev.clientX - r.left) / r.width * (view[1] - view[0]);
  }
  const fmt = (v) => v === null || v === undefined ? '–' : String(v);
  let start = null, moved = false;
  for (const p of plots) {
    const chart = data.charts[+p.dataset.chart];
    p.addEventListener('mousemove', (ev) => {
      const i = Math.round(at(p, ev)); if (i < 0 || i >= n) { tip.hidden = true; return; }
      const run = data.runs[i];
      const lines = [chart.title, run.date + ' UTC  ' + run.id, run.sha ? 'git ' + run.sha : 'git: none recorded',
                     run.versions];
      for (const s of chart.series) {
        let line = s.name + ': ' + fmt(s.y[i]) + ' ' + chart.unit;
        if (s.lo) line += ' [' + fmt(s.lo[i]) + ', ' + fmt(s.hi[i]) + ']';
        if (s.v && s.v[i]) line += '  ' + (s.v[i] === 's' ? 'SLOWER' : 'FASTER') + ' ×' + fmt(s.r[i]) + ' (change point)';
        lines.push(line);
      }
      if (run.href) lines.push('click: open this run\\'s page');
      tip.textContent = lines.join('\\n'); tip.hidden = false;
      tip.style.left = Math.max(0, Math.min(ev.clientX + 12, innerWidth - 420)) + 'px'; tip.style.top = (ev.clientY + 12) + 'px';
    });
    p.addEventListener('mouseleave', () => { tip.hidden = true; });
    p.addEventListener('mousedown', (ev) => { start = at(p, ev); moved = false; ev.preventDefault(); });
    p.addEventListener('mouseup', (ev) => {
      if (start === null) return;
      const end = at(p, ev); const a = Math.min(start, end), b = Math.max(start, end); start = null;
      if (b - a >= 1) { moved = true; zoom(a, b); }
    });
    p.addEventListener('click', (ev) => {  // a point opens its run's page, when one is beside this page
      if (moved) return;
      const run = data.runs[Math.round(at(p, ev))];
      if (run && run.href) location.href = run.href;
    });
    p.addEventListener('dblclick', () => zoom(0, n - 1));
  }
  for (const b of document.querySelectorAll('#zoom button')) {
    b.addEventListener('click', () => { const k = +b.dataset.last; zoom(k ? n - k : 0, n - 1); });
  }
  const selects = Array.from(document.querySelectorAll('#zoom select[data-filter]'));
  function filter() {  // offline: the charts are all in the page, the filters only hide figures
    const want = Object.fromEntries(selects.map((s) => [s.dataset.filter, s.value]));
    let shown = 0;
    for (const f of document.querySelectorAll('#cells figure.cell, #speedup figure.cell')) {
      const ok = Object.entries(want).every(([k, v]) => !v || f.dataset[k] === undefined || f.dataset[k] === v);
      f.hidden = !ok; if (ok && f.closest('#cells')) shown++;
    }
    document.getElementById('filter-empty').hidden = shown > 0;
  }
  for (const s of selects) s.addEventListener('change', filter);
  window.qbenchTrendZoom = zoom;
  zoom(0, n - 1);
})();
"""
