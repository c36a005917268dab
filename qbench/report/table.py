"""The cells table: one spec of its columns, rendered by every table qbench prints or writes.

The HTML report shows every column (grouped, with hints and sort keys; a folded group shows only
its columns not in DETAIL, so the table fits a laptop screen); the terminal/CI summary
(cli/summary.py), the Markdown summary (markdown.py) and the minimal run page (summary_page.py)
pick their columns from the same spec by key (SUMMARY, MARKDOWN, PAGE below). A column is added
here once. `plain` gives a column's figure for text tables, in the unit its `flat` header names
(the HTML text uses human units: 3.4 MiB); otherwise every renderer shows the HTML text.

Sort keys go into `data-v` attributes that report.js reads; an empty key (a missing value) always
sorts last. Values stay plain strings here: the templates escape them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from qbench.report import fmt
from qbench.report.findings import findings_text
from qbench.report.views import speedup_text
from qbench.results import metrics
from qbench.results.metrics import Metric
from qbench.text import safe


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    group: str
    numeric: bool = True
    hint: str = ""
    flat: str = ""  # the header where there are no group headers (default: label)
    plain: Callable[[dict], str] | None = None  # the figure in a text table (default: the HTML text)

    @property
    def header(self) -> str:
        return self.flat or self.label


def _fixed(get: Callable[[dict], float | None], digits: int) -> Callable[[dict], str]:
    """A figure for text tables: fixed decimals, no thousands separator (scripts parse these)."""
    def text(c: dict) -> str:
        v = get(c)
        return "" if fmt.missing(v) else f"{float(v):.{digits}f}"

    return text


NONFINITE = "NaN/inf"  # what a numerics column shows for outputs holding NaN or inf (no figure)


def _stability_plain(c: dict) -> str:
    """'stable ±1.2%' / 'imprecise ±8.0%': the median's 95% CI half-width, the worse side around the
    median (stats.ci_half_width, the figure the closing notes and `precision` use)."""
    from qbench.stats import ci_half_width

    s = c.get("stability")
    median = (c.get("latency_ms") or {}).get("median")
    if not s:
        return ""
    if not median:
        return s["verdict"]
    return f"{s['verdict']} ±{ci_half_width(median, *s['median_ci_ms']):.1%}"


# The columns that are not one registered metric (results/metrics.py); the metrics' columns go in
# where each says (Metric.after), see _placed.
_OWN_COLUMNS = [
    Column("run", "run", "Cell", False),
    Column("model", "model", "Cell", False, plain=lambda c: safe(c["model"])),
    Column("recipe", "recipe", "Cell", False, plain=lambda c: safe(c["recipe"])),
    Column("device", "device", "Cell", False, plain=lambda c: safe(c["device"])),
    Column("status", "status", "Cell", False, plain=lambda c: _status_text(c),
           hint="ok / failed / not measured; ⚑ = a finding about the cell (quantized nothing, QAT below PTQ, "
                "slower than fp32), listed under the table"),
    Column("n", "n", "Latency (ms)", hint="samples / trials (separate processes)"),
    Column("stability", "stability", "Latency (ms)", False, plain=_stability_plain,
           hint="stable / disturbed (other work ran during its trials) / imprecise (no trial measured as disturbed, "
                "its median's 95% CI stayed wider than the suite's precision), with the CI's half-width"),
    Column("speedup", "speedup vs fp32", "Latency (ms)",
           hint="speedup: fp32 median / this median on the same device (higher is faster), with its 95% CI; "
                "a CI that includes 1.0 "
                "reads 'no clear difference'",
           plain=lambda c: speedup_text(c.get("speedup_vs_fp32"), c.get("speedup_ci"))),
    Column("load", "load", "Startup (ms)", hint="program load + method init (median over trials)"),
    Column("energy", "mJ / inf.", "Energy", hint="energy per inference, net of idle power, ±1σ"),
    Column("accuracy", "accuracy", "Task accuracy",
           hint="on the dataset's eval split (the model's own metric when it has one), and the change from the "
                "fp32 cell on the same device",
           plain=_fixed(lambda c: _task_accuracy(c)[0], 4)),
    Column("sqnr", "SQNR", "Numerics", hint="signal-to-quantization-noise ratio of outputs vs fp32 eager; "
           "NaN/inf: the outputs hold non-finite values (a finding: no figures)",
           flat="SQNR dB", plain=lambda c: NONFINITE if c.get("nonfinite") else _fixed(lambda c: c.get("sqnr_db"), 1)(c)),
    Column("on_device", "on device", "Numerics",
           hint="SQNR of the measured device's own outputs vs fp32; ⚠ = disagrees with the host's figures"),
    Column("delegated", "delegated", "Lowering", hint="ops delegated to XNNPACK / all ops",
           plain=lambda c: f"{c['delegated_ops']}/{c['total_ops']}" if c.get("total_ops") else ""),
    Column("runner", "runner", "Lowering", False),
]


def _metric_column(m: Metric) -> Column:
    plain = (lambda c: fmt.metric(m.plain, m.value(c), plain=True)) if m.plain else None
    return Column(m.key, m.label, m.group, hint=m.hint, flat=m.flat, plain=plain)


def _placed(own: list[str], table: str) -> list[str]:
    """`own` keys with each registered metric shown in `table` inserted after the key it names (several
    after one key keep the registry's order)."""
    out, pending = list(own), [m for m in metrics.rendered() if table in m.after]
    while pending:
        ready = [m for m in pending if m.after[table] in out]
        if not ready:
            raise ValueError(f"results/metrics.py: {pending[0].column} follows {pending[0].after[table]!r}, "
                             f"which the {table} table does not show")
        for m in reversed(ready):  # each lands right after its key: the last first keeps their order
            out.insert(out.index(m.after[table]) + 1, m.key)
        pending = [m for m in pending if m not in ready]
    return out


_BY_KEY = {c.key: c for c in _OWN_COLUMNS} | {m.key: _metric_column(m) for m in metrics.rendered()}
COLUMNS = [_BY_KEY[k] for k in _placed([c.key for c in _OWN_COLUMNS], "html")]

# A sweep's axes (suite/sweep.py), shown after `device` only when a run's cells vary in them: a suite
# without lists prints exactly the columns it always did. threads is what the runner used.
SWEEP_COLUMNS = [
    Column("threads", "threads", "Cell", hint="threads the runner used (a swept axis)",
           plain=lambda c: str(_sweep_value(c, "threads"))),
    Column("batch", "batch", "Cell", hint="the input batch (a swept axis: one .pte per batch)",
           plain=lambda c: str(_sweep_value(c, "batch"))),
    Column("affinity", "cores", "Cell", False, hint="CPU affinity: a core list or a cluster (a swept axis)",
           plain=lambda c: str(_sweep_value(c, "affinity"))),
]


# Shown after `vs fp32` only when the run was compared with a baseline (`qbench run --baseline`).
BASELINE_COLUMN = Column("vs_base", "vs base", "Latency (ms)",
                         hint="latency change of the median against the baseline run (+ is slower) and the "
                              "verdict at the gate's threshold; 'regressed': the gate flags accuracy, size or a failure",
                         plain=lambda c: _vs_base_text(c.get("vs_base")))


def _vs_base_text(v):
    from qbench.report.gate import vs_base_text

    return vs_base_text(v)


def with_baseline(cols: list[Column], cells: list[dict]) -> list[Column]:
    """`cols` with the `vs base` column after `speedup` when the cells were compared with a baseline."""
    if not any("vs_base" in c for c in cells):
        return cols
    keys = [c.key for c in cols]
    at = keys.index("speedup") + 1 if "speedup" in keys else len(cols)
    return cols[:at] + [BASELINE_COLUMN] + cols[at:]


def _sweep_value(cell: dict, axis: str):
    from qbench.suite.sweep import parse_label

    named = parse_label(cell.get("sweep")).get(axis, "")
    if axis == "threads" and cell.get("threads"):
        return cell["threads"]
    return cell.get("batch") or named if axis == "batch" else named


def with_sweep(cols: list[Column], cells: list[dict]) -> list[Column]:
    """`cols` with a column per swept axis of `cells` inserted after `device` (none when nothing is swept)."""
    from qbench.suite.sweep import parse_label

    swept = {axis for c in cells for axis in parse_label(c.get("sweep"))}
    extra = [c for c in SWEEP_COLUMNS if c.key in swept]
    keys = [c.key for c in cols]
    at = keys.index("device") + 1 if "device" in keys else len(cols)
    return cols[:at] + extra + cols[at:]


# What each text table shows, by key, in order. The summary fits 100–120 columns by default (a name is
# never folded, so a long one widens it); `--wide` shows the rest. `accuracy` only when a cell has it.
# (The registered metrics' columns join each list where they say: Metric.after.)
SUMMARY = _placed(["model", "recipe", "device", "stability", "speedup", "sqnr", "accuracy", "status"], "summary")
SUMMARY_WIDE = _placed(["model", "recipe", "device", "stability", "speedup", "sqnr", "accuracy", "delegated",
                        "status"], "wide")
MARKDOWN = _placed(["model", "recipe", "device", "status", "sqnr"], "markdown")
# Columns a folded group hides in the HTML table (groups start folded; a toggle per group unfolds it).
# A group with only DETAIL columns disappears while folded; its toggle says how many columns it holds.
DETAIL = {"n", "load", "on_device", "delegated", "runner"} | {m.key for m in metrics.rendered() if m.detail}
PAGE = _placed(["model", "recipe", "device", "status", "stability", "speedup", "sqnr", "on_device", "delegated",
                "runner"], "page")


def scored(cols: list[Column], cells: list[dict]) -> list[Column]:
    """`cols` without `accuracy` when no cell was scored on a dataset (the column would be empty)."""
    if any(_task_accuracy(c)[0] is not None for c in cells):
        return cols
    return [c for c in cols if c.key != "accuracy"]


def pick(keys: list[str]) -> list[Column]:
    by_key = {c.key: c for c in COLUMNS}
    return [by_key[k] for k in keys]


def texts(cell: dict, cols: list[Column], *, plain: bool) -> list[str]:
    """One cell's figures for a text table: `plain` for terminals and logs, else the HTML text."""
    html = None
    out = []
    for col in cols:
        if plain and col.plain is not None:
            out.append(col.plain(cell))
        else:
            html = html or row(cell)["values"]
            out.append(html[col.key]["text"])
    return out


def columns(several_runs: bool) -> list[Column]:
    return [c for c in COLUMNS if several_runs or c.key != "run"]


def column_groups(cols: list[Column]) -> list[tuple[str, int]]:
    groups: list[tuple[str, int]] = []
    for c in cols:
        if groups and groups[-1][0] == c.group:
            groups[-1] = (c.group, groups[-1][1] + 1)
        else:
            groups.append((c.group, 1))
    return groups


def cell_anchor(cell: dict) -> str | None:
    """The id of a cell's row in the HTML table (cell ids are unique in a store), for links to it."""
    return f"cell-{cell['cell_id']}" if cell.get("cell_id") is not None else None


def group_id(label: str) -> str:
    """'Size & memory' -> 'size-memory': the group's class on its cells and its toggle's key."""
    return "-".join("".join(ch if ch.isalnum() else " " for ch in label.lower()).split())


def foldable_groups(cols: list[Column]) -> list[dict]:
    """The group header row with folding: per group its id, full span and span while folded."""
    out = []
    for label, span in column_groups(cols):
        members = [c for c in cols if c.group == label]
        folded = sum(1 for c in members if c.key not in DETAIL)
        out.append({"label": label, "id": group_id(label), "span": span, "folded_span": folded,
                    "foldable": folded < span})
    return out


def _v(text: str, sort=None, *, title: str = "", muted: bool = False) -> dict:
    return {"text": text, "sort": "" if fmt.missing(sort) else sort, "title": title, "muted": muted}


def row(cell: dict) -> dict:
    """Display values of one cell keyed by column key, plus the row's filter attributes."""
    lat = cell.get("latency_ms") or {}
    e = cell.get("energy")
    vals = {
        "run": _v(cell.get("run_id", ""), cell.get("run_id", "")),
        "model": _v(safe(cell["model"]), cell["model"].lower()),
        "recipe": _v(safe(cell["recipe"]), cell["recipe"].lower()),
        "device": _v(safe(cell["device"]), cell["device"].lower()),
        "status": _v(_status_text(cell), cell["status"], title=findings_text(cell)),
        "n": _v(f"{lat['samples']} / {lat['trials']}" if lat.get("samples") else fmt.DASH, lat.get("samples"),
                muted=not lat.get("samples")),
        "stability": _stability(cell.get("stability")),
        "speedup": _v(speedup_text(cell.get("speedup_vs_fp32"), cell.get("speedup_ci")) or fmt.DASH,
                      cell.get("speedup_vs_fp32"), muted=not cell.get("speedup_vs_fp32")),
        "load": _ms(_sum(cell.get("load_ms"), cell.get("method_init_ms"))),
        "energy": _energy(e),
        "accuracy": _accuracy(cell),
        "sqnr": _sqnr(cell),
        "on_device": _on_device(cell.get("device_numerics")),
        "delegated": _delegation(cell),
        "runner": _v(_runner(cell), cell.get("runner") or "", muted=not cell.get("runner")),
    }
    vals.update({m.key: _metric_value(m, cell) for m in metrics.rendered()})
    vals.update({c.key: _v(c.plain(cell), _sweep_value(cell, c.key)) for c in SWEEP_COLUMNS})  # shown if swept
    return {"values": vals, "status": cell["status"], "error": cell.get("error"), "anchor": cell_anchor(cell),
            "findings": cell.get("findings") or [],
            "error_head": fmt.first_line(cell.get("error"), 90),
            "attrs": {"run": cell.get("run_id", ""), "model": cell["model"], "recipe": cell["recipe"],
                      "device": cell["device"], "status": cell["status"]}}


FINDING_MARK = "⚑"


def _status_text(cell: dict) -> str:
    """The status, marked when the cell has findings (report/findings.py): 'ok ⚑'."""
    return str(cell["status"]) + (f" {FINDING_MARK}" if cell.get("findings") else "")


def _task_accuracy(cell: dict) -> tuple[float | None, float | None, str]:
    """(value, change vs fp32, which): top-1 on the eval split, else the model's metric."""
    for name in ("top1", "metric"):
        if cell.get(f"accuracy_{name}") is not None:
            return cell[f"accuracy_{name}"], cell.get(f"accuracy_{name}_delta_vs_fp32"), name
    return None, None, ""


def _accuracy(cell: dict) -> dict:
    value, delta, name = _task_accuracy(cell)
    if value is None:
        return _v(fmt.DASH, None, title="not scored: the suite gives this model no dataset", muted=True)
    if name == "top1":
        text = fmt.share(value) + (f" ({delta * 100:+.1f} pt)".replace("-", "−") if delta else "")
        return _v(text, value, title="top-1 on the eval split; in brackets: change from fp32 in points")
    text = fmt.num(value, 4) + (f" ({delta:+.4f})".replace("-", "−") if delta else "")
    return _v(text, value, title="the model's metric on the eval split; in brackets: change from fp32")


def _stability(s: dict | None) -> dict:
    if not s:
        return _v(fmt.DASH, None, muted=True)
    lo, hi = s["median_ci_ms"]
    return _v(s["verdict"], s["verdict"], title=f"median 95% CI {fmt.ms(lo)}–{fmt.ms(hi)} ms; {s['reason']}",
              muted=s["verdict"] == "stable")


def _metric_value(m: Metric, cell: dict) -> dict:
    value = m.value(cell)
    return _v(fmt.metric(m.text, value), value, muted=value is None)


def _sum(a, b):
    return None if a is None else a + (b or 0)


def _ms(v) -> dict:
    return _v(fmt.ms(v), v, muted=v is None)


def _energy(e: dict | None) -> dict:
    if not e or e.get("per_inference_mj") is None:
        # absent means nothing measured it: never show 0
        return _v("not measured", None, title=(e or {}).get("reason") or "no power source for this device", muted=True)
    text = f"{e['per_inference_mj']:.2f}" + (f" ± {e['uncertainty_mj']:.2f}" if e.get("uncertainty_mj") else "")
    return _v(text, e["per_inference_mj"], title=f"source: {e.get('source') or 'unknown'}")


def _sqnr(cell: dict) -> dict:
    """The headline SQNR; a finding instead where the outputs hold NaN/inf, the reason where it is missing."""
    reason = cell.get("numerics_reason") or ""
    if cell.get("nonfinite"):
        return _v("⚠ " + NONFINITE, None, title=reason)
    value = cell.get("sqnr_db")
    return _v(fmt.sqnr(value), value, muted=value is None, title="; ".join(t for t in (_outputs_title(cell), reason) if t))


def _on_device(dn: dict | None) -> dict:
    if dn and dn.get("nonfinite"):
        flag = "⚠ " if dn.get("agrees_with_host") is False else ""
        return _v(flag + NONFINITE, None, title=dn.get("disagreement") or dn.get("reason") or "")
    if not dn or dn.get("sqnr_db") is None:
        return _v("not measured", None, title=(dn or {}).get("reason") or "", muted=True)
    text = fmt.sqnr(dn["sqnr_db"])
    if dn.get("agrees_with_host") is False:
        return _v("⚠ " + text, dn["sqnr_db"], title="disagrees with the host: " + (dn.get("disagreement") or ""))
    return _v(text, dn["sqnr_db"], title="agrees with the host's figures")


def _delegation(cell: dict) -> dict:
    d, t = cell.get("delegated_ops"), cell.get("total_ops")
    if not t:
        return _v(fmt.DASH, None, muted=True)
    left = cell.get("not_delegated") or {}
    title = ("not delegated: " + ", ".join(f"{k} ×{v}" for k, v in left.items())) if left else "all ops delegated"
    return _v(f"{d}/{t}", (d or 0) / t, title=title)


def _runner(cell: dict) -> str:
    if not cell.get("runner"):
        return fmt.DASH
    return cell["runner"] + (f", {cell['threads']} threads" if cell.get("threads") else "")


def _outputs_title(cell: dict) -> str:
    """A model with structured outputs: which leaf the headline is, and the others' SQNR."""
    if not cell.get("outputs"):
        return ""
    others = [f"{name} {fmt.sqnr(fig.get('sqnr_db'))}" for name, fig in cell["outputs"].items()
              if name != cell.get("output")]
    return f"output {cell.get('output')}" + (f"; others: {', '.join(others)}" if others else "")


def output_rows(cells: list[dict]) -> list[dict]:
    """One row per output leaf of every cell whose model has structured outputs (headline leaf first)."""
    rows = []
    for cell in cells:
        outputs = cell.get("outputs") or {}
        names = sorted(outputs, key=lambda n: (n != cell.get("output"), n))
        for name in names:
            fig = outputs[name]
            rows.append({"run": cell["run_id"], "model": cell["model"], "recipe": cell["recipe"],
                         "device": cell["device"], "output": name, "headline": name == cell.get("output"),
                         "sqnr": fmt.sqnr(fig.get("sqnr_db")), "max_abs_error": fmt.num(fig.get("max_abs_error"), 4),
                         "cosine": fmt.num(fig.get("cosine_similarity"), 4),
                         "top1": fmt.num(fig.get("top1_agreement"), 3)})
    return rows
