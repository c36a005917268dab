"""A Markdown summary for a CI job page (GitHub step summary, GitLab job notes): regressions first,
then one table row per cell, then failures with their causes.

Suite strings are escaped for Markdown and for the HTML that Markdown renderers pass through.
"""

from __future__ import annotations

import re
from pathlib import Path

from qbench.report import fmt
from qbench.report.data import cell_error, cell_key, check_runs, json_field, key_label, open_for_reading
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


def markdown_summary(db_path: str | Path, run_id: str, comparison=None, *, report_link: str | None = None) -> str:
    from qbench.report import table
    from qbench.report.findings import findings_text
    from qbench.report.views import cell_views

    store = open_for_reading(db_path)
    try:
        [run_id] = check_runs(store, [run_id])
        run = store.run(run_id)
        rows = store.cells(run_id)
        views = cell_views(store, run_id)
    finally:
        store.close()
    matched = {c.key: c for c in comparison.cells} if comparison else {}
    status = [r["status"] for r in rows]
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
    lines.append("")
    headline = (f"**{len(rows)} cells: {status.count('ok')} ok, {status.count('failed')} failed"
                + (f", {status.count('pending')} not measured" if "pending" in status else "") + "**")
    if comparison is not None:
        n = comparison.counts()
        headline += (f" · vs base {code(comparison.base_run)} (threshold ±{comparison.thresholds['latency']:.0%}): "
                     f"**{n['regressions']} regression(s)**, {n['slower']} slower, {n['faster']} faster, "
                     f"{n['no_change']} no significant change")
    lines += [headline, ""]
    if report_link:
        lines += [f"Full report: {report_link}", ""]
    if comparison is not None:
        lines += [f"> warning: {md(w)}" for w in comparison.warnings]
        if comparison.warnings:
            lines.append("")
        if comparison.regressions:
            lines.append("### Regressions")
            for c in comparison.regressions:
                lines.append(f"- ❌ **{md(key_label(c.key))}**: " + "; ".join(md(x) for x in c.reasons()))
            lines.append("")

    lines.append("### Cells")
    # the one cells-table spec (with a sweep's axes); the comparison's columns go before CV
    cols = table.with_sweep(table.pick(table.MARKDOWN), views)
    keys = [c.key for c in cols]
    status_at, cv_at = keys.index("status"), keys.index("cv")
    head = [c.header for c in cols]
    numeric = [c.numeric for c in cols]
    if comparison is not None:
        head[cv_at:cv_at], numeric[cv_at:cv_at] = ["vs base", "latency", "flags"], [True, False, False]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    for r, view in zip(rows, views):
        key = cell_key(r)
        cells = [md(v) for v in table.texts(view, cols, plain=True)]
        cells[status_at] = ("**failed**" if r["status"] == "failed"
                            else "not measured" if r["status"] == "pending"
                            else "ok ⚑" if view.get("findings") else "ok")
        if comparison is not None:
            c = matched.get(key)
            if c is None:
                cells[cv_at:cv_at] = ["new cell", fmt.DASH, ""]
            else:
                lat = c.latency
                ratio = md(f"{lat.ratio:.3f}× {fmt.ci(lat.low, lat.high)}") if lat else fmt.DASH
                verdict = md(c.verdict)
                if (lat and lat.regression) or c.newly_failed:
                    verdict = f"❌ **{verdict}**"
                elif c.is_improvement:
                    verdict = f"✅ {verdict}"
                flags = "; ".join(md(m.describe()) for m in c.flags)
                cells[cv_at:cv_at] = [ratio, verdict, f"❌ {flags}" if flags else ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")

    flagged = [(r, v) for r, v in zip(rows, views) if v.get("findings")]
    if flagged:  # report/findings.py: what the figures alone do not say
        lines.append("### Findings (⚑)")
        lines += [f"- {md(key_label(cell_key(r)))}: {md(findings_text(v))}" for r, v in flagged]
        lines.append("")
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines.append("### Failed cells")
        for r in failed:
            lines.append(f"- **{md(key_label(cell_key(r)))}**: "
                         f"{md(fmt.first_line(cell_error(r), 300))}")
        lines.append("")
    structured = [(r, e) for r in rows if isinstance(e := json_field(r["extra"]), dict) and e.get("outputs")]
    if structured:
        lines.append("### Outputs (SQNR per output; the table shows the first named)")
        for r, extra in structured:
            head = extra.get("output")
            leaves = sorted(extra["outputs"].items(), key=lambda kv: kv[0] != head)
            lines.append(f"- {md(key_label(cell_key(r)))}: "
                         + ", ".join(f"{code(n)} {fmt.sqnr(f.get('sqnr_db'))}" for n, f in leaves))
        lines.append("")
    if comparison is not None and (comparison.only_in_base or comparison.only_in_new):
        lines.append("### Not compared")
        for name, keys in ((f"only in base {code(comparison.base_run)}", comparison.only_in_base),
                           ("only in this run", comparison.only_in_new)):
            if keys:
                lines.append(f"- {name} ({len(keys)}): " + ", ".join(md(key_label(k)) for k in keys))
        lines.append("")
    return "\n".join(lines)


def write_markdown(db_path: str | Path, run_id: str, out: Path, comparison=None, *,
                   report_link: str | None = None) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown_summary(db_path, run_id, comparison, report_link=report_link), encoding="utf-8")
    return out
