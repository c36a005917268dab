"""`qbench trend`: a cell-by-cell history of the stored runs, as one self-contained HTML page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qbench import strict_json
from qbench.errors import ExitCode
from qbench.results.backends import DB_HELP, db_target


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "trend", help="history of every cell across runs (median + CI, change points) as one HTML page",
        description="For every cell (model × recipe × device): its median with a 95% CI run after run, the runs "
                    "where it moved (ratio of medians against the cell's reference run, as in `qbench compare`), "
                    "and per device the fp32-vs-quantized speedup over time. Offline page; drag to zoom.",
        epilog="examples:\n  qbench trend mobile --last 90 -o trend.html\n  qbench trend --since 2026-03-01 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", nargs="?", metavar="SUITE", help="suite name as stored (optional when the store holds one)")
    window = p.add_mutually_exclusive_group()
    window.add_argument("--last", type=int, metavar="N", help="the newest N runs (default: all)")
    window.add_argument("--since", metavar="DATE", help="runs started on or after DATE (e.g. 2026-03-01)")
    p.add_argument("--db", type=db_target, default=None, help=DB_HELP)
    p.add_argument("--threshold", default="5%", help="latency change that counts as a move (default 5%%)")
    p.add_argument("-o", "--output", type=Path, default=None, help="HTML file (default: reports/trend.html)")
    p.add_argument("--json", action="store_true", help="also print the change points as JSON on stdout")


def cmd_trend(args) -> int:
    from qbench.cli.outputs import check_output_file
    from qbench.report.trend_page import write_trend
    from qbench.results.backends import is_url
    from qbench.results.frame import default_db
    from qbench.units import parse_threshold

    db = args.db or default_db()
    beside = Path("reports") if is_url(db) else db.parent  # a database server: the reports folder
    out = check_output_file(args.output, "-o") if args.output else beside / "trend.html"
    path, df = write_trend(db, out, args.suite, last=args.last, since=args.since,
                           threshold=parse_threshold(args.threshold))
    moved = df[df["change_point"]]
    if args.json:
        rows = [{"model": r.model, "recipe": r.recipe, "device": r.device, "run_id": r.run_id,
                 "started_at": r.started_at.isoformat(), "git_sha": r.git_sha, "verdict": r.verdict,
                 "ratio": r.ratio, "ci": [r.ratio_low, r.ratio_high]} for r in moved.itertuples()]
        sys.stdout.write(strict_json.dumps({"page": str(path), "runs": int(df["run_id"].nunique()),
                                     "cells": int(df.groupby(["model", "recipe", "device", "sweep"]).ngroups),
                                     "change_points": rows}, indent=1) + "\n")
    else:
        sys.stderr.write(f"qbench: {df['run_id'].nunique()} runs, {len(moved)} change point(s)\n")
        print(path)
    return ExitCode.OK


COMMANDS = {"trend": cmd_trend}
