"""`qbench run`: validate, run the grid with a progress bar, print a summary, write the page."""

from __future__ import annotations

import json
import logging
import sys

from qbench.cli.logs import LOG_NAME, attach_run_log, detach, progress_line
from qbench.cli.progress import LineProgress, cell_line
from qbench.errors import ExitCode

log = logging.getLogger("qbench.run")


class RichProgress:
    """Progress on stderr (stdout stays clean for --json)."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=True)
        self.task = None

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def start(self, total: int) -> None:
        self.task = self.bar.add_task("starting", total=total)

    def stage(self, text: str) -> None:
        self.bar.update(self.task, description=text[:70])

    def advance(self, n: int = 1) -> None:
        self.bar.advance(self.task, n)

    def log(self, text: str) -> None:
        progress_line(text)
        self.console.print(text, markup=False, highlight=False)

    def cell_done(self, label: str, cell: dict) -> None:
        progress_line("[ok] " + cell_line(label, cell))


def run_command(args) -> int:
    from rich.console import Console

    from qbench.pipeline.orchestrator import begin_run
    from qbench.results.frame import default_db
    from qbench.results.store import ResultsStore
    from qbench.pipeline.check import check_suite
    from qbench.suite.loader import load_suite

    quiet = args.verbosity < 0
    console = Console(stderr=True, quiet=quiet)
    args.suite = _suite_path(args.suite)
    with console.status("checking the suite…"):
        checked = check_suite(load_suite(args.suite), devices=args.device)
    if args.check:
        console.print(f"{args.suite}: ok — {len(checked.suite.models)} models × {len(checked.recipes)} recipes × "
                      f"{len(checked.device_names)} devices")
        return ExitCode.OK
    store = ResultsStore(args.db or default_db())
    run_id = begin_run(checked, store, resume=args.resume)
    run_log = attach_run_log(args.reports_dir / run_id)
    try:
        return _run(args, checked, store, run_id, console)
    finally:
        detach(run_log)


def _run(args, checked, store, run_id: str, console) -> int:
    from qbench.cli import ci
    from qbench.cli.summary import print_summary
    from qbench.export.cache import ArtifactCache
    from qbench.pipeline.orchestrator import execute
    from qbench.results.views import run_document

    log.info("run %s · suite %s · store %s · log %s", run_id, checked.suite.name, store.path,
             args.reports_dir / run_id / LOG_NAME)
    console.print(f"run [bold]{run_id}[/] · suite {checked.suite.name} · store {store.path}", highlight=False)
    bar = console.is_terminal and not console.quiet
    try:
        with (RichProgress(console) if bar else LineProgress(quiet=console.quiet)) as progress:
            outcome = execute(checked, store, run_id, ArtifactCache(args.cache_dir), progress)
    except KeyboardInterrupt:
        done = sum(1 for c in store.cells(run_id) if c["status"] != "pending")
        sys.stderr.write(f"interrupted: {done} cells finished and kept. Resume with:\n"
                         f"  qbench run {args.suite} --resume {run_id}" + (f" --db {args.db}" if args.db else "") + "\n")
        return ExitCode.INTERRUPTED
    doc = run_document(store, run_id)
    out_dir = args.reports_dir / run_id
    page = _write_page(store.path, run_id, doc, out_dir, console)
    doc["report"] = str(page)
    gate = _nightly(args, store, checked.suite.name, run_id, out_dir, console)
    if gate is not None:
        doc["baseline"] = gate
    ci.append_step_summary(store.path, run_id, gate)
    if args.json:
        sys.stdout.write(json.dumps(doc, indent=1, default=_jsonable) + "\n")
    else:
        print_summary(doc, args.summary)
    console.print(f"report: {page}", highlight=False)
    if gate is not None and gate["regressions"] and args.fail_on_regression:
        sys.stderr.write(f"regression against run {gate['run_id']}: {len(gate['regressions'])} cell(s); "
                         f"see {gate['summary']}\n")
        return ExitCode.REGRESSION
    return ExitCode.CELLS_FAILED if outcome.failed else ExitCode.OK


def _suite_path(path):
    """The file, else a suite bundled with qbench by that name (`smoke`, `suites/smoke.yaml`)."""
    from qbench.bundled import find_suite, suite_names
    from qbench.errors import UsageError

    if path.exists():
        return path
    found = find_suite(path)
    if found is None:
        raise UsageError(f"{path}: no such file; bundled suites: {', '.join(suite_names()) or 'none'} "
                         f"(or `qbench init` writes a first suite here)")
    return found


def _write_page(db, run_id: str, doc: dict, out_dir, console):
    """The full report for this run; the minimal summary page if the report itself fails (never lose it)."""
    from qbench.report.html import write_report
    from qbench.report.summary_page import write_summary_page

    try:
        return write_report(db, [run_id], out_dir / "index.html")
    except Exception as exc:  # a report bug must not cost the user the run's page
        console.print(f"report: the full report failed ({type(exc).__name__}: {exc}); writing the summary page")
        return write_summary_page(doc, out_dir)


def _nightly(args, store, suite: str, run_id: str, out_dir, console) -> dict | None:
    """--baseline / --fail-on-regression: compare, write junit.xml + summary.md, return the verdicts."""
    if not args.baseline and not args.fail_on_regression:
        return None
    from qbench.errors import UsageError
    from qbench.report.compare import parse_threshold
    from qbench.report.nightly import nightly_outputs

    threshold = parse_threshold(args.fail_on_regression or "5%")
    base = args.baseline or "last"
    if base == "last":
        base = store.latest_run_id(suite=suite, before=run_id)
        if base is None:
            console.print(f"no earlier run of suite {suite!r} in {store.path}: nothing to compare with (first night)")
    elif store.run(base) is None:
        raise UsageError(f"unknown baseline run {base!r}; `qbench results --runs` lists them")
    result, junit, md = nightly_outputs(store.path, base, run_id, threshold, out_dir)
    if args.fail_on_regression and result is not None:  # CI annotations; stdout stays JSON with --json
        from qbench.cli.ci import annotate_regressions

        annotate_regressions(result, sys.stderr if args.json else sys.stdout)
    regressions = [f"{c.model}/{c.recipe}@{c.device}" for c in (result.regressions if result else [])]
    for w in (result.warnings if result else []):
        console.print(f"warning: {w}", markup=False)
    return {"run_id": base, "threshold": threshold, "regressions": regressions, "junit": str(junit), "summary": str(md)}


def _jsonable(value):
    return str(value)
