"""A Markdown summary for a CI job page (GitHub step summary, GitLab job notes): regressions first,
then one table row per cell, then failures with their causes.

Suite strings are escaped for Markdown and for the HTML that Markdown renderers pass through.
"""

from __future__ import annotations

import re
from pathlib import Path

from qbench.report import fmt
from qbench.report.data import cell_error, cell_key, check_runs, json_field, key_label, reading
from qbench.results.store import ResultsStore
from qbench.text import safe

_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def md(text) -> str:
    """Escape one inline value: Markdown specials, HTML, and newlines (a table row is one line)."""
    s = " ".join(safe(text).split())  # control characters escaped visibly first: one value, one line
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", s)


def code(text) -> str:
    """An inline code span: its content is literal (no escapes apply), so only backticks must go."""
    return "`" + " ".join(safe(text).split()).replace("`", "'") + "`"


def markdown_summary(db_path: str | Path | ResultsStore, run_id: str, comparison=None, *,
                     report_link: str | None = None, views: list[dict] | None = None) -> str:
    """db_path: a store's path or URL, or the open store of the run that just finished; `views`: its
    cells' `--json` views when already made (the gate passes them: cell_views runs once)."""
    from qbench.report.views import cell_views

    with reading(db_path) as store:
        [run_id] = check_runs(store, [run_id])
        run = store.run(run_id)
        rows = store.cells(run_id)
        views = cell_views(store, run_id) if views is None else views
    lines = _head(run, run_id, rows, comparison, report_link)
    if comparison is not None:
        lines += _regressions(comparison)
    lines += _cells_table(rows, views, comparison)
    lines += _findings(rows, views) + _failed(rows) + _outputs(rows)
    if comparison is not None:
        lines += _not_compared(comparison)
    return "\n".join(lines)


def _head(run, run_id: str, rows, comparison, report_link: str | None) -> list[str]:
    """Title, when and what with, the devices, the counts (and the comparison's), the report link."""
    lines = [f"## qbench · {md(run['suite'])} — run {code(run_id)}", ""]
    versions = " · ".join(f"{k} {run[k + '_version']}" for k in ("torch", "executorch") if run[k + "_version"])
    lines.append(f"{md(fmt.when(run['started_at']))} · git {code(run['git_sha'] or 'n/a')} · {versions}")
    devices = {}
    for r in rows:
        info = json_field(r["device_info"]) or {}
        if info and r["device"] not in devices:
            devices[r["device"]] = " · ".join(str(info[k]) for k in ("model", "soc", "os") if info.get(k))
    if devices:
        lines.append("devices: " + "; ".join(f"**{md(d)}** {md(v)}" for d, v in devices.items()))
    status = [r["status"] for r in rows]
    headline = (f"**{len(rows)} cells: {status.count('ok')} ok, {status.count('failed')} failed"
                + (f", {status.count('pending')} not measured" if "pending" in status else "") + "**")
    if comparison is not None:
        n = comparison.counts()
        headline += (f" · vs base {code(comparison.base_run)} (threshold ±{comparison.thresholds['latency']:.0%}): "
                     f"**{n['regressions']} regression(s)**, {n['slower']} slower, {n['faster']} faster, "
                     f"{n['no_change']} no significant change")
    lines += ["", headline, ""]
    return lines + ([f"Full report: {report_link}", ""] if report_link else [])


def _regressions(comparison) -> list[str]:
    lines = [f"> warning: {md(w)}" for w in comparison.warnings]
    if comparison.warnings:
        lines.append("")
    if comparison.regressions:
        lines.append("### Regressions")
        for c in comparison.regressions:
            lines.append(f"- ❌ **{md(key_label(c.key))}**: " + "; ".join(md(x) for x in c.reasons()))
        lines.append("")
    return lines


def _cells_table(rows, views: list[dict], comparison) -> list[str]:
    """The one cells-table spec (report/table.py, with a sweep's axes); the comparison's columns go before CV."""
    from qbench.report import table

    cols = table.with_sweep(table.pick(table.MARKDOWN), views)
    keys = [c.key for c in cols]
    status_at, cv_at = keys.index("status"), keys.index("cv")
    head, numeric = [c.header for c in cols], [c.numeric for c in cols]
    if comparison is not None:
        head[cv_at:cv_at], numeric[cv_at:cv_at] = ["vs base", "latency", "flags"], [True, False, False]
    lines = ["### Cells", "| " + " | ".join(head) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    matched = {c.key: c for c in comparison.cells} if comparison else {}
    for r, view in zip(rows, views):
        cells = [md(v) for v in table.texts(view, cols, plain=True)]
        cells[status_at] = ("**failed**" if r["status"] == "failed" else "not measured" if r["status"] == "pending"
                            else "ok ⚑" if view.get("findings") else "ok")
        if comparison is not None:
            cells[cv_at:cv_at] = _vs_base_cells(matched.get(cell_key(r)))
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def _vs_base_cells(c) -> list[str]:
    """A cell's `vs base`, `latency` verdict and `flags` columns (a cell the base lacks: `new cell`)."""
    if c is None:
        return ["new cell", fmt.DASH, ""]
    lat = c.latency
    ratio = md(f"{lat.ratio:.3f}× {fmt.ci(lat.low, lat.high)}") if lat else fmt.DASH
    verdict = md(c.verdict)
    if (lat and lat.regression) or c.newly_failed:
        verdict = f"❌ **{verdict}**"
    elif c.is_improvement:
        verdict = f"✅ {verdict}"
    flags = "; ".join(md(m.describe()) for m in c.flags)
    return [ratio, verdict, f"❌ {flags}" if flags else ""]


def _findings(rows, views: list[dict]) -> list[str]:
    """report/findings.py: what the figures alone do not say."""
    from qbench.report.findings import findings_text

    flagged = [(r, v) for r, v in zip(rows, views) if v.get("findings")]
    if not flagged:
        return []
    return ["### Findings (⚑)", *[f"- {md(key_label(cell_key(r)))}: {md(findings_text(v))}" for r, v in flagged], ""]


def _failed(rows) -> list[str]:
    failed = [r for r in rows if r["status"] == "failed"]
    if not failed:
        return []
    return ["### Failed cells", *[f"- **{md(key_label(cell_key(r)))}**: {md(fmt.first_line(cell_error(r), 300))}"
                                  for r in failed], ""]


def _outputs(rows) -> list[str]:
    structured = [(r, e) for r in rows if isinstance(e := json_field(r["extra"]), dict) and e.get("outputs")]
    if not structured:
        return []
    lines = ["### Outputs (SQNR per output; the table shows the first named)"]
    for r, extra in structured:
        head = extra.get("output")
        leaves = sorted(extra["outputs"].items(), key=lambda kv: kv[0] != head)
        lines.append(f"- {md(key_label(cell_key(r)))}: "
                     + ", ".join(f"{code(n)} {fmt.sqnr(f.get('sqnr_db'))}" for n, f in leaves))
    return lines + [""]


def _not_compared(comparison) -> list[str]:
    if not (comparison.only_in_base or comparison.only_in_new):
        return []
    lines = ["### Not compared"]
    for name, keys in ((f"only in base {code(comparison.base_run)}", comparison.only_in_base),
                       ("only in this run", comparison.only_in_new)):
        if keys:
            lines.append(f"- {name} ({len(keys)}): " + ", ".join(md(key_label(k)) for k in keys))
    return lines + [""]


def write_markdown(db_path: str | Path | ResultsStore, run_id: str, out: Path, comparison=None, *,
                   report_link: str | None = None, views: list[dict] | None = None) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown_summary(db_path, run_id, comparison, report_link=report_link, views=views),
                   encoding="utf-8")
    return out
