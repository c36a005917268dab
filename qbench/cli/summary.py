"""The end-of-run summary: one cells-table spec, three layouts.

- `table`: a rich table for a terminal (numbers never wrap or shrink; long names fold);
- `plain`: aligned columns with no width limit, for CI logs (nothing is ever cut);
- `markdown`: a GitHub-flavoured table, for job pages and pull-request comments.

The default is `table` when stdout is a terminal, else `plain`. The columns are the cells-table spec's
(report/table.py SUMMARY): a column is added there, once.
"""

from __future__ import annotations

import os
import sys

LAYOUTS = ("table", "plain", "markdown")


def _columns(doc: dict):
    """The summary's columns, from the one cells-table spec (report/table.py), with a sweep's axes and,
    when gated, `vs base`."""
    from qbench.report import table

    return table.with_baseline(table.with_sweep(table.pick(table.SUMMARY), doc["cells"]), doc["cells"])


def _label(c: dict) -> str:
    return f"{c['model']}/{c['recipe']}@{c['device']}" + (f" [{c['sweep']}]" if c.get("sweep") else "")


def notes(doc: dict) -> list[str]:
    """Closing lines a reader must not miss: noisy medians and what disturbed them; cells whose numerics
    on the device disagree with the host's (int8 kernels differ by CPU)."""
    out = []
    noisy = [c for c in doc["cells"] if (c.get("stability") or {}).get("verdict") == "noisy"]
    if noisy:
        why = "; ".join(f"{_label(c)}: {c['stability']['reason']}" for c in noisy[:3])
        out.append(f"{len(noisy)} noisy cell(s), their medians may be off: {why}" + (" …" if len(noisy) > 3 else ""))
    differ = [c for c in doc["cells"] if (c.get("device_numerics") or {}).get("agrees_with_host") is False]
    if differ:
        out.append(f"{len(differ)} cell(s) whose numerics on the device disagree with the host's:")
        out += [f"  {_label(c)}: {c['device_numerics'].get('disagreement')}"
                for c in differ]
    return out


def title(doc: dict) -> str:
    return f"{doc['suite']} — {doc['run_id']}"


def rows(doc: dict) -> list[list[str]]:
    from qbench.report import table

    cols = _columns(doc)
    return [table.texts(c, cols, plain=True) for c in doc["cells"]]


def failures(doc: dict) -> list[str]:
    return [f"{_label(c)}: {_one_line(c.get('error'))}"
            for c in doc["cells"] if c["status"] == "failed"]


def _one_line(text) -> str:
    return " ".join(str(text or "").split())


def default_layout(stream=None) -> str:
    stream = stream or sys.stdout
    return "table" if hasattr(stream, "isatty") and stream.isatty() else "plain"


def render_plain(doc: dict) -> str:
    """Aligned columns as wide as their widest value: a log line may be long, never cut."""
    cols = _columns(doc)
    head = [col.header for col in cols]
    body = rows(doc)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(cols))]

    def line(cells: list[str]) -> str:
        parts = [v.rjust(w) if col.numeric else v.ljust(w) for col, v, w in zip(cols, cells, widths)]
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
    cols = _columns(doc)
    out.append("| " + " | ".join(md(col.header) for col in cols) + " |")
    out.append("|" + "|".join("---:" if col.numeric else "---" for col in cols) + "|")
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
    for i, col in enumerate(_columns(doc)):
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
