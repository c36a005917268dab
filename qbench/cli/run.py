"""`qbench run`: validate, run the grid with a progress bar, print a summary, write the page."""

from __future__ import annotations

import json
import sys

from qbench.errors import ExitCode


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
        self.console.print(text, markup=False, highlight=False)


def run_command(args) -> int:
    from rich.console import Console

    from qbench.export.cache import ArtifactCache
    from qbench.pipeline.orchestrator import begin_run, execute
    from qbench.results.frame import default_db
    from qbench.results.store import ResultsStore
    from qbench.results.views import run_document
    from qbench.pipeline.check import check_suite
    from qbench.suite.loader import load_suite

    console = Console(stderr=True)
    with console.status("checking the suite…"):
        # on a farm the workers own the device profiles (and check them); the engine checks they are advertised
        checked = check_suite(load_suite(args.suite), devices=args.device, resolve_devices=not args.cluster)
    if args.check:
        console.print(f"{args.suite}: ok — {len(checked.suite.models)} models × {len(checked.recipes)} recipes × "
                      f"{len(checked.device_names)} devices")
        return ExitCode.OK
    store = ResultsStore(args.db or default_db())
    from qbench.cli.farm import close_farm, open_farm

    engine = open_farm(args, console, checked.device_names)  # None without --cluster/--jobs; before a run row exists
    run_id = begin_run(checked, store, resume=args.resume)
    console.print(f"run [bold]{run_id}[/] · suite {checked.suite.name} · store {store.path}", highlight=False)
    try:
        with RichProgress(console) as progress:
            outcome = execute(checked, store, run_id, ArtifactCache(args.cache_dir), progress, engine)
    except KeyboardInterrupt:
        done = sum(1 for c in store.cells(run_id) if c["status"] != "pending")
        console.print(f"interrupted: {done} cells finished and kept. Resume with:\n"
                      f"  qbench run {args.suite} --resume {run_id}" + (f" --db {store.path}" if args.db else ""))
        return ExitCode.INTERRUPTED
    finally:
        close_farm(engine)
    doc = run_document(store, run_id)
    out_dir = args.reports_dir / run_id
    page = _write_page(store.target, run_id, doc, out_dir, console)
    doc["report"] = str(page)
    gate = _nightly(args, store, checked.suite.name, run_id, out_dir, console)
    if gate is not None:
        doc["baseline"] = gate
    if args.json:
        sys.stdout.write(json.dumps(doc, indent=1, default=_jsonable) + "\n")
    else:
        print_summary(console, doc)
    console.print(f"report: {page}", highlight=False)
    if gate is not None and gate["regressions"] and args.fail_on_regression:
        console.print(f"[red]regression[/] against run {gate['run_id']}: {len(gate['regressions'])} cell(s); "
                      f"see {gate['summary']}")
        return ExitCode.REGRESSION
    return ExitCode.CELLS_FAILED if outcome.failed else ExitCode.OK


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
    result, junit, md = nightly_outputs(store.target, base, run_id, threshold, out_dir)
    regressions = [f"{c.model}/{c.recipe}@{c.device}" for c in (result.regressions if result else [])]
    for w in (result.warnings if result else []):
        console.print(f"warning: {w}", markup=False)
    return {"run_id": base, "threshold": threshold, "regressions": regressions, "junit": str(junit), "summary": str(md)}


def _jsonable(value):
    return str(value)


def print_summary(console, doc: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{doc['suite']} — {doc['run_id']}", title_justify="left")
    for col, just in [("model", "left"), ("recipe", "left"), ("device", "left"), ("median ms", "right"),
                      ("p90 ms", "right"), ("CV", "right"), ("vs fp32", "right"), (".pte KiB", "right"),
                      ("RSS MiB", "right"),
                      ("SQNR dB", "right"), ("top-1", "right"), ("delegated", "right"), ("status", "left")]:
        table.add_column(col, justify=just)

    def f(v, d):
        return "" if v is None else f"{v:.{d}f}"

    for c in doc["cells"]:
        lat = c["latency_ms"] or {}
        status = c["status"] if c["status"] != "failed" else "[red]failed[/]"
        table.add_row(
            _escape(c["model"]), _escape(c["recipe"]), _escape(c["device"]), f(lat.get("median"), 3),
            f(lat.get("p90"), 3), f(lat.get("cv"), 3), (f(c["speedup_vs_fp32"], 2) + "×") if c["speedup_vs_fp32"] else "",
            f(c["pte_bytes"] / 1024 if c["pte_bytes"] else None, 1),
            f(c["peak_rss_bytes"] / 2**20 if c["peak_rss_bytes"] else None, 1), f(c["sqnr_db"], 1), f(c["top1_agreement"], 2),
            f"{c['delegated_ops']}/{c['total_ops']}" if c["total_ops"] else "", status,
        )
    console.print(table)
    failed = [c for c in doc["cells"] if c["status"] == "failed"]
    if failed:
        console.print(f"[red]{len(failed)} failed cell(s):[/]")
        for c in failed:
            console.print(f"  {c['model']}/{c['recipe']}@{c['device']}: {c.get('error')}", markup=False, highlight=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(str(text))
