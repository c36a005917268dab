"""The HTML comparison report: one self-contained file (inline CSS, JS and SVG; no network).

    >>> write_report("reports/qbench.db", ["20251126-0300-ab12", "20251127-0300-cd34"], Path("report.html"))

Safety: Jinja2 autoescapes every value (model names and error texts are suite data, not markup);
the charts are SVG built by svg.py, which escapes too; the data the script needs travels as JSON
in a <script type="application/json"> block through `tojson` (which escapes <, >, & and ').
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from markupsafe import Markup, escape

from qbench import strict_json
from qbench.report import data, fmt, plots, table
from qbench.report.answers import answers
from qbench.report.gather import ReportData, gather
from qbench.report.svg import PALETTE, colours_for
from qbench.report.sensitivity_view import suggestions
from qbench.report.trust import trust, unsure, unsure_word
from qbench.report.winners import winners
from qbench.results.store import ResultsStore
from qbench.text import safe, safe_lines

TEMPLATES = Path(__file__).parent / "templates"


def write_report(db_path: str | Path | ResultsStore, run_ids: list[str], out: Path, *, threshold: float = 0.05,
                 comparison=None, views: dict[str, list[dict]] | None = None) -> Path:
    """Write the report of `run_ids` (the last is the primary run; later runs are compared with the
    first) to `out` and return its path. Raises UsageError for a missing store or unknown run id.
    db_path: a store's path or URL, or an open store (the run that just finished: its samples and
    speedup CIs are in memory already).

    `comparison`: a CompareResult of the primary run against a baseline that the page does not show
    (the nightly page: `qbench run --baseline`); the page then opens with what changed."""
    rd = gather(db_path, run_ids, threshold=threshold, views=views)
    if comparison is not None:
        rd.comparisons.append(comparison)
    html = render(rd)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def render(rd: ReportData) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.policies["json.dumps_function"] = strict_json.dumps  # the page's data block is strict JSON too
    env.finalize = page_text
    env.filters["lines"] = lambda text: Markup(escape(safe_lines(text)))  # an error's own lines, kept
    return env.get_template("report.html.j2").render(**context(rd))


def page_text(value):
    """Every `{{ }}` on a page: names from suites and stores one line each, control characters
    escaped (qbench.text.safe); rendered HTML/SVG (Markup) and non-text values pass as they are."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return safe(value)
    return value


def context(rd: ReportData) -> dict:
    primary = rd.primary
    cells = rd.cells_of(primary["run_id"])
    run_ids = [r["run_id"] for r in rd.runs]
    colours = colours_for([c["recipe"] for c in rd.cells])
    run_colours = {r: PALETTE[i % len(PALETTE)] for i, r in enumerate(run_ids)}
    shapes = plots.model_shapes(list(dict.fromkeys(c["model"] for c in rd.cells)))
    cols = table.with_sweep(table.columns(len(rd.runs) > 1), rd.cells)  # threads/batch columns of a sweep
    recipe_legend = plots.legend([(r, colours[r]) for r in dict.fromkeys(c["recipe"] for c in cells)])
    return {
        "title": f"qbench · {primary['suite']}",
        "runs": rd.runs, "primary": primary, "several": len(rd.runs) > 1,
        "when": fmt.when, "ms": fmt.ms, "bytes": fmt.bytes_, "sqnr": fmt.sqnr, "p_value": fmt.p_value,
        "pct": fmt.pct_change, "first_line": fmt.first_line,
        "summary": _summary(cells, rd.comparisons[-1] if rd.comparisons else None),
        "trust": trust(cells), "has_cells": bool(cells), "sensitivity": suggestions(rd.layers),
        "layer_legend": plots.legend([("quantized", plots.LAYER_COLOUR), ("kept fp32", plots.KEPT_FP32_COLOUR)]),
        "devices": rd.devices,
        "settings": _settings(rd.runs),
        "columns": cols, "groups": table.foldable_groups(cols), "col_class": _column_classes(cols),
        "answers": answers(rd.comparisons[-1], rd.cells) if rd.comparisons else None,
        "winners": winners(cells, colours, shapes), "recipe_legend": recipe_legend,
        "rows": _short_run_ids([table.row(c) for c in rd.cells], run_ids),
        "outputs": table.output_rows(rd.cells),
        "comparisons": [_comparison(r) for r in rd.comparisons],
        "plots": _plots(rd, cells, colours, run_colours, shapes, recipe_legend),
        "payload": data.json_safe(_payload(rd, cols)),
        "css": _asset("report.css"), "js": _asset("report.js"),
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _short_run_ids(rows: list[dict], run_ids: list[str]) -> list[dict]:
    """With several runs, the cells table names each by the last part of its id (`…ab12`, the full id on
    hover) when those parts tell the runs apart: the full ids would push accuracy off a laptop screen."""
    tails = {r: r.rsplit("-", 1)[-1] for r in run_ids}
    if len(run_ids) < 2 or len(set(tails.values())) < len(run_ids) or any(t == r for r, t in tails.items()):
        return rows
    for row in rows:
        full = row["values"]["run"]
        full.update(text="…" + tails[full["sort"]], title=full["sort"])
    return rows


def _column_classes(cols) -> dict[str, str]:
    """Each column's classes in the cells table: its group (for the fold toggles) and whether folding hides it."""
    return {c.key: f"g-{table.group_id(c.group)}" + (" detail folded" if c.key in table.DETAIL else "") for c in cols}


def _asset(name: str) -> Markup:
    """Inline CSS/JS from templates/; they are ours, but a closing tag inside would end the block early."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    if re.search(r"</(script|style)", text, re.IGNORECASE):
        raise ValueError(f"{name} must not contain a closing script/style tag")
    return Markup(text)


def _summary(cells: list[dict], comparison) -> list[dict]:
    """The cards at the top: what a reader checks first every morning."""
    status = [c["status"] for c in cells]
    cards = [
        {"label": "cells", "value": len(cells),
         "detail": f"{len({c['model'] for c in cells})} models · {len({c['recipe'] for c in cells})} recipes · "
                   f"{len({c['device'] for c in cells})} devices"
                   + (f" · {len(points)} sweep points" if len(points := {c.get('sweep') or '' for c in cells}) > 1
                      else "")},
        {"label": "ok", "value": status.count("ok"),
         "tone": "good" if status.count("ok") == len(cells) and not any(unsure(c) for c in cells) else ""},
        {"label": "failed", "value": status.count("failed"), "tone": "bad" if "failed" in status else "",
         **({"href": "#trust-failed"} if "failed" in status else {})},
    ]
    if shaky := [c for c in cells if unsure(c)]:
        cards.append({"label": unsure_word(shaky), "value": len(shaky), "tone": "warn", "href": "#trust",
                      "detail": "medians may be off"})
    if "not measured" in status:
        cards.append({"label": "not measured", "value": status.count("not measured"), "tone": "warn"})
    if comparison is not None:
        n = comparison.counts()
        cards += [
            {"label": "regressions", "value": n["regressions"], "tone": "bad" if n["regressions"] else "good",
             "detail": f"vs {comparison.base_run}", "href": "#compare"},
            {"label": "slower", "value": n["slower"], "tone": "bad" if n["slower"] else ""},
            {"label": "faster", "value": n["faster"], "tone": "good" if n["faster"] else ""},
        ]
    return cards


def _flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = "—" if v is None else (", ".join(map(str, v)) if isinstance(v, list) else str(v))
    return out


def _settings(runs: list[dict]) -> dict:
    """Benchmark settings; with several runs, one column per run and differing rows marked."""
    flat = [_flatten(r["settings"]) for r in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    rows = [{"key": k, "values": [f.get(k, "—") for f in flat], "differs": len({f.get(k, "—") for f in flat}) > 1}
            for k in keys]
    return {"rows": rows, "same": not any(r["differs"] for r in rows)}


def _comparison(result) -> dict:
    rows = []
    for c in result.cells:
        lat = c.latency
        rows.append({
            "c": c, "ratio": lat.ratio if lat else None, "low": lat.low if lat else None,
            "high": lat.high if lat else None, "p": lat.p_value if lat else None,
            "verdict": c.verdict, "regression": c.is_regression,
            "flags": [m.describe() for m in c.flags] + ([f"failed: {fmt.first_line(c.new_error, 90)}"]
                                                         if c.newly_failed else []),
        })
    order = {True: 0, False: 1}
    rows.sort(key=lambda r: (order[r["regression"]], -(r["ratio"] or 0)))  # worst first
    confidence = next((c.latency.confidence for c in result.cells if c.latency), 0.95)
    return {"result": result, "counts": result.counts(), "rows": rows, "panel": plots.compare_panel(result),
            "confidence": confidence}


def _plots(rd: ReportData, cells, colours, run_colours, shapes, recipe_legend) -> list[dict]:
    """The charts of the measured cells (a run with none, `qbench sensitivity` without --measure, has none:
    its per-layer chart leads the page instead, see sensitivity_view)."""
    return _cell_plots(rd, cells, colours, run_colours, shapes, recipe_legend) if rd.cells else []


def _cell_plots(rd: ReportData, cells, colours, run_colours, shapes, recipe_legend) -> list[dict]:
    from qbench.report.generation import generation_plots

    run_legend = plots.legend([(r["run_id"], run_colours[r["run_id"]]) for r in rd.runs])
    shape_legend = plots.shape_legend([(m, shapes[m]) for m in dict.fromkeys(c["model"] for c in cells)])
    gaps = plots.energy_gaps(cells)
    scope = f"Run {rd.primary['run_id']}." if len(rd.runs) > 1 else ""
    return [
        {"id": "plot-latency", "title": "Latency distribution",
         "caption": "Raw per-iteration samples of every trial. Box: quartiles; line: median; whiskers: 1.5 IQR; "
                    "◆: median of each trial (separate process); +n›: samples beyond the whisker.",
         "legend": run_legend if len(rd.runs) > 1 else recipe_legend,
         "panels": plots.latency_panels(rd.cells, [r["run_id"] for r in rd.runs], colours, run_colours),
         "empty": "No cell has latency samples."},
        {"id": "plot-speedup", "title": "Speedup over fp32",
         "caption": "fp32 median latency / recipe median latency on the same device; right of the line is "
                    f"faster. {scope}",
         "legend": recipe_legend, "panels": plots.speedup_panels(cells, colours),
         "empty": "No quantized cell to compare with fp32."},
        *_threads_plot(cells),
        *generation_plots(cells, colours, recipe_legend),
        {"id": "plot-tradeoff", "title": "Accuracy vs latency",
         "caption": "Each point is a model × recipe; each model has its own dashed staircase, and its circled points "
                    "form that model's Pareto front (no other recipe of the same model is both faster and closer to "
                    f"fp32; models are never ranked against each other). {scope}",
         "legend": Markup(recipe_legend + shape_legend), "panels": plots.tradeoff_panels(cells, colours, shapes),
         "empty": "No cell has accuracy figures (SQNR, top-1 agreement)."},
        {"id": "plot-size-memory", "title": "Size and peak memory",
         "caption": ".pte program size per model × recipe; peak resident memory of the runner process per "
                    f"device. {scope}",
         "legend": recipe_legend, "panels": plots.size_memory_panels(cells, colours),
         "empty": "No size or memory figures."},
        {"id": "plot-energy", "title": "Energy per inference",
         "caption": f"Net of idle power, ±1σ (sensor calibration error not included). {scope}",
         "legend": recipe_legend, "panels": plots.energy_panels(cells, colours),
         "gaps": gaps, "empty": "Energy was not measured in this run."},
        {"id": "plot-ops", "title": "Top operators",
         "caption": "Share of summed operator time per inference, from the ETDump of a separate profiling "
                    f"run. {scope}",
         "legend": plots.legend([("delegated (XNNPACK)", plots.DELEGATE_COLOUR),
                                 ("portable kernel", plots.KERNEL_COLOUR)]),
         "panels": plots.ops_panels(cells), "empty": "No cell was profiled (suite setting profile_ops)."},
    ]


def _threads_plot(cells) -> list[dict]:
    """A thread sweep's standard plot (only when the run swept threads)."""
    panels = plots.threads_panels(cells)
    if not panels:
        return []
    return [{"id": "plot-threads", "title": "Speedup vs threads",
             "caption": "Median latency at the fewest threads / median latency at each thread count, per device; "
                        "one line per model × recipe (and batch/cores when swept). Dashed: linear scaling; "
                        "the level line is 1×.",
             "legend": "", "panels": panels, "empty": ""}]


def _payload(rd: ReportData, cols) -> dict:
    """The JSON the script reads (filter choices) and that tools can pull out of the artifact."""
    keep = ("run_id", "model", "recipe", "device", "status", "latency_ms", "speedup_vs_fp32", "speedup_ci",
            "stability", "pte_bytes",
            "peak_rss_bytes", "sqnr_db", "top1_agreement", "error")
    return {
        "runs": [r["run_id"] for r in rd.runs],
        "filters": {k: sorted({c[k] for c in rd.cells}, key=str.lower) for k in ("model", "recipe", "device", "status")}
        | {"run": [r["run_id"] for r in rd.runs]},
        "columns": [c.key for c in cols],
        "cells": [{k: c.get(k) for k in keep} | {"energy_mj": (c.get("energy") or {}).get("per_inference_mj")}
                  for c in rd.cells],
        "comparisons": [r.to_dict() for r in rd.comparisons],
    }
