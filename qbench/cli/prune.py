"""`qbench prune`: retention for a store that a nightly job grows every night (see results/retention.py)."""

from __future__ import annotations

import argparse

from qbench.errors import ExitCode, UsageError
from qbench.results.backends import DB_HELP, db_target


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "prune", help="delete old runs or their raw samples (dry run unless --yes)",
        description="Retention for a growing store. Deletes whole runs beyond --keep-last N per suite or older "
                    "than --older-than DAYS; with --keep-samples-days D, runs older than D days keep their figures "
                    "and per-trial summaries (trend, compare and the gate still work) but lose their raw samples. "
                    "Never touched: running runs, and per suite the newest complete run and its baseline. "
                    "Prints what it would free; --yes (or --apply) does it, then VACUUMs.",
        epilog="examples:\n  qbench prune --keep-last 90\n  qbench prune --older-than 365 --keep-samples-days 30 --yes",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--keep-last", type=int, metavar="N", help="keep the newest N runs of each suite")
    which.add_argument("--older-than", type=float, metavar="DAYS", help="delete runs started more than DAYS ago")
    p.add_argument("--keep-samples-days", type=float, metavar="D",
                   help="runs older than D days keep summaries only (raw samples dropped)")
    p.add_argument("--yes", "--apply", dest="apply", action="store_true", help="do it (default: dry run)")
    p.add_argument("--db", type=db_target, default=None, help=DB_HELP)


def _check(args) -> None:
    if args.keep_last is None and args.older_than is None and args.keep_samples_days is None:
        raise UsageError("prune needs --keep-last N, --older-than DAYS or --keep-samples-days D "
                         "(e.g. qbench prune --keep-last 90)")
    if args.keep_last is not None and args.keep_last < 1:
        raise UsageError(f"--keep-last {args.keep_last}: keep at least 1 run")
    for flag, value in (("--older-than", args.older_than), ("--keep-samples-days", args.keep_samples_days)):
        if value is not None and not value >= 0:
            raise UsageError(f"{flag} {value:g}: give a number of days >= 0")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def describe(p, applied: bool) -> list[str]:
    if p.empty:
        return ["nothing to prune"]
    verb = ("deleted", "dropped") if applied else ("would delete", "would drop")
    lines = []
    if p.delete:
        lines.append(f"{verb[0]} {len(p.delete)} run(s) ({p.delete_cells} cells; {_mb(p.delete_bytes)} of raw samples)")
    if p.strip:
        lines.append(f"{verb[1]} the raw samples of {len(p.strip)} run(s) ({_mb(p.strip_bytes)}); their figures and "
                     "per-trial summaries stay")
    if p.protected:
        lines.append(f"kept whatever the options say: {', '.join(p.protected)} (running, or a suite's newest "
                     "complete run and its baseline)")
    return lines


def cmd_prune(args) -> int:
    from qbench.results import retention
    from qbench.results.frame import default_db
    from qbench.results.store import open_store

    _check(args)
    store = open_store(args.db or default_db())
    try:
        p = retention.plan(store, keep_last=args.keep_last, older_than_days=args.older_than,
                           keep_samples_days=args.keep_samples_days)
        if not args.apply:
            print("\n".join(describe(p, applied=False)))
            if not p.empty:
                print("dry run: nothing changed; add --yes to apply")
            return ExitCode.OK
        before = store.backend.size_bytes(store.path)
        how = retention.apply(store, p)
        after = store.backend.size_bytes(store.path)
        print("\n".join(describe(p, applied=True)))
        print(f"store {store.path}: {_mb(before)} -> {_mb(after)} ({how})")
    finally:
        store.close()
    return ExitCode.OK


COMMANDS = {"prune": cmd_prune}
