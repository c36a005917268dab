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

    from qbench.cli.signals import sigterm_interrupts

    console = Console(stderr=True)
    with sigterm_interrupts():
        return _run(args, console)


def _run(args, console) -> int:
    from qbench.cli.outputs import check_writable_dir
    from qbench.cli.signals import Terminated
    from qbench.export.cache import ArtifactCache
    from qbench.pipeline.check import check_suite
    from qbench.pipeline.orchestrator import begin_run, execute
    from qbench.report.compare import parse_threshold
    from qbench.results.frame import default_db
    from qbench.results.store import open_store
    from qbench.results.views import run_document
    from qbench.suite.loader import load_suite

    # every option is checked before the (slow) suite check, so a typo costs seconds, not a measured suite
    threshold = parse_threshold(args.fail_on_regression) if args.fail_on_regression else None
    cache = ArtifactCache(args.cache_dir)
    db = args.db or default_db()
    if not args.check:  # --check validates the suite only; nothing is created before the suite is valid
        check_writable_dir(args.reports_dir, "--reports-dir", create=False)
        check_writable_dir(cache.root, "--cache-dir", create=False)
        if db.exists():
            _check_run_ids(args, db, open_store(db))
        else:
            check_writable_dir(db.parent, "--db", create=False)
            _check_run_ids(args, db, None)
    with console.status("checking the suite…"):
        checked = check_suite(load_suite(args.suite), devices=args.device)
    if args.check:
        console.print(f"{args.suite}: ok — {len(checked.suite.models)} models × {len(checked.recipes)} recipes × "
                      f"{len(checked.device_names)} devices")
        return ExitCode.OK
    check_writable_dir(args.reports_dir, "--reports-dir")
    check_writable_dir(cache.root, "--cache-dir")
    store = open_store(db, create=True)
    run_id = begin_run(checked, store, resume=args.resume)
    console.print(f"run [bold]{run_id}[/] · suite {checked.suite.name} · store {store.path}", highlight=False)
    resume = f"  qbench run {args.suite} --resume {run_id}" + (f" --db {args.db}" if args.db else "")
    try:
        with RichProgress(console) as progress:
            outcome = execute(checked, store, run_id, cache, progress)
    except KeyboardInterrupt as exc:
        done = _finished_cells(store, run_id)
        what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        console.print(f"{what}: {done} cells finished and kept. Resume with:\n{resume}", highlight=False)
        return ExitCode.TERMINATED if isinstance(exc, Terminated) else ExitCode.INTERRUPTED
    except Exception as exc:
        return _run_failed(console, store, run_id, resume, exc, as_json=args.json)
    doc = run_document(store, run_id)
    out_dir = args.reports_dir / run_id
    page, out_dir = _write_page(store.path, run_id, doc, out_dir, console)
    doc["report"] = str(page)
    gate = _nightly(args, store, checked.suite.name, run_id, threshold, out_dir, console)
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
    if gate is not None and gate.get("nothing_compared") and args.fail_on_regression:
        console.print(f"[red]gate failed[/]: {gate['nothing_compared']}", highlight=False)
        return ExitCode.CELLS_FAILED
    return ExitCode.CELLS_FAILED if outcome.failed else ExitCode.OK


def _check_run_ids(args, db, store) -> None:
    """--baseline RUN_ID and --resume RUN_ID must exist in the store (an absent store holds none)."""
    from qbench.errors import UsageError

    try:
        for flag, run_id in (("baseline", args.baseline), ("resume", args.resume)):
            if run_id and run_id != "last" and (store is None or store.run(run_id) is None):
                raise UsageError(f"--{flag}: no run {run_id!r} in {db}; "
                                 "`qbench results --runs` lists them")
    finally:
        if store is not None:
            store.close()


def _finished_cells(store, run_id: str) -> int | str:
    import sqlite3

    try:
        return sum(1 for c in store.cells(run_id) if c["status"] != "pending")
    except sqlite3.Error:
        return "the"


def _run_failed(console, store, run_id: str, resume: str, exc: Exception, *, as_json: bool = False) -> int:
    """The run stopped on an error that is not one cell's (the store's disk is full, a folder vanished):
    say it in one line, keep what was measured, and say how to finish the run."""
    import logging
    import sqlite3

    from qbench.errors import QbenchError
    from qbench.pipeline.run_status import describe_exception
    from qbench.results.store import describe_store_error

    if isinstance(exc, sqlite3.Error):
        cause = describe_store_error(store.path, exc)
    elif isinstance(exc, (QbenchError, OSError)):
        cause = describe_exception(exc) if isinstance(exc, OSError) else str(exc)
    else:  # a qbench bug: the traceback goes to the log
        logging.getLogger(__name__).error("internal error", exc_info=exc)
        cause = f"internal error: {describe_exception(exc)} (a qbench bug: the traceback is in the log)"
    done = _finished_cells(store, run_id)
    console.print(f"qbench: run {run_id} failed: {cause}\n{done} cells finished and kept (the run is marked "
                  f"failed, never a baseline). After fixing the cause, finish it with:\n{resume}",
                  markup=False, highlight=False, soft_wrap=True)
    if as_json:  # CI reading stdout still gets the run, its status and its cause
        from qbench.results.views import run_document

        try:
            sys.stdout.write(json.dumps(run_document(store, run_id), indent=1, default=_jsonable) + "\n")
        except sqlite3.Error:
            pass
    return ExitCode.CELLS_FAILED


def _write_page(db, run_id: str, doc: dict, out_dir, console, *, may_fall_back: bool = True):
    """The full report for this run; the minimal summary page if the report itself fails (never lose
    it); a temporary folder if out_dir cannot be written. Returns (page, the folder used)."""
    from qbench.cli.outputs import fallback_dir
    from qbench.report.html import write_report
    from qbench.report.summary_page import write_summary_page

    try:
        try:
            return write_report(db, [run_id], out_dir / "index.html"), out_dir
        except OSError:
            raise
        except Exception as exc:  # a report bug must not cost the user the run's page
            console.print(f"report: the full report failed ({type(exc).__name__}: {exc}); writing the summary page")
            return write_summary_page(doc, out_dir), out_dir
    except OSError as exc:
        if not may_fall_back:
            raise
        where = fallback_dir(run_id)
        console.print(f"report: cannot write {out_dir} ({exc.strerror or exc}); writing the run's outputs "
                      f"to {where} instead", markup=False, highlight=False, soft_wrap=True)
        return _write_page(db, run_id, doc, where, console, may_fall_back=False)


def _nightly(args, store, suite: str, run_id: str, threshold, out_dir, console) -> dict | None:
    """--baseline / --fail-on-regression: compare, write junit.xml + summary.md, return the verdicts.

    `nothing_compared` (a sentence) is set when the gate had nothing to judge: no earlier complete run
    with measured cells although earlier runs exist, or no cell measured in both runs."""
    if not args.baseline and not args.fail_on_regression:
        return None
    from qbench.cli.outputs import fallback_dir
    from qbench.report.compare import compare_runs
    from qbench.report.nightly import nightly_outputs

    threshold = 0.05 if threshold is None else threshold
    base = args.baseline or "last"
    nothing = None
    if base == "last":
        base = store.latest_run_id(suite=suite, before=run_id)
        if base is None:
            earlier = [r for r in store.runs() if r["suite"] == suite and r["run_id"] != run_id
                       and r["started_at"] <= store.run(run_id)["started_at"]]
            if earlier:
                nothing = (f"no earlier complete run of suite {suite!r} with measured cells in {store.path} "
                           f"({len(earlier)} earlier run(s), none usable: "
                           + ", ".join(f"{r['run_id']} {r['status']}" for r in earlier[-3:]) + ")")
            else:
                console.print(f"no earlier run of suite {suite!r} in {store.path}: nothing to compare with (first night)")
    result = compare_runs(store.path, base, run_id, threshold=threshold) if base else None
    if result is not None and not any(c.latency for c in result.cells):
        nothing = (f"nothing comparable between baseline {base} and run {run_id}: no cell was measured in both "
                   f"({len(result.cells)} matched)")
    if nothing:
        console.print(f"warning: {nothing}", markup=False, highlight=False, soft_wrap=True)
        if result is not None:
            result.warnings.append(nothing)
    try:
        result, junit, md = nightly_outputs(store.path, base, run_id, threshold, out_dir, result=result)
    except OSError as exc:
        where = fallback_dir(run_id)
        console.print(f"gate: cannot write {out_dir} ({exc.strerror or exc}); writing junit.xml and summary.md "
                      f"to {where} instead", markup=False, highlight=False, soft_wrap=True)
        result, junit, md = nightly_outputs(store.path, base, run_id, threshold, where, result=result)
    regressions = [f"{c.model}/{c.recipe}@{c.device}" for c in (result.regressions if result else [])]
    for w in (result.warnings if result else []):
        if w != nothing:
            console.print(f"warning: {w}", markup=False)
    return {"run_id": base, "threshold": threshold, "regressions": regressions, "junit": str(junit),
            "summary": str(md), "nothing_compared": nothing,
            "settings_differ": result.settings_differ if result else {}}


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
