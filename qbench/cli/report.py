"""`qbench report` and `qbench compare`: parsers and commands, registered by qbench.cli.

Errors are raised as QbenchError (qbench.cli prints them); warnings go to stderr, results to stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qbench import strict_json
from qbench.errors import ExitCode
from qbench.results.backends import DB_HELP, db_target
from qbench.results.runref import RUN_REF_HELP


def add_parsers(sub) -> None:
    rep = sub.add_parser("report", help="write a self-contained HTML report of one or more runs",
                         description="One HTML file (no network needed). With several runs, each later run is "
                                     "compared with the first, and the page opens with what changed in the last one (worst "
                                     "first, linked to its cells); then the winners per model and device. Single-run "
                                     "charts show the last run.")
    rep.add_argument("runs", nargs="+", metavar="RUN_ID", help=RUN_REF_HELP)
    rep.add_argument("-o", "--output", type=Path, help="HTML file (default: reports/<last run>/report.html)")
    rep.add_argument("--db", type=db_target, default=None, help=DB_HELP)
    rep.add_argument("--threshold", default="5%", help="latency change that counts in comparisons (default 5%%)")

    cmp = sub.add_parser("compare", help="compare two runs cell by cell (ratio of medians with bootstrap CI)",
                         description="Per matched cell: ratio of medians new/base with a bootstrap CI over trials, "
                                     "verdict faster/slower/no significant change; accuracy drops and size/memory "
                                     "growth are flagged.")
    cmp.add_argument("base", metavar="BASE", help=RUN_REF_HELP)
    cmp.add_argument("new", metavar="NEW", help=RUN_REF_HELP)
    cmp.add_argument("--db", type=db_target, default=None, help=DB_HELP)
    cmp.add_argument("--threshold", default="5%", help="latency change that counts (default 5%%)")
    cmp.add_argument("--accuracy-drop-db", type=float, default=1.0, help="flag an SQNR drop above this (dB)")
    cmp.add_argument("--top1-drop", type=float, default=0.01, help="flag a top-1 agreement drop above this")
    cmp.add_argument("--growth", default="5%", help="flag .pte size / memory growth above this (default 5%%)")
    cmp.add_argument("--json", action="store_true", help="print the comparison as JSON")
    cmp.add_argument("--fail-on-regression", action="store_true",
                     help=f"exit {int(ExitCode.REGRESSION)} when any cell regressed")


def _db(path: Path | None) -> Path:
    from qbench.results.frame import default_db

    return path or default_db()


def cmd_report(args) -> int:
    from qbench.report.html import write_report
    from qbench.units import parse_threshold

    from qbench.cli.outputs import check_output_file

    from qbench.cli.outputs import resolve_run_refs
    from qbench.results.backends import is_url

    threshold = parse_threshold(args.threshold)
    db = _db(args.db)
    runs = resolve_run_refs(db, args.runs)  # `last` names a folder only once resolved
    beside = Path("reports") if is_url(db) else db.parent  # a database server: the reports folder
    out = check_output_file(args.output, "-o") if args.output else beside / runs[-1] / "report.html"
    path = write_report(db, runs, out, threshold=threshold)
    print(path)
    return ExitCode.OK


def cmd_compare(args) -> int:
    from qbench.report.compare import compare_runs
    from qbench.units import parse_threshold

    threshold, growth = parse_threshold(args.threshold), parse_threshold(args.growth)
    result = compare_runs(_db(args.db), args.base, args.new, threshold=threshold,
                          accuracy_drop_db=args.accuracy_drop_db, top1_drop=args.top1_drop, growth=growth)
    for w in result.warnings:
        sys.stderr.write(f"qbench: warning: {w}\n")
    if args.json:
        sys.stdout.write(strict_json.dumps(result.to_dict(), indent=1, default=str) + "\n")
    else:
        sys.stdout.write(result.to_text() + "\n")
    if args.fail_on_regression and result.regressions:
        from qbench.cli.ci import annotate_regressions

        annotate_regressions(result, sys.stderr)  # stdout stays the comparison (text or JSON)
        return ExitCode.REGRESSION
    if args.fail_on_regression and not any(c.latency for c in result.cells):
        sys.stderr.write(f"qbench: gate failed: nothing comparable between {result.base_run} and {result.new_run}: "
                         "no cell was measured in both\n")
        return ExitCode.CELLS_FAILED
    return ExitCode.OK


COMMANDS = {"report": cmd_report, "compare": cmd_compare}
