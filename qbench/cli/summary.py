"""The end-of-run summary: one cells-table spec, three layouts.

- `table`: a rich table for a terminal (numbers never wrap or shrink; long names fold);
- `plain`: aligned columns with no width limit, for CI logs (nothing is ever cut);
- `markdown`: a GitHub-flavoured table, for job pages and pull-request comments.

The default is `table` when stdout is a terminal, else `plain`. A column is added once, in COLUMNS.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Callable

LAYOUTS = ("table", "plain", "markdown")


def _num(value, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[dict], str]
    numeric: bool = True


def _latency(key: str) -> Callable[[dict], str]:
    from qbench.report.fmt import ms  # three significant digits: 0.00412, 1.23, 123

    return lambda c: ms((c.get("latency_ms") or {}).get(key), dash="")


COLUMNS: list[Column] = [
    Column("model", lambda c: str(c["model"]), numeric=False),
    Column("recipe", lambda c: str(c["recipe"]), numeric=False),
    Column("device", lambda c: str(c["device"]), numeric=False),
    Column("median ms", _latency("median")),
    Column("p90 ms", _latency("p90")),
    Column("CV", lambda c: _num((c.get("latency_ms") or {}).get("cv"), 3)),
    Column("stability", lambda c: _stability(c.get("stability")), numeric=False),
    Column("vs fp32", lambda c: _speedup(c)),
    Column(".pte KiB", lambda c: _num(c["pte_bytes"] / 1024 if c.get("pte_bytes") else None, 1)),
    Column("RSS MiB", lambda c: _num(c["peak_rss_bytes"] / 2**20 if c.get("peak_rss_bytes") else None, 1)),
    Column("SQNR dB", lambda c: _num(c.get("sqnr_db"), 1)),
    Column("top-1", lambda c: _num(c.get("top1_agreement"), 2)),
    Column("delegated", lambda c: f"{c['delegated_ops']}/{c['total_ops']}" if c.get("total_ops") else ""),
    Column("status", lambda c: str(c["status"]), numeric=False),
]


def _stability(s: dict | None) -> str:
    """'stable ±1.2%' / 'noisy ±8.0%' (the median's 95% CI half-width)."""
    if not s:
        return ""
    lo, hi = s["median_ci_ms"]
    mid = (lo + hi) / 2
    return f"{s['verdict']} ±{(hi - lo) / 2 / mid:.1%}" if mid else s["verdict"]


def _speedup(c: dict) -> str:
    """'1.84× [1.71–1.95]', or 'no clear difference' when the speedup's CI includes 1.0."""
    from qbench.report.views import speedup_text

    return speedup_text(c.get("speedup_vs_fp32"), c.get("speedup_ci"))


def notes(doc: dict) -> list[str]:
    """Closing lines a reader must not miss: noisy medians and what disturbed them; cells whose numerics
    on the device disagree with the host's (int8 kernels differ by CPU)."""
    out = []
    noisy = [c for c in doc["cells"] if (c.get("stability") or {}).get("verdict") == "noisy"]
    if noisy:
        why = "; ".join(f"{c['model']}/{c['recipe']}@{c['device']}: {c['stability']['reason']}" for c in noisy[:3])
        out.append(f"{len(noisy)} noisy cell(s), their medians may be off: {why}" + (" …" if len(noisy) > 3 else ""))
    differ = [c for c in doc["cells"] if (c.get("device_numerics") or {}).get("agrees_with_host") is False]
    if differ:
        out.append(f"{len(differ)} cell(s) whose numerics on the device disagree with the host's:")
        out += [f"  {c['model']}/{c['recipe']}@{c['device']}: {c['device_numerics'].get('disagreement')}"
                for c in differ]
    return out


def title(doc: dict) -> str:
    return f"{doc['suite']} — {doc['run_id']}"


def rows(doc: dict) -> list[list[str]]:
    return [[col.value(c) for col in COLUMNS] for c in doc["cells"]]


def failures(doc: dict) -> list[str]:
    return [f"{c['model']}/{c['recipe']}@{c['device']}: {_one_line(c.get('error'))}"
            for c in doc["cells"] if c["status"] == "failed"]


def _one_line(text) -> str:
    return " ".join(str(text or "").split())


def default_layout(stream=None) -> str:
    stream = stream or sys.stdout
    return "table" if hasattr(stream, "isatty") and stream.isatty() else "plain"


def render_plain(doc: dict) -> str:
    """Aligned columns as wide as their widest value: a log line may be long, never cut."""
    head = [col.header for col in COLUMNS]
    body = rows(doc)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(COLUMNS))]

    def line(cells: list[str]) -> str:
        parts = [v.rjust(w) if col.numeric else v.ljust(w) for col, v, w in zip(COLUMNS, cells, widths)]
        return "  ".join(parts).rstrip()

    out = [title(doc), line(head), *(line(r) for r in body), *notes(doc)]
    failed = failures(doc)
    if failed:
        out.append(f"{len(failed)} failed cell(s):")
        out += [f"  {f}" for f in failed]
    return "\n".join(out) + "\n"


def render_markdown(doc: dict) -> str:
    from qbench.report.markdown import code, md

    out = [f"### qbench · {md(doc['suite'])} — run {code(doc['run_id'])}", ""]
    out.append("| " + " | ".join(md(col.header) for col in COLUMNS) + " |")
    out.append("|" + "|".join("---:" if col.numeric else "---" for col in COLUMNS) + "|")
    for r in rows(doc):
        out.append("| " + " | ".join(md(v) for v in r) + " |")
    if notes(doc):
        out += [""] + [f"- {md(n.strip())}" for n in notes(doc)]
    failed = failures(doc)
    if failed:
        out += ["", f"**{len(failed)} failed cell(s):**"]
        out += [f"- {md(f)}" for f in failed]
    return "\n".join(out) + "\n"


def rich_table(doc: dict):
    from rich.markup import escape
    from rich.table import Table

    body = rows(doc)
    table = Table(title=title(doc), title_justify="left")
    for i, col in enumerate(COLUMNS):
        widest = max([len(col.header), *(len(r[i]) for r in body)])
        if col.numeric:  # a number keeps all its digits: it never wraps and never shrinks below its width
            table.add_column(col.header, justify="right", no_wrap=True, min_width=widest)
        else:  # a name folds onto more lines, but keeps a readable width
            table.add_column(col.header, overflow="fold", min_width=min(widest, 8))
    for r, cell in zip(body, doc["cells"]):
        shown = [escape(v) for v in r]
        if cell["status"] == "failed":
            shown[-1] = "[red]failed[/]"
        table.add_row(*shown)
    return table


def print_summary(doc: dict, layout: str | None = None, stream=None) -> None:
    """Write the summary in `layout` (default: by whether `stream` is a terminal) to `stream` (stdout)."""
    stream = stream or sys.stdout
    layout = layout or default_layout(stream)
    if layout == "plain":
        stream.write(render_plain(doc))
    elif layout == "markdown":
        stream.write(render_markdown(doc))
    else:
        _print_rich(doc, stream)
    stream.flush()


def _print_rich(doc: dict, stream) -> None:
    from rich.console import Console

    table = rich_table(doc)
    console = Console(file=stream)
    # the narrowest the table gets without cutting: numbers whole, names folded to their min_width
    minimum = sum(c.min_width or 0 for c in table.columns) + 3 * len(table.columns) + 1
    if console.is_terminal:
        if minimum > console.width:
            stream.write(render_plain(doc))
            return
    else:  # a file has no width: $COLUMNS when every number fits in it, else as wide as the table
        natural = Console(file=stream, width=10_000).measure(table).maximum
        console = Console(file=stream, width=max(minimum, _env_columns() or natural))
    console.print(table)
    for n in notes(doc):
        console.print(n, markup=False, highlight=False, soft_wrap=True, style="yellow")
    failed = failures(doc)
    if failed:
        console.print(f"[red]{len(failed)} failed cell(s):[/]")
        for f in failed:
            console.print(f"  {f}", markup=False, highlight=False, soft_wrap=True)


def _env_columns() -> int | None:
    try:
        return int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return None
