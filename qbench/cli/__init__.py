"""qbench's command line. The only place where errors become text and exit codes.

Heavy modules (torch, executorch, pandas) are imported inside commands, so `qbench --help` is fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qbench.errors import ExitCode, QbenchError
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
  qbench run suites/mobile.yaml --baseline last --fail-on-regression 5%   the nightly gate
  qbench devices                                      what is reachable: adb, ssh profiles, host
  qbench runner build --target host                   build the native C++ runner
  qbench worker tcp://sched:8786 --devices pixel8-01  join a device farm (then: qbench run --cluster ...)

exit codes: 0 all cells passed · 1 some cells failed · 2 usage or suite error ·
            3 significant regression against the baseline · 130 interrupted
"""

RUN_HELP = """\
Run a suite: each model × recipe is quantized and lowered to an ExecuTorch .pte (cached by content
hash), then measured on each device in fresh runner processes. Trials are interleaved across
recipes. Results go to the store (--db: SQLite file or postgresql:// URL) and reports/<run_id>/index.html.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qbench", description="Benchmark quantized PyTorch models on real devices (ExecuTorch + XNNPACK).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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
    nightly = run.add_argument_group("nightly gate", "compare with an earlier run of the same suite in the same store")
    nightly.add_argument("--baseline", metavar="last|RUN_ID",
                         help="the run to compare with: `last` = the latest earlier run of this suite")
    nightly.add_argument("--fail-on-regression", metavar="PCT", nargs="?", const="5%",
                         help="exit 3 when a cell is significantly slower than the baseline by more than PCT "
                              "(default 5%%), or lost accuracy, or grew; writes junit.xml and summary.md")

    res = sub.add_parser("results", help="export stored results (csv, json, parquet)",
                         description="Export one row per cell (or per raw sample with --samples).")
    res.add_argument("--db", type=db_target, default=None, help=DB_HELP)
    res.add_argument("--run", action="append", metavar="RUN_ID", help="only these runs (repeatable; default: all)")
    res.add_argument("--format", choices=["csv", "json", "parquet"], default="csv")
    res.add_argument("--samples", action="store_true", help="one row per measured iteration instead of per cell")
    res.add_argument("-o", "--output", type=Path, help="write here instead of stdout (required for parquet)")
    res.add_argument("--runs", action="store_true", help="list the runs in the store and exit")

    from qbench.cli import farm as farm_commands
    from qbench.cli import tools as cli_tools
    from qbench.cli import report as report_commands

    farm_commands.add_run_options(run)
    report_commands.add_parsers(sub)
    cli_tools.add_parsers(sub)
    farm_commands.add_parsers(sub)
    return parser


def _version() -> str:
    from qbench import __version__

    return f"qbench {__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return ExitCode.USAGE
    try:
        return int(COMMANDS[args.command](args))
    except QbenchError as exc:
        _err(str(exc))
        return int(exc.exit_code)
    except KeyboardInterrupt:
        _err("interrupted")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitCode.OK)


def _err(text: str) -> None:
    sys.stderr.write(f"qbench: {text}\n")


def _db(path: Path | None) -> Path:
    from qbench.results.frame import default_db

    return path or default_db()


def cmd_run(args) -> int:
    from qbench.cli.run import run_command

    return run_command(args)


def cmd_results(args) -> int:
    from qbench.errors import UsageError
    from qbench.results.store import ResultsStore

    from qbench.results.backends import exists

    db = _db(args.db)
    if not exists(db):
        raise UsageError(f"no results store at {db} (run a suite first, or pass --db)")
    if args.runs:
        store = ResultsStore(db)
        for r in store.runs():
            print(f"{r['run_id']}  {r['suite']:<16} {r['status']:<11} {r['started_at']}")
        return ExitCode.OK
    import qbench.results as results

    if args.run:
        store = ResultsStore(db)
        unknown = [r for r in args.run if store.run(r) is None]
        if unknown:
            raise UsageError(f"unknown run id(s): {', '.join(unknown)}; `qbench results --runs` lists them")
    if args.samples:
        df = results.load_samples(db, args.run)
    else:  # CSV keeps JSON columns as JSON text; JSON/parquet get them parsed
        df = results.load(db, args.run, parse_json=args.format == "json")
    if args.format == "parquet":
        if not args.output:
            raise UsageError("parquet is binary: give -o FILE")
        df.to_parquet(args.output)
        return ExitCode.OK
    if args.format == "csv":
        text = df.to_csv(index=False)
    else:
        text = df.to_json(orient="records", indent=1, default_handler=str)
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return ExitCode.OK


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
    "worker": _lazy("qbench.cli.farm", "worker"),
}
