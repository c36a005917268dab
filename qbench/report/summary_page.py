"""The minimal per-run HTML page (reports/<run_id>/index.html): the summary table, self-contained.

Every string from a suite goes through Jinja2's autoescape: a model named `<script>` is text.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>qbench {{ doc.suite }} — {{ doc.run_id }}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:right}
td:nth-child(-n+4),th:nth-child(-n+4){text-align:left}.failed{color:#b00}.muted{color:#888}
.scroll{overflow-x:auto}.trust{border-left:4px solid #b7791f;padding:4px 10px}.trust.clean{border-left-color:#2f8f5b}
.trust li{overflow-wrap:anywhere}@media (max-width:700px){body{margin:1em .6em}}
</style></head><body>
<h1>qbench — {{ doc.suite }}</h1>
<p>run <code>{{ doc.run_id }}</code> · {{ doc.status }} · {{ doc.started_at }} → {{ doc.ended_at or "…" }} ·
torch {{ doc.versions.torch_version }} · executorch {{ doc.versions.executorch_version }} · git {{ doc.git_sha or "n/a" }}</p>
<div id="trust" class="trust{{ ' clean' if t.clean }}"><p><b>What to trust:</b>
{% if t.clean %}all {{ t.measured }} measured cells stable, none failed.{% else %}{{ t.measured }} measured
{%- if t.unsure %} · <b>{{ t.unsure | length }} {{ t.word }}</b> (medians may be off){% endif %}
{%- if t.failed %} · <b class="failed">{{ t.failed | length }} failed</b>{% endif %}.{% endif %}</p>
{% if t.unsure or t.failed %}<ul>{% for u in t.unsure %}<li>{{ u.name }}: {{ u.verdict }}, {{ u.why }}</li>{% endfor %}
{% for f in t.failed %}<li class="failed">{{ f.name }}: failed at {{ f.stage }}: {{ f.cause }}</li>{% endfor %}</ul>{% endif %}</div>
<div class="scroll"><table id="cells"><thead><tr>{% for col in cols %}<th>{{ col.header }}</th>{% endfor %}</tr></thead><tbody>
{% for c, texts in rows %}<tr class="{{ c.status }}">{% for col, text in zip(cols, texts) %}<td>{{ text }}{% if col.key == "status" and c.error %}: {{ c.error }}{% endif %}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
<p class="muted">Latency: pooled raw samples of all trials (fresh process each). SQNR and top-1 agreement: the exported
program against the fp32 eager model on held-out inputs.</p>
</body></html>
"""


def write_summary_page(doc: dict, out_dir: Path) -> Path:
    import jinja2

    from qbench.report import table
    from qbench.report.trust import trust

    cols = table.with_sweep(table.pick(table.PAGE), doc["cells"])  # the one cells-table spec
    rows = [(c, table.texts(c, cols, plain=True)) for c in doc["cells"]]
    env = jinja2.Environment(autoescape=True)
    html = env.from_string(TEMPLATE).render(doc=doc, cols=cols, rows=rows, zip=zip, t=trust(doc["cells"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
