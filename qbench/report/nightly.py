"""What a nightly CI job keeps: JUnit XML, a Markdown summary (and optionally the HTML report),
all from one comparison of the new run against its baseline.

    result, junit, md = nightly_outputs(db, base_run, new_run, 0.05, Path("reports/nightly"))
    if result is not None and result.regressions: exit ExitCode.REGRESSION
"""

from __future__ import annotations

from pathlib import Path

from qbench.report.compare import CompareResult, compare_runs
from qbench.report.junit import write_junit
from qbench.report.markdown import write_markdown
from qbench.results.store import ResultsStore

JUNIT_NAME, MARKDOWN_NAME, HTML_NAME = "junit.xml", "summary.md", "report.html"


def nightly_outputs(
    db_path: str | Path | ResultsStore,
    base_run: str | None,
    new_run: str,
    threshold: float,
    out_dir: Path,
    *,
    accuracy_drop_db: float = 1.0,
    top1_drop: float = 0.01,
    growth: float = 0.05,
    html: bool = False,
    result: CompareResult | None = None,
    views: list[dict] | None = None,
) -> tuple[CompareResult | None, Path, Path]:
    """Write out_dir/junit.xml and out_dir/summary.md (+ out_dir/report.html if `html`).

    base_run None (the first night, no baseline yet) gives no comparison: the outputs then only
    report the new run's own failures, and the result is None. `result`: a comparison already made
    (e.g. when writing again to another folder), used instead of comparing again. `views`: the new
    run's `--json` cells when already made (`qbench run` passes its open store and them).
    """
    out_dir = Path(out_dir)
    if base_run is not None and result is None:
        result = compare_runs(db_path, base_run, new_run, threshold=threshold, accuracy_drop_db=accuracy_drop_db,
                              top1_drop=top1_drop, growth=growth)
    report_link = None
    if html:
        from qbench.report.html import write_report

        write_report(db_path, [base_run, new_run] if base_run else [new_run], out_dir / HTML_NAME, threshold=threshold)
        report_link = HTML_NAME
    junit = write_junit(db_path, new_run, out_dir / JUNIT_NAME, result, views=views)
    md = write_markdown(db_path, new_run, out_dir / MARKDOWN_NAME, result, report_link=report_link, views=views)
    return result, junit, md
