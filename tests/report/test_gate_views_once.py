"""The gate's outputs read the run once: `qbench run --baseline` makes the `--json` cells on the open
store, and the page, junit.xml, summary.md and the CI step summary take them (cell_views runs once),
and say what they said when each read the store by itself."""

from __future__ import annotations

from qbench.cli import ci
from qbench.report import gather, junit, views
from qbench.report.compare import compare_runs
from qbench.report.html import write_report
from qbench.report.junit import junit_xml
from qbench.report.markdown import markdown_summary
from qbench.report.nightly import nightly_outputs
from qbench.results.store import ResultsStore

from .synthetic import BASE, NEW


def test_page_junit_summary_and_step_summary_take_the_views_the_gate_made(nightly_db, tmp_path, monkeypatch):
    calls = []
    real = views.cell_views

    def counted(store, run_id):
        calls.append(run_id)
        return real(store, run_id)

    for module in (views, gather, junit):
        monkeypatch.setattr(module, "cell_views", counted)
    store = ResultsStore(nightly_db, readonly=True)
    try:
        cells = views.cell_views(store, NEW)  # what run_document makes for `--json`
        result = compare_runs(store, BASE, NEW)
        write_report(store, [NEW], tmp_path / "index.html", comparison=result, views={NEW: cells})
        _, junit_path, md_path = nightly_outputs(store, BASE, NEW, 0.05, tmp_path, result=result, views=cells)
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "step.md"))
        ci.append_step_summary(store, NEW, None, cells)
        assert calls == [NEW]  # once, for --json; everything else took it
        assert store.db is not None  # the open store was read, never closed by a reader
    finally:
        store.close()
    assert junit_path.read_text(encoding="utf-8") == junit_xml(nightly_db, NEW, result)
    assert md_path.read_text(encoding="utf-8") == markdown_summary(nightly_db, NEW, result)
    step = (tmp_path / "step.md").read_text(encoding="utf-8")
    assert step == markdown_summary(nightly_db, NEW).rstrip("\n") + "\n\n"
