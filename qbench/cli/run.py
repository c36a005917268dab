"""`qbench run`: validate, run the grid with a progress bar, print a summary, write the page."""

from __future__ import annotations

import collections
import functools
import logging
import sys
from pathlib import Path

from qbench import strict_json
from qbench.cli.logs import LOG_NAME, attach_run_log, detach, progress_line
from qbench.cli.progress import LineProgress, cell_line
from qbench.errors import ExitCode
from qbench.results.columns import unstable
from qbench.text import safe

log = logging.getLogger("qbench.run")


class RichProgress:
    """Progress on stderr (stdout stays clean for --json)."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=True)
        self.task = None
        self.total = 0

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def start(self, total: int) -> None:
        self.total = total
        self.task = self.bar.add_task("starting", total=total)

    def stage(self, text: str) -> None:
        from rich.markup import escape

        self.bar.update(self.task, description=escape(safe(text)[:70]))  # the bar's column reads markup

    def advance(self, n: int = 1) -> None:
        self.bar.advance(self.task, n)

    def more(self, n: int = 1) -> None:
        self.total += n
        self.bar.update(self.task, total=self.total)

    def log(self, text: str) -> None:
        text = safe(text)  # one line each: a name cannot start a forged one
        progress_line(text)
        self.console.print(text, markup=False, highlight=False)

    def cell_done(self, label: str, cell: dict) -> None:
        progress_line("[ok] " + cell_line(label, cell))


def run_command(args) -> int:
    from rich.console import Console

    from qbench.cli.signals import sigterm_interrupts

    console = Console(stderr=True, quiet=args.verbosity < 0)
    # piped (a CI log, a file): one message, one line, whatever $COLUMNS says; rich would fold at 80
    console.soft_wrap = not console.is_terminal
    with sigterm_interrupts():
        return _run(args, console)


def _run(args, console) -> int:
    from qbench.cli.export import check_run_options as check_mlflow_options
    from qbench.cli.farm import check_farm_options
    from qbench.export.cache import ArtifactCache
    from qbench.models.loading import BuiltModels
    from qbench.results.frame import default_db
    from qbench.units import parse_threshold

    # every option is checked before the (slow) suite check, so a typo costs seconds, not a measured suite
    check_farm_options(args)
    check_mlflow_options(args)
    threshold = parse_threshold(args.fail_on_regression) if args.fail_on_regression else None
    cache, models = ArtifactCache(args.cache_dir), BuiltModels()  # the check's models are the run's
    db = args.db or default_db()
    # --check validates the suite only; nothing is created before the suite is valid
    lease = None if args.check else _check_outputs(args, db, cache)
    try:
        checked = _check_suite(args, console, cache, models)
        if args.check:
            return ExitCode.OK
        return _start(args, console, db, cache, models, threshold, checked, lease)
    finally:
        if lease is not None:
            lease.release()


def _settle_abandoned(store, db, console) -> None:
    """Runs left `running` by a qbench that died or could not record its end are marked failed, and said."""
    from qbench.pipeline.run_status import settle_abandoned

    for run_id in settle_abandoned(store, db):
        console.print(f"note: run {run_id} was left `running` by a qbench that stopped without recording how "
                      f"it ended; marked failed (`qbench run SUITE --resume {run_id}` finishes it)",
                      markup=False, highlight=False, soft_wrap=True)


def _check_outputs(args, db, cache):
    """Where the run writes (reports, cache, store) and the run ids it names; with --resume, that run's
    lease (refused now, in seconds, when another qbench writes that run), else None."""
    from qbench.cli.outputs import check_writable_dir
    from qbench.results.backends import is_url, redact
    from qbench.results.lease import hold as hold_run
    from qbench.results.store import open_store

    check_writable_dir(args.reports_dir, "--reports-dir", create=False)
    check_writable_dir(cache.root, "--cache-dir", create=False)
    if is_url(db) or db.exists():
        _check_run_ids(args, redact(db), open_store(db))
    else:
        check_writable_dir(db.parent, "--db", create=False)
        _check_run_ids(args, db, None)
    return hold_run(db, args.resume) if args.resume else None


def _check_suite(args, console, cache, models):
    """The checked suite (warnings printed); with --check, also its one-line verdict."""
    from qbench.pipeline.check import check_suite
    from qbench.pipeline.prepare import all_prepared
    from qbench.suite.loader import load_suite

    args.suite = _suite_path(args.suite)
    with console.status("checking the suite…"):
        # on a farm the workers own the device profiles (and check them); the engine checks they are advertised
        checked = check_suite(load_suite(args.suite), devices=args.device, models=models,
                              prepared=functools.partial(all_prepared, cache=cache), resolve_devices=not args.cluster)
    for warning in checked.warnings:
        console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    if args.check:
        from qbench.suite.sweep import points

        swept = len(points(checked.suite.benchmark))
        console.print(f"{args.suite}: ok — {len(checked.suite.models)} models × {len(checked.recipes)} recipes × "
                      f"{len(checked.device_names)} devices" + (f" × {swept} sweep points" if swept > 1 else ""))
    return checked


def _start(args, console, db, cache, models, threshold, checked, lease) -> int:
    """Open the store, hold the run (a new run's lease is taken before its row exists), then measure."""
    from qbench.cli.farm import close_farm, open_farm
    from qbench.cli.outputs import check_writable_dir
    from qbench.pipeline.orchestrator import begin_run, new_run_id
    from qbench.results.lease import hold as hold_run
    from qbench.results.store import open_store

    check_writable_dir(args.reports_dir, "--reports-dir")
    check_writable_dir(cache.root, "--cache-dir")
    store = open_store(db, create=True)
    run_id = args.resume or new_run_id()
    own = None if lease is not None else hold_run(db, run_id)  # one writer per run, until this process ends
    _settle_abandoned(store, db, console)
    engine = None
    try:
        engine = open_farm(args, console, checked.device_names)  # None without --cluster/--jobs; before a run row exists
        run_id = begin_run(checked, store, resume=args.resume, run_id=run_id)
        run_log = attach_run_log(args.reports_dir / run_id)
        try:
            return _measure_and_report(args, checked, store, run_id, cache, models, threshold, console, engine)
        finally:
            detach(run_log)
    finally:
        close_farm(engine)
        if own is not None:
            own.release()


def _measure_and_report(args, checked, store, run_id: str, cache, models, threshold, console, engine=None) -> int:
    from rich.markup import escape

    from qbench.cli import ci
    from qbench.cli.signals import Terminated
    from qbench.pipeline.orchestrator import execute
    from qbench.report.gate import attach_vs_base
    from qbench.report.views import run_document

    log.info("run %s · suite %s · store %s · log %s", run_id, checked.suite.name, store.path,
             args.reports_dir / run_id / LOG_NAME)
    console.print(f"run [bold]{run_id}[/] · suite {escape(safe(checked.suite.name))} · store {store.path}", highlight=False)
    resume = f"  qbench run {args.suite} --resume {run_id}" + (f" --db {store.path}" if args.db else "")  # no password
    bar = console.is_terminal and not console.quiet
    try:
        with (RichProgress(console) if bar else LineProgress(quiet=console.quiet)) as progress:
            outcome = execute(checked, store, run_id, cache, progress, models=models, engine=engine,
                              db_wait=args.db_wait)
    except KeyboardInterrupt as exc:
        done = _finished_cells(store, run_id)
        what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        sys.stderr.write(f"{what}: {done}. Resume with:\n{resume}\n")
        return ExitCode.TERMINATED if isinstance(exc, Terminated) else ExitCode.INTERRUPTED
    except Exception as exc:
        from qbench.results.lease import RunHeld

        if isinstance(exc, RunHeld):  # another qbench took the run during a database outage: its line says so
            raise
        if getattr(exc, "exit_code", None) == ExitCode.INTERRUPTED:  # the database or the scheduler went away
            try:
                kept = _finished_cells(store, run_id)
            except Exception:  # noqa: BLE001 - the database is what went away
                kept = "what was committed is kept"
            sys.stderr.write(f"stopped: {kept}. Resume with:\n{resume}\n")
            raise
        return _run_failed(console, store, run_id, resume, exc, as_json=args.json)
    doc = run_document(store, run_id)
    out_dir = args.reports_dir / run_id
    compared = _compare_with_baseline(args, store, checked.suite.name, run_id, threshold, console)
    page, out_dir = _write_page(store, run_id, doc, out_dir, console,
                                comparison=compared.result if compared else None)
    doc["report"] = str(page)
    gate = _nightly(args, store, checked.suite.name, run_id, threshold, out_dir, console, compared, doc["cells"])
    if gate is not None:
        doc["baseline"] = gate
        if compared.result is not None:
            attach_vs_base(doc["cells"], compared.result)
    ci.append_step_summary(store, run_id, gate, doc["cells"])
    exported = _export_mlflow(args, store, run_id, page, console, gate, doc["cells"])
    if exported is not None:
        doc["mlflow"] = exported
    _print_outputs(args, doc, gate, page, console)
    return _exit_code(args, doc, gate, outcome.failed or (exported is not None and "error" in exported))


def _print_outputs(args, doc: dict, gate: dict | None, page, console) -> None:
    """stdout: the JSON document, or the summary (summary.md itself for a gated --summary markdown);
    stderr: the page's path and the gate's one line."""
    from qbench.cli.summary import print_summary
    from qbench.report.gate import gate_line

    if args.json:
        sys.stdout.write(strict_json.dumps(doc, indent=1, default=_jsonable) + "\n")
    elif args.summary == "markdown" and gate is not None:
        sys.stdout.write(Path(gate["summary"]).read_text(encoding="utf-8"))
    else:
        print_summary(doc, args.summary, wide=getattr(args, "wide", False))
    console.print(f"report: {page}", highlight=False)
    if gate is not None:  # the verdict is a result: said even with -q, on stderr beside the annotations
        sys.stderr.write(gate_line(gate) + "\n")


def _exit_code(args, doc: dict, gate: dict | None, failed: bool) -> ExitCode:
    """The gate's verdict first, then --strict's unstable cells, then failed cells (or a failed export)."""
    from qbench.report.gate import FAIL

    if gate is not None and gate["verdict"] == FAIL:
        return ExitCode.REGRESSION if gate["regressions"] else ExitCode.CELLS_FAILED
    noisy = [c for c in doc["cells"] if unstable(c.get("stability"))]
    if noisy and getattr(args, "strict", False):
        kinds = collections.Counter(c["stability"]["verdict"] for c in noisy)
        sys.stderr.write(f"--strict: {len(noisy)} cell(s) not stable ("
                         + ", ".join(f"{n} {v}" for v, n in sorted(kinds.items())) + "); exit 1\n")
        return ExitCode.CELLS_FAILED
    return ExitCode.CELLS_FAILED if failed else ExitCode.OK


def _export_mlflow(args, store, run_id: str, page, console, gate: dict | None = None,
                   cells: list[dict] | None = None) -> dict | None:
    """--mlflow: the finished run into MLflow, its page as report.html; a failure is one line, the run kept."""
    from qbench.cli.export import export_finished_run, wants_mlflow

    if not wants_mlflow(args):
        return None
    with console.status("exporting to MLflow…"):
        out = export_finished_run(args, store, run_id, page, gate, cells)
    if "error" in out:  # an error: printed even with -q
        sys.stderr.write(f"qbench: --mlflow: {out['error']}; the run is stored, export it later with: "
                         f"{out['retry']}\n")
    else:
        console.print(f"mlflow: experiment {out['experiment']!r}, run {out['parent_run_id']} with "
                      f"{len(out['cells'])} cell runs", markup=False, highlight=False)
    return out


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


def _check_run_ids(args, db, store) -> None:
    """--baseline and --resume name runs of the store (references as in results/runref.py), resolved
    here, before this run exists (so `last` is not the run about to start). A bare `--baseline last`
    keeps its gate meaning: the latest earlier *usable* run of this suite, chosen after the run."""
    from qbench.results.runref import RunRefError, resolve_run

    try:
        for flag in ("baseline", "resume"):
            ref = getattr(args, flag)
            if not ref or (flag == "baseline" and ref == "last"):
                continue
            if store is None:
                raise RunRefError(f"--{flag}: no run {ref!r} in {db}: the store does not exist yet")
            setattr(args, flag, resolve_run(store, ref, what=f"--{flag}"))
    finally:
        if store is not None:
            store.close()


def _finished_cells(store, run_id: str) -> str:
    """'N cells finished and kept', or what can be said when the store cannot be read to count them."""
    import sqlite3

    try:
        return f"{sum(1 for c in store.cells(run_id) if c['status'] != 'pending')} cells finished and kept"
    except sqlite3.Error:
        return "what was committed is kept"


def _run_failed(console, store, run_id: str, resume: str, exc: Exception, *, as_json: bool = False) -> int:
    """The run stopped on an error that is not one cell's (the store's disk is full, a folder vanished):
    say it in one line, keep what was measured, and say how to finish the run."""
    import logging
    import sqlite3

    from qbench.errors import QbenchError
    from qbench.pipeline.run_status import describe_exception
    from qbench.results.store import describe_store_error

    code = ExitCode.CELLS_FAILED  # the run failed on something outside qbench (a full disk, a lost folder)
    if isinstance(exc, sqlite3.Error):
        cause = describe_store_error(store.path, exc)
    elif isinstance(exc, (QbenchError, OSError)):
        cause = describe_exception(exc) if isinstance(exc, OSError) else str(exc)
    else:  # a qbench bug: the traceback goes to the log
        logging.getLogger(__name__).error("internal error", exc_info=exc)
        cause = f"internal error: {describe_exception(exc)} (a qbench bug: the traceback is in the log)"
        code = ExitCode.INTERNAL_ERROR
    done = _finished_cells(store, run_id)
    console.print(f"qbench: run {run_id} failed: {cause}\n{done} ({_marked(store, run_id)}). "
                  f"After fixing the cause, finish it with:\n{resume}", markup=False, highlight=False, soft_wrap=True)
    if as_json:  # CI reading stdout still gets the run, its status and its cause
        from qbench.report.views import run_document

        try:
            sys.stdout.write(strict_json.dumps(run_document(store, run_id), indent=1, default=_jsonable) + "\n")
        except sqlite3.Error:
            pass
    return code


def _marked(store, run_id: str) -> str:
    """What the store now says of the run, read back: marking it failed is itself a write, and the full
    disk that stopped the run may have refused it too."""
    from qbench.pipeline.run_status import recorded_status

    status = recorded_status(store, run_id)
    if status == "failed":
        return "the run is marked failed, never a baseline"
    said = "cannot even be read" if status is None else f"still says `{status}`"
    return (f"the store could not be updated: run {run_id} {said} there; it is never a baseline, and the next "
            "`qbench run` on this store marks it failed")


def _write_page(db, run_id: str, doc: dict, out_dir, console, *, may_fall_back: bool = True, comparison=None):
    """The full report for this run (opening with the comparison with its baseline, if any); the minimal
    summary page if the report itself fails (never lose it); a temporary folder if out_dir cannot be
    written. Returns (page, the folder used)."""
    from qbench.cli.outputs import fallback_dir
    from qbench.report.html import write_report
    from qbench.report.summary_page import write_summary_page

    try:
        try:
            views = {run_id: doc["cells"]} if "cells" in doc else None  # the --json cells: computed once
            return write_report(db, [run_id], out_dir / "index.html", comparison=comparison, views=views), out_dir
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
        return _write_page(db, run_id, doc, where, console, may_fall_back=False, comparison=comparison)


def _compare_with_baseline(args, store, suite: str, run_id: str, threshold, console):
    """--baseline / --fail-on-regression: the one comparison (report/gate.py), and what it says; None
    without those options."""
    if not args.baseline and not args.fail_on_regression:
        return None
    from qbench.report.gate import compare_with_baseline

    compared = compare_with_baseline(store, suite, run_id, args.baseline, threshold)
    for note in compared.notes:
        console.print(note)
    if compared.nothing:
        console.print(f"warning: {compared.nothing}", markup=False, highlight=False, soft_wrap=True)
    return compared


def _nightly(args, store, suite: str, run_id: str, threshold, out_dir, console,
             compared=None, views: list[dict] | None = None) -> dict | None:
    """--baseline / --fail-on-regression: write junit.xml + summary.md from the comparison (made here
    unless given) and the run's `--json` cells (`views`), on the open store; return the gate's document;
    None without those options."""
    from qbench.cli.outputs import fallback_dir
    from qbench.report.gate import gate_document
    from qbench.report.nightly import nightly_outputs

    compared = compared or _compare_with_baseline(args, store, suite, run_id, threshold, console)
    if compared is None:
        return None
    try:
        result, junit, md = nightly_outputs(store, compared.base, run_id, compared.threshold, out_dir,
                                            result=compared.result, views=views)
    except OSError as exc:
        where = fallback_dir(run_id)
        console.print(f"gate: cannot write {out_dir} ({exc.strerror or exc}); writing junit.xml and summary.md "
                      f"to {where} instead", markup=False, highlight=False, soft_wrap=True)
        result, junit, md = nightly_outputs(store, compared.base, run_id, compared.threshold, where,
                                            result=compared.result, views=views)
    if args.fail_on_regression and result is not None:  # CI annotations: stderr, never in stdout's summary/JSON
        from qbench.cli.ci import annotate_regressions

        annotate_regressions(result, sys.stderr)
    for w in (result.warnings if result else []):
        if w != compared.nothing:
            console.print(f"warning: {w}", markup=False)
    return gate_document(compared, result, junit, md, bool(args.fail_on_regression))


def _jsonable(value):
    return str(value)
