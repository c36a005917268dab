"""The end-of-run summary: one cells-table spec, three layouts.

- `table`: a rich table for a terminal (numbers and names never wrap or shrink);
- `plain`: aligned columns with no width limit, for CI logs (nothing is ever cut);
- `markdown`: a GitHub-flavoured table, for job pages and pull-request comments.

The default is `table` when stdout is a terminal, else `plain`. The columns are the cells-table spec's
(report/table.py SUMMARY): a column is added there, once.
"""

from __future__ import annotations

import os
import sys

from qbench.text import cell_label, safe

LAYOUTS = ("table", "plain", "markdown")


def _columns(doc: dict, wide: bool = False):
    """The summary's columns, from the one cells-table spec (report/table.py: SUMMARY, or SUMMARY_WIDE
    for `--wide`), with a sweep's axes and, when gated, `vs base`."""
    from qbench.report import table
    from qbench.report.generation_table import with_generation

    cols = table.scored(table.pick(table.SUMMARY_WIDE if wide else table.SUMMARY), doc["cells"])
    return table.with_baseline(with_generation(table.with_sweep(cols, doc["cells"]), doc["cells"]), doc["cells"])


def _label(c: dict) -> str:
    return cell_label(c["model"], c["recipe"], c["device"], c.get("sweep"))


# What each verdict that is not `stable` means, for the closing note (pipeline/adaptive.py).
_NOT_STABLE = {
    "disturbed": "other work ran during their trials and clean trials ran out; their medians may be off",
    "imprecise": "no trial was measured as disturbed, but their medians' CIs stayed wider than the precision "
                 "target; more trials (max_trials) or longer ones narrow them (min_seconds >= 0.2 also lets "
                 "/proc/stat judge other work on every core)",
    "noisy": "their medians may be off (a store from before disturbed/imprecise were told apart)",
}


def notes(doc: dict) -> list[str]:
    """Closing lines a reader must not miss: disturbed and imprecise medians, one line a cell with why;
    cells with missing numerics (NaN/inf); findings about a cell (report/findings.py); cells whose
    numerics on the device disagree with the host's (int8 kernels differ by CPU)."""
    from qbench.report.findings import findings_text

    out = []
    for verdict, meaning in _NOT_STABLE.items():
        cells = [c for c in doc["cells"] if (c.get("stability") or {}).get("verdict") == verdict]
        if cells:
            out.append(f"{len(cells)} {verdict} cell(s): {meaning}:")
            out += [f"  {_label(c)}: {c['stability']['reason']}" for c in cells]
    unjudged = [c for c in doc["cells"] if c.get("numerics_reason")]  # NaN/inf outputs, an empty output
    if unjudged:
        out.append(f"{len(unjudged)} cell(s) with numerics figures missing:")
        out += [f"  {_label(c)}: {c['numerics_reason']}" for c in unjudged]
    flagged = [c for c in doc["cells"] if c.get("findings")]
    if flagged:
        out.append(f"{len(flagged)} cell(s) with findings (⚑):")
        out += [f"  {_label(c)}: {findings_text(c)}" for c in flagged]
    differ = [c for c in doc["cells"] if (c.get("device_numerics") or {}).get("agrees_with_host") is False]
    if differ:
        out.append(f"{len(differ)} cell(s) whose numerics on the device disagree with the host's:")
        out += [f"  {_label(c)}: {c['device_numerics'].get('disagreement')}"
                for c in differ]
    return out


def title(doc: dict) -> str:
    return f"{safe(doc['suite'])} — {doc['run_id']}"


def rows(doc: dict, wide: bool = False) -> list[list[str]]:
    from qbench.report import table

    cols = _columns(doc, wide)
    return [table.texts(c, cols, plain=True) for c in doc["cells"]]


def failures(doc: dict) -> list[str]:
    return [f"{_label(c)}: {_one_line(c.get('error'))}"
            for c in doc["cells"] if c["status"] == "failed"]


def _one_line(text) -> str:
    return safe(" ".join(str(text or "").split()))


def default_layout(stream=None) -> str:
    stream = stream or sys.stdout
    return "table" if hasattr(stream, "isatty") and stream.isatty() else "plain"


def render_plain(doc: dict, wide: bool = False) -> str:
    """Aligned columns as wide as their widest value: a log line may be long, never cut."""
    cols = _columns(doc, wide)
    head = [col.header for col in cols]
    body = rows(doc, wide)
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


def render_markdown(doc: dict, wide: bool = False) -> str:
    from qbench.report.markdown import code, md

    out = [f"### qbench · {md(doc['suite'])} — run {code(doc['run_id'])}", ""]
    cols = _columns(doc, wide)
    out.append("| " + " | ".join(md(col.header) for col in cols) + " |")
    out.append("|" + "|".join("---:" if col.numeric else "---" for col in cols) + "|")
    for r in rows(doc, wide):
        out.append("| " + " | ".join(md(v) for v in r) + " |")
    if notes(doc):
        out += [""] + [f"- {md(n.strip())}" for n in notes(doc)]
    failed = failures(doc)
    if failed:
        out += ["", f"**{len(failed)} failed cell(s):**"]
        out += [f"- {md(f)}" for f in failed]
    return "\n".join(out) + "\n"


def rich_table(doc: dict, wide: bool = False):
    from rich.markup import escape
    from rich.table import Table

    body = rows(doc, wide)
    table = Table(title=escape(title(doc)), title_justify="left")  # a title is read as markup
    for i, col in enumerate(_columns(doc, wide)):
        widest = max([len(col.header), *(len(r[i]) for r in body)])
        # neither a number nor a name ever wraps or shrinks below its width (a folded name cannot be
        # grepped); a terminal too narrow for that gets the plain layout
        table.add_column(col.header, justify="right" if col.numeric else "left", no_wrap=True, min_width=widest)
    for r, cell in zip(body, doc["cells"]):
        shown = [escape(v) for v in r]
        if cell["status"] == "failed":
            shown[-1] = "[red]failed[/]"
        table.add_row(*shown)
    return table


def print_summary(doc: dict, layout: str | None = None, stream=None, wide: bool = False) -> None:
    """Write the summary in `layout` (default: by whether `stream` is a terminal) to `stream` (stdout);
    `wide`: every column (p90, CV, RSS, top-1, delegation) instead of the 100–120 column default."""
    stream = stream or sys.stdout
    layout = layout or default_layout(stream)
    if layout == "plain":
        stream.write(render_plain(doc, wide))
    elif layout == "markdown":
        stream.write(render_markdown(doc, wide))
    else:
        _print_rich(doc, stream, wide)
    stream.flush()


def _print_rich(doc: dict, stream, wide: bool = False) -> None:
    from rich.console import Console

    table = rich_table(doc, wide)
    console = Console(file=stream)
    # the narrowest the table gets without cutting: numbers whole, names folded to their min_width
    minimum = sum(c.min_width or 0 for c in table.columns) + 3 * len(table.columns) + 1
    if console.is_terminal:
        if minimum > console.width:
            stream.write(render_plain(doc, wide))
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
