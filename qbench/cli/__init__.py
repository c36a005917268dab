"""qbench's command line. The only place where errors become text and exit codes.

Heavy modules (torch, executorch, pandas) are imported inside commands, so `qbench --help` is fast.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from qbench.errors import ExitCode, QbenchError, exit_code_table
from qbench.results.backends import DB_HELP, db_target

EPILOG = """\
examples:
  qbench run suites/smoke.yaml --device host          quantize, export, measure, report
  qbench run suites/mobile.yaml --json > run.json     one JSON document for CI
  qbench run suites/mobile.yaml --resume RUN_ID       finish an interrupted run
  qbench results --format csv > results.csv           every cell of every run, pandas-friendly
  qbench results --runs                               list the runs in the store
  qbench report RUN_ID [RUN_ID ...] -o report.html    self-contained HTML comparison report
  qbench compare BASE_RUN NEW_RUN --threshold 5%      ratio of medians with bootstrap CI per cell
  qbench compare last~1 last                          runs by reference: id, unique prefix, last~N, last:SUITE
  qbench run suites/mobile.yaml --baseline last --fail-on-regression 5%   the nightly gate
  qbench run suites/mobile.yaml --mlflow-tracking-uri sqlite:///mlflow.db   and export it to MLflow
  qbench devices                                      what is reachable: adb, ssh profiles, host
  qbench doctor pixel8                                is this device ready? ✓/✗ with fixes
  qbench init --model torchvision:resnet18 --device pixel8   a first suite in this folder
  qbench runner build --target host                   build the native C++ runner
  qbench sensitivity SUITE --model M --recipe R --target "sqnr>=30"   which layers to keep fp32
  qbench worker tcp://sched:8786 --devices pixel8-01  join a device farm (then: qbench run --cluster ...)
  qbench prune --keep-last 90 --keep-samples-days 30  retention (dry run; --yes to apply)

  qbench run suites/mobile.yaml --strict              exit 1 if a cell is disturbed or imprecise

exit codes:
""" + exit_code_table()

RUN_HELP = """\
Run a suite: each model × recipe is quantized and lowered to an ExecuTorch .pte (cached by content
hash), then measured on each device in fresh runner processes. Trials are interleaved across
recipes; a trial disturbed by other processes is kept, marked and replaced, and trials go on (up
to max_trials, default 3 × trials) until each median's CI is within `benchmark.precision` (default
±5%). Every cell says `stable`, `disturbed` (other work ran during its trials) or `imprecise` (nothing
disturbed it, its CI stayed wider). Results go to the store (--db: SQLite file or postgresql:// URL) and
reports/<run_id>/index.html; with --baseline that page opens with what changed since the baseline
(regressions worst first, each linked to its cell), then the winners per model and device.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qbench", description="Benchmark quantized PyTorch models on real devices (ExecuTorch + XNNPACK).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = _add_run_parser(sub)
    _add_results_parser(sub)
    _add_command_modules(sub, run)
    add_verbosity(parser)
    return parser


def _add_run_parser(sub) -> argparse.ArgumentParser:
    """`qbench run` and its own options; other modules add theirs (farm, export) in _add_command_modules."""
    run = sub.add_parser("run", help="run a suite (quantize, export, measure, store, report)",
                         description=RUN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("suite", type=Path, help="the suite YAML (see suites/smoke.yaml)")
    run.add_argument("--device", action="append", metavar="NAME",
                     help="run on this device profile instead of the suite's `devices` (repeatable)")
    run.add_argument("--db", type=db_target, default=None, help=DB_HELP)
    run.add_argument("--cache-dir", type=Path, default=None, help="artifact cache (default: $QBENCH_CACHE or ~/.cache/qbench)")
    run.add_argument("--reports-dir", type=Path, default=Path("reports"), help="where reports/<run_id>/ go")
    run.add_argument("--resume", metavar="RUN_ID", help="complete an interrupted run without duplicating rows")
    run.add_argument("--json", action="store_true", help="print one JSON document (run_id, cells) on stdout")
    run.add_argument("--check", action="store_true", help="only validate the suite and its devices, then exit")
    run.add_argument("--summary", choices=["table", "plain", "markdown"], default=None,
                     help="layout of the summary on stdout (default: table on a terminal, else plain; "
                          "neither ever cuts a number)")
    run.add_argument("--wide", action="store_true",
                     help="every column in the summary (p90, CV, RSS, top-1, delegation); by default it fits "
                          "100-120 columns: model, recipe, device, median, stability, speedup, size, SQNR/accuracy, "
                          "status")
    _add_nightly_gate(run)
    return run


def _add_nightly_gate(run: argparse.ArgumentParser) -> None:
    nightly = run.add_argument_group("nightly gate", "compare with an earlier run of the same suite in the same store")
    nightly.add_argument("--baseline", metavar="last|RUN_ID",
                         help="the run to compare with: `last` = the latest earlier run of this suite")
    nightly.add_argument("--fail-on-regression", metavar="PCT", nargs="?", const="5%",
                         help="exit 3 when a cell is significantly slower than the baseline by more than PCT "
                              "(default 5%%), or lost accuracy, or grew; writes junit.xml and summary.md")
    nightly.add_argument("--strict", action="store_true",
                         help="exit 1 when a cell is not `stable`: `disturbed` (other work ran during its "
                              "trials) or `imprecise` (its median's CI missed the precision): for nightly jobs "
                              "that prefer a retry to a doubtful number")


def _add_results_parser(sub) -> None:
    res = sub.add_parser("results", help="export stored results (csv, json, parquet)",
                         description="Export one row per cell (or per raw sample with --samples).")
    res.add_argument("--db", type=db_target, default=None, help=DB_HELP)
    res.add_argument("--run", action="append", metavar="RUN_ID",
                     help="only these runs (repeatable; default: all): a run id, a unique prefix, last, last~N, "
                          "last:SUITE")
    res.add_argument("--format", choices=["csv", "json", "parquet"], default="csv")
    res.add_argument("--samples", action="store_true", help="one row per measured iteration instead of per cell")
    res.add_argument("-o", "--output", type=Path, help="write here instead of stdout (required for parquet)")
    res.add_argument("--runs", action="store_true", help="list the runs in the store and exit")


def _add_command_modules(sub, run: argparse.ArgumentParser) -> None:
    """The subcommands each defined in their own module, in the order `qbench --help` lists them,
    and the `run` options of the farm and of the MLflow export."""
    from qbench.cli import doctor as doctor_command
    from qbench.cli import editor as editor_commands
    from qbench.cli import export as export_command
    from qbench.cli import farm as farm_commands
    from qbench.cli import init as init_command
    from qbench.cli import prune as prune_command
    from qbench.cli import report as report_commands
    from qbench.cli import sensitivity as sensitivity_command
    from qbench.cli import tools as cli_tools
    from qbench.cli import trend as trend_command

    farm_commands.add_run_options(run)
    report_commands.add_parsers(sub)
    sensitivity_command.add_parsers(sub)
    cli_tools.add_parsers(sub)
    doctor_command.add_parser(sub)
    editor_commands.add_parsers(sub)
    init_command.add_parsers(sub)
    trend_command.add_parsers(sub)
    prune_command.add_parsers(sub)
    export_command.add_parsers(sub)
    export_command.add_run_options(run)
    farm_commands.add_parsers(sub)


def add_verbosity(parser: argparse.ArgumentParser, _top: bool = True) -> None:
    """-q / -v on the program and on every (sub)command: `qbench -v run` and `qbench run -v` both work."""
    group = parser.add_argument_group("output") if _top else parser
    # a subcommand's flag must not reset the program's: only the top parser has defaults
    default = {} if _top else {"default": argparse.SUPPRESS}
    group.add_argument("-q", "--quiet", action="store_true", help="only the results (and errors)", **default)
    group.add_argument("-v", "--verbose", action="count", help="-v: qbench's info lines; -vv: also debug "
                       "lines and the runtime's own log", **({"default": 0} if _top else default))
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                add_verbosity(child, _top=False)


def _version() -> str:
    from qbench import __version__

    return f"qbench {__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except QbenchError as exc:  # an option's own check (e.g. --db's scheme): one line, like any other
        _err(str(exc))
        return int(exc.exit_code)
    args.verbosity = -1 if args.quiet else args.verbose
    from qbench.cli.logs import configure

    configure(args.verbosity)
    if args.command is None:
        parser.print_help()
        return ExitCode.USAGE
    try:
        return int(COMMANDS[args.command](args))
    except QbenchError as exc:
        _err(str(exc))
        return int(exc.exit_code)
    except KeyboardInterrupt as exc:
        from qbench.cli.signals import Terminated

        _err("terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted")
        return int(ExitCode.TERMINATED if isinstance(exc, Terminated) else ExitCode.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitCode.OK)
    except sqlite3.Error as exc:  # the store broke while a command was reading it (a damaged page)
        from qbench.results.store import describe_store_error

        _err(describe_store_error(_db(getattr(args, "db", None)), exc))
        return int(ExitCode.USAGE)
    except OSError as exc:  # a file the user named cannot be read or written
        _err(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else f"{type(exc).__name__}: {exc}")
        return int(ExitCode.USAGE)
    except Exception as exc:  # a qbench bug: its own exit code, so CI never reads it as failed cells
        return _internal_error(exc, args.verbosity)


def _internal_error(exc: Exception, verbosity: int) -> int:
    import logging
    import traceback

    logging.getLogger("qbench").debug("internal error", exc_info=exc)  # into the run log, if one is open
    if verbosity > 0:
        traceback.print_exception(exc, file=sys.stderr)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    _err(f"internal error: {type(exc).__name__}: {first} (a qbench bug; -v shows the traceback)")
    return int(ExitCode.INTERNAL_ERROR)


def _err(text: str) -> None:
    from qbench.results.urls import scrub

    sys.stderr.write(f"qbench: {scrub(text)}\n")  # a store URL's password never, whoever wrote the text


def _db(path: Path | None) -> Path:
    from qbench.results.frame import default_db

    return path or default_db()


def cmd_run(args) -> int:
    from qbench.cli.run import run_command

    return run_command(args)


def cmd_results(args) -> int:
    from qbench.errors import UsageError
    from qbench.results.runref import resolve_runs
    from qbench.results.store import open_store

    db = _db(args.db)
    if args.output:
        from qbench.cli.outputs import check_output_file

        check_output_file(args.output, "-o")
    store = open_store(db, readonly=True)
    try:
        if args.runs:
            _print_runs(store)
            return ExitCode.OK
        runs = resolve_runs(store, args.run, what="--run") if args.run else None
    finally:
        store.close()
    if args.format == "parquet" and not args.output:
        raise UsageError("parquet is binary: give -o FILE")
    import qbench.results as results

    if args.samples:
        df = results.load_samples(db, runs)
    else:  # CSV keeps JSON columns as JSON text; JSON/parquet get them parsed
        df = results.load(db, runs, parse_json=args.format == "json")
    _write_frame(df, args.format, args.output)
    return ExitCode.OK


def _print_runs(store) -> None:
    for r in store.runs():
        print(f"{r['run_id']}  {r['suite']:<16} {r['status']:<11} {r['started_at']}"
              + (f"  {r['error']}" if r["error"] else ""))


def _write_frame(df, fmt: str, output: Path | None) -> None:
    if fmt == "parquet":
        from qbench.results.frame import to_parquet

        to_parquet(df, output)
        return
    text = df.to_csv(index=False) if fmt == "csv" else df.to_json(orient="records", indent=1, default_handler=str,
                                                                 date_format="iso")
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _lazy(module: str, name: str):
    def call(args):
        import importlib

        return getattr(importlib.import_module(module), "COMMANDS")[name](args)

    return call


COMMANDS = {
    "run": cmd_run,
    "results": cmd_results,
    "report": _lazy("qbench.cli.report", "report"),
    "compare": _lazy("qbench.cli.report", "compare"),
    "devices": _lazy("qbench.cli.tools", "devices"),
    "runner": _lazy("qbench.cli.tools", "runner"),
    "ops": _lazy("qbench.cli.tools", "ops"),
    "doctor": _lazy("qbench.cli.doctor", "doctor"),
    "init": _lazy("qbench.cli.init", "init"),
    "completion": _lazy("qbench.cli.editor", "completion"),
    "schema": _lazy("qbench.cli.editor", "schema"),
    "sensitivity": _lazy("qbench.cli.sensitivity", "sensitivity"),
    "trend": _lazy("qbench.cli.trend", "trend"),
    "prune": _lazy("qbench.cli.prune", "prune"),
    "export": _lazy("qbench.cli.export", "export"),
    "worker": _lazy("qbench.cli.farm", "worker"),
}
