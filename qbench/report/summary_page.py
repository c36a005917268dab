"""The minimal per-run HTML page (reports/<run_id>/index.html): the summary table, self-contained.

Every string from a suite goes through Jinja2's autoescape: a model named `<script>` is text.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>qbench {{ doc.suite }} — {{ doc.run_id }}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:right}
td:nth-child(-n+4),th:nth-child(-n+4){text-align:left}.failed{color:#b00}.muted{color:#888}
</style></head><body>
<h1>qbench — {{ doc.suite }}</h1>
<p>run <code>{{ doc.run_id }}</code> · {{ doc.status }} · {{ doc.started_at }} → {{ doc.ended_at or "…" }} ·
torch {{ doc.versions.torch_version }} · executorch {{ doc.versions.executorch_version }} · git {{ doc.git_sha or "n/a" }}</p>
<table id="cells"><thead><tr><th>model</th><th>recipe</th><th>device</th><th>status</th><th>median ms</th><th>p90 ms</th>
<th>CV</th><th>speedup vs fp32</th><th>.pte KiB</th><th>SQNR dB</th><th>top-1 agree</th><th>delegated ops</th><th>runner</th></tr></thead><tbody>
{% for c in doc.cells %}<tr class="{{ c.status }}"><td>{{ c.model }}</td><td>{{ c.recipe }}</td><td>{{ c.device }}</td>
<td>{{ c.status }}{% if c.error %}: {{ c.error }}{% endif %}</td>
<td>{{ fmt(c.latency_ms.median if c.latency_ms else None, 3) }}</td><td>{{ fmt(c.latency_ms.p90 if c.latency_ms else None, 3) }}</td>
<td>{{ fmt(c.latency_ms.cv if c.latency_ms else None, 3) }}</td><td>{{ speedup(c.speedup_vs_fp32, c.speedup_ci) }}</td>
<td>{{ fmt(c.pte_bytes / 1024 if c.pte_bytes else None, 1) }}</td><td>{{ fmt(c.sqnr_db, 1) }}</td><td>{{ fmt(c.top1_agreement, 3) }}</td>
<td>{% if c.total_ops %}{{ c.delegated_ops }}/{{ c.total_ops }}{% endif %}</td><td>{{ c.runner or "" }}</td></tr>
{% endfor %}</tbody></table>
<p class="muted">Latency: pooled raw samples of all trials (fresh process each). SQNR and top-1 agreement: the exported
program against the fp32 eager model on held-out inputs.</p>
</body></html>
"""


def _fmt(value, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def write_summary_page(doc: dict, out_dir: Path) -> Path:
    import jinja2

    env = jinja2.Environment(autoescape=True)
    from qbench.results.views import speedup_text

    html = env.from_string(TEMPLATE).render(doc=doc, fmt=_fmt, speedup=speedup_text)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
