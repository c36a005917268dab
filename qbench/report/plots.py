"""Which charts the report shows, built from gathered cells (see gather.py) with the svg.py pieces.

Each function returns a list of SVG panels (small multiples, one per device or model) or an empty
list when there is nothing to draw; the template says "not measured" then, never draws zeros.
Charts of one run use the report's primary run (the last one given); the latency distributions
show every run side by side.
"""

from __future__ import annotations

from markupsafe import Markup

from qbench.report import fmt
from qbench.report.data import key_label
from qbench.report.svg import (
    SHAPES,
    Bar,
    BarGroup,
    Box,
    Interval,
    Point,
    box_panel,
    esc,
    forest_panel,
    hbar_panel,
    scatter_panel,
    shape_icon,
)
from qbench.report.fmt import SQNR_EXACT_DB
from qbench.results.columns import unstable
from qbench.text import cell_label, safe

DELEGATE_COLOUR, KERNEL_COLOUR = "#3b6fb6", "#e07b39"


def _ordered(cells: list[dict], key: str) -> list[str]:
    return list(dict.fromkeys(c[key] for c in cells))


def _label(cell: dict) -> str:
    """The cell's one spelling (qbench.text.cell_label)."""
    return cell_label(cell["model"], cell["recipe"], cell["device"], cell.get("sweep"))


def _name(cell: dict) -> str:
    """The recipe, and the sweep point when the run swept threads/batch/affinity."""
    return cell["recipe"] + (f" [{cell['sweep']}]" if cell.get("sweep") else "")


def _ok(cells: list[dict]) -> list[dict]:
    return [c for c in cells if c["status"] == "ok" and c.get("latency_ms")]


def legend(items: list[tuple[str, str]]) -> Markup:
    """Colour swatches; labels are suite strings, so escaped."""
    return Markup("".join(f'<span class="key"><i style="background:{colour}"></i>{esc(label)}</span>'
                          for label, colour in items))


def shape_legend(items: list[tuple[str, str]]) -> Markup:
    return Markup("".join(f'<span class="key">{shape_icon(shape)}{esc(label)}</span>' for label, shape in items))


# --------------------------------------------------------------------------- latency distributions


def latency_panels(cells: list[dict], run_ids: list[str], colours: dict[str, str], run_colours: dict[str, str]):
    """One box-plot panel per model × device; a row per recipe (and per run when there are several)."""
    several = len(run_ids) > 1
    panels = []
    ok = [c for c in cells if c.get("box")]
    for device in _ordered(ok, "device"):
        for model in _ordered(ok, "model"):
            boxes = []
            for recipe in _ordered(ok, "recipe"):
                for run_id in run_ids:
                    for c in (c for c in ok if (c["run_id"], c["model"], c["recipe"], c["device"]) ==
                              (run_id, model, recipe, device)):  # several when the run swept threads/batch
                        b = c["box"]
                        tip = [_label(c) + (f" · run {run_id}" if several else ""),
                               f"median {fmt.ms(b['median'])} ms, IQR {fmt.ms(b['q1'])}–{fmt.ms(b['q3'])} ms, "
                               f"p99 {fmt.ms(b['p99'])} ms",
                               f"{b['n']} samples in {len(b['trial_medians'])} trials (◆ = trial medians)"]
                        if b["above"]:
                            tip.append(f"{b['above']} samples beyond the upper whisker")
                        boxes.append(Box(label=_name(c), colour=run_colours[run_id] if several else colours[recipe],
                                         q1=b["q1"], median=b["median"], q3=b["q3"], lo=b["lo"], hi=b["hi"], n=b["n"],
                                         trial_medians=b["trial_medians"], above=b["above"], tooltip="\n".join(tip)))
            if boxes:
                panels.append(box_panel(f"{model} · {device}", boxes))
    return panels


# --------------------------------------------------------------------------- speedup over fp32


def speedup_panels(cells: list[dict], colours: dict[str, str]):
    panels = []
    quantized = [c for c in cells if c["recipe_kind"] != "fp32"]
    for device in _ordered(quantized, "device"):
        groups = []
        for model in _ordered(quantized, "model"):
            bars = []
            for c in (c for c in quantized if c["device"] == device and c["model"] == model):
                s, ci = c.get("speedup_vs_fp32"), c.get("speedup_ci")
                why = {"failed": "failed", "ok": "no fp32 baseline"}.get(c["status"], c["status"])
                ci_text = f" (95% CI {ci[0]:.2f}–{ci[1]:.2f})" if s and ci else ""
                unclear = bool(s and ci and ci[0] <= 1.0 <= ci[1])
                bars.append(Bar(_name(c), s, colours[c["recipe"]],
                                ("no clear difference" if unclear else f"{s:.2f}×") if s else why,
                                tooltip=f"{_label(c)}: " +
                                (f"{s:.2f}× the speed of fp32{ci_text}" if s else why),
                                ci=tuple(ci) if s and ci else None))
            if bars:
                groups.append(BarGroup(model, bars))
        if groups:
            panels.append(hbar_panel(f"Speedup over fp32 · {device}", groups, unit="× fp32 speed", ref=1.0,
                                     ref_label="fp32"))
    return panels


# --------------------------------------------------------------------------- accuracy vs latency


def tradeoff_panels(cells: list[dict], colours: dict[str, str], shapes: dict[str, str]):
    """SQNR (and top-1 agreement when measured) against median latency, per device; each model has its own
    Pareto front (models are never ranked against each other)."""
    panels = []
    ok = _ok(cells)

    def name(label: str) -> str:  # "SQNR vs fp32 (dB)" -> "SQNR vs fp32"
        return label.split(" (")[0]

    for metric, label, cap in (("sqnr_db", "SQNR vs fp32 (dB)", SQNR_EXACT_DB),
                               ("top1_agreement", "top-1 agreement with fp32", None)):
        for device in _ordered(ok, "device"):
            pts = []
            for c in ok:
                y = c.get(metric)
                if c["device"] != device or y is None:
                    continue
                y_text = fmt.sqnr(y) if metric == "sqnr_db" else f"{y:.3f}"
                median = c["latency_ms"]["median"]
                tip = f"{_label(c)}\nmedian {fmt.ms(median)} ms, {name(label)} {y_text}"
                pts.append(Point(median, y, colours[c["recipe"]], shapes[c["model"]], f"{c['model']} · {c['recipe']}",
                                 tip, group=c["model"]))
            if pts:
                panels.append(scatter_panel(f"{name(label)} vs latency · {device}", pts,
                                            xlabel="median latency (ms)", ylabel=label, y_cap=cap))
    return panels


# --------------------------------------------------------------------------- size and memory


def size_memory_panels(cells: list[dict], colours: dict[str, str]):
    """.pte size per model × recipe, peak RSS per device; each panel's axis and bar labels in one unit."""
    panels = []
    seen, sized = set(), []
    for c in cells:  # the .pte is one artifact per model × recipe, the same on every device
        if c.get("pte_bytes") and (c["model"], c["recipe"]) not in seen:
            seen.add((c["model"], c["recipe"]))
            sized.append(c)
    if sized:
        panels.append(_bytes_panel("Program size (.pte)", sized, "pte_bytes", colours,
                                   lambda c: f"{safe(c['model'])}/{safe(c['recipe'])}: .pte {fmt.bytes_(c['pte_bytes'])}"))
    for device in _ordered(cells, "device"):
        here = [c for c in cells if c["device"] == device and c.get("peak_rss_bytes")]
        if here:
            panels.append(_bytes_panel(
                f"Peak memory (RSS) · {device}", here, "peak_rss_bytes", colours,
                lambda c: f"{_label(c)}: peak RSS {fmt.bytes_(c['peak_rss_bytes'])}"
                          + (f", arena {fmt.bytes_(c['arena_bytes'])}" if c.get("arena_bytes") else "")))
    return panels


BYTE_UNITS = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10), ("B", 1))


def byte_unit(values: list[float]) -> tuple[str, int]:
    """The largest binary unit in which the biggest value is at least 1: the axis and every label use it."""
    top = max(values)
    return next(((u, d) for u, d in BYTE_UNITS if top >= d), ("B", 1))


def _bytes_panel(title: str, cells: list[dict], key: str, colours: dict[str, str], tooltip) -> Markup:
    unit, div = byte_unit([c[key] for c in cells])
    digits = 0 if unit == "B" else 1
    groups = {}
    for c in cells:
        groups.setdefault(c["model"], []).append(
            Bar(c["recipe"], c[key] / div, colours[c["recipe"]], f"{c[key] / div:,.{digits}f} {unit}",
                tooltip=tooltip(c)))
    return hbar_panel(title, [BarGroup(m, b) for m, b in groups.items()], unit=unit)


# --------------------------------------------------------------------------- energy


def energy_panels(cells: list[dict], colours: dict[str, str]):
    panels = []
    for device in _ordered(cells, "device"):
        groups = {}
        for c in cells:
            e = c.get("energy")
            if c["device"] != device or not e or e.get("per_inference_mj") is None:
                continue
            mj, u_mj = e["per_inference_mj"], e.get("uncertainty_mj")
            text = f"{mj:.2f}" + (f" ± {u_mj:.2f}" if u_mj else "") + " mJ"
            groups.setdefault(c["model"], []).append(
                Bar(c["recipe"], mj, colours[c["recipe"]], text, err=u_mj,
                    tooltip=f"{_label(c)}: {text} per inference (1σ)"
                            + (f", source {e['source']}" if e.get("source") else "")))
        if groups:
            panels.append(hbar_panel(f"Energy per inference · {device}", [BarGroup(m, b) for m, b in groups.items()],
                                     unit="mJ"))
    return panels


def energy_gaps(cells: list[dict]) -> list[tuple[str, str]]:
    """(device, why) for devices without any energy figure, so the report can say why."""
    out = []
    for device in _ordered(cells, "device"):
        mine = [c for c in cells if c["device"] == device]
        if any((c.get("energy") or {}).get("per_inference_mj") is not None for c in mine):
            continue
        reasons = [(c.get("energy") or {}).get("reason") for c in mine]
        out.append((device, next((r for r in reasons if r), "no power source configured")))
    return out


# --------------------------------------------------------------------------- operators


def ops_panels(cells: list[dict], top: int = 8):
    panels = []
    for c in cells:
        if not c.get("ops"):
            continue
        groups = []
        for op in c["ops"][:top]:
            delegated = op.get("kind") == "delegate"
            share = (op.get("share") or 0) * 100
            text = f"{share:.1f}%" + (f" · {fmt.ms(op['total_ms'])} ms" if op.get("total_ms") is not None else "")
            tip = (f"{safe(op['name'])} ({op.get('delegate') or 'portable kernel'})\n"
                   f"{text} per inference, {op.get('count') or '?'} calls")
            bar = Bar(op.get("delegate") or "kernel", share, DELEGATE_COLOUR if delegated else KERNEL_COLOUR, text,
                      tooltip=tip)
            groups.append(BarGroup(op["name"], [bar]))
        panels.append(hbar_panel(_label(c), groups, unit="% of op time",
                                 label_width=280))
    return panels


# --------------------------------------------------------------------------- run-over-run


def compare_panel(result) -> Markup | None:
    rows = sorted((c for c in result.cells if c.latency), key=lambda c: -c.latency.ratio)
    if not rows:
        return None
    items = []
    for c in rows:
        lat = c.latency
        tip = (f"{key_label(c.key)}\n"
               f"{fmt.ms(c.base_median_ms)} → {fmt.ms(c.new_median_ms)} ms, "
               f"latency ratio {lat.ratio:.3f}× {fmt.ci(lat.low, lat.high)}: {lat.verdict}")
        items.append(Interval(key_label(c.key), lat.ratio, lat.low, lat.high, lat.verdict, tip))
    return forest_panel(f"Latency ratio {result.new_run} / {result.base_run} ({rows[0].latency.confidence:.0%} CI; "
                        f"band ±{result.thresholds['latency']:.0%})", items, result.thresholds["latency"])


def model_shapes(models: list[str]) -> dict[str, str]:
    return {m: SHAPES[i % len(SHAPES)] for i, m in enumerate(models)}


# --------------------------------------------------------------------------- per-layer sensitivity

LAYER_COLOUR, KEPT_FP32_COLOUR = "#3b6fb6", "#c2485a"


def layer_panels(layers: list[dict]):
    """One panel per model × recipe: a bar per layer (graph order), its output SQNR against fp32."""
    panels = []
    for key in dict.fromkeys((r["model"], r["recipe"]) for r in layers):
        rows = [r for r in layers if (r["model"], r["recipe"]) == key]
        groups = []
        for r in rows:
            sqnr = r["sqnr_db"]
            colour = KEPT_FP32_COLOUR if r["kept_fp32"] else LAYER_COLOUR
            tip = f"{r['module']} ({r['op']}): SQNR {fmt.sqnr(sqnr)}"
            if r["metric_if_fp32"] is not None:
                tip += f"; {r['metric_name']} {r['metric_if_fp32']:.4g} with only this layer fp32"
            if r.get("metric_if_only_quantized") is not None:
                tip += f"; {r['metric_name']} {r['metric_if_only_quantized']:.4g} with only this layer quantized"
            if r["metric_if_fp32"] is not None or r.get("metric_if_only_quantized") is not None:
                tip += f" (rank {r['sensitivity_rank']})"
            if r["kept_fp32"]:
                tip += "; kept fp32 by the suggestion"
            label = f"{sqnr:.1f} dB" if sqnr is not None else "n/a"
            groups.append(BarGroup(r["module"], [Bar(r["module"], max(sqnr, 0.0) if sqnr is not None else None,
                                                     colour, label + (" · fp32" if r["kept_fp32"] else ""), tooltip=tip)]))
        panels.append(hbar_panel(f"{key[0]} · {key[1]}: SQNR by layer (target {rows[0]['target']})", groups,
                                 unit="dB", width=720, label_width=260))
    return panels


# --------------------------------------------------------------------------- speedup vs threads (a sweep)


def threads_panels(cells: list[dict]):
    """Per device: median at the fewest threads / median at each thread count, one line per model ×
    recipe (× the sweep's other axes). Empty unless some line has more than one thread count."""
    from qbench.report.svg import Series, colours_for, line_panel
    from qbench.suite.sweep import parse_label

    panels = []
    ok = [c for c in _ok(cells) if c.get("sweep") and "threads" in parse_label(c["sweep"])]
    for device in _ordered(ok, "device"):
        lines: dict[str, list[dict]] = {}
        for c in (c for c in ok if c["device"] == device):
            rest = " ".join(f"{k}={v}" for k, v in parse_label(c["sweep"]).items() if k != "threads")
            lines.setdefault(" · ".join(p for p in (c["model"], c["recipe"], rest) if p), []).append(c)
        lines = {name: mine for name, mine in lines.items() if len({_threads(c) for c in mine}) > 1}
        if not lines:
            continue
        colours = colours_for(list(lines))
        series = []
        for name, mine in lines.items():
            mine.sort(key=_threads)
            base = mine[0]
            b_ms = base["latency_ms"]["median"]
            pts = []
            for c in mine:
                ms = c["latency_ms"]["median"]
                noisy = [x for x in (base, c) if unstable(x.get("stability"))]
                tip = (f"{safe(name)} · {safe(device)}\n{_threads(c)} threads: median {fmt.ms(ms)} ms, "
                       f"{b_ms / ms:.2f}× the speed at {_threads(base)} thread(s) ({fmt.ms(b_ms)} ms)"
                       + ("\ndisturbed or imprecise median(s): this ratio may be off" if noisy else ""))
                pts.append((float(_threads(c)), b_ms / ms, tip))
            series.append(Series(name, colours[name], pts))
        panels.append(line_panel(f"Speedup vs threads · {device}", series, xlabel="threads",
                                 ylabel="× speed of the fewest threads", ideal=True))
    return panels


def _threads(cell: dict) -> int:
    """Threads the runner used (the sweep's label when the cell has no figure)."""
    from qbench.suite.sweep import parse_label

    return int(cell.get("threads") or parse_label(cell.get("sweep")).get("threads", 0))
