"""Run references: the one place where what a user types for a run becomes a run id.

    20261128-080000-cd34    the full id
    20261128-08             a prefix that only one run id starts with
    last                    the newest run in the store (any status, `qbench results --runs` order)
    last~N                  the Nth run before the newest (last~0 = last)
    last:SUITE, last~N:SUITE   the same among the runs of suite SUITE

Every command that takes a run id (run --resume/--baseline, compare, report, ops, export, results --run)
and the Python API (qbench.load, qbench.compare, ...) resolve through `resolve_run`. A reference that
names no run, or more than one, is a `RunRefError` (exit 2 on the command line) listing candidates.
"""

from __future__ import annotations

import re

from qbench.errors import UsageError

_LAST = re.compile(r"^last(?:~(?P<back>\d+))?(?::(?P<suite>.+))?$")
RUN_REF_HELP = "a run id, a unique prefix of one, last, last~N, or last:SUITE / last~N:SUITE"
SHOWN = 5  # candidates named in an error line
LISTS_THEM = "`qbench results --runs` lists them"


class RunRefError(UsageError):
    """A run reference that names no run, or several: the message lists candidates."""


def resolve_run(store, ref: str, *, what: str = "run") -> str:
    """The run id `ref` names in `store` (see the module docstring); `what` names the option in errors."""
    ref = str(ref).strip()
    if not ref:
        raise RunRefError(f"{what}: an empty run reference; {LISTS_THEM}")
    if store.run(ref) is not None:  # a full id wins, even a run literally named like `last`
        return ref
    last = _LAST.match(ref)
    if last:
        return _from_last(store, ref, int(last["back"] or 0), last["suite"], what)
    return _from_prefix(store, ref, what)


def resolve_runs(store, refs, *, what: str = "run") -> list[str]:
    """Each reference resolved, in order (an error names the first that fails)."""
    return [resolve_run(store, r, what=what) for r in refs]


def _runs_newest_first(store, suite: str | None = None) -> list:
    order = store.backend.run_order
    sql = f"SELECT run_id, suite, status, started_at FROM runs{' WHERE suite=?' if suite else ''} ORDER BY {order} DESC"
    return store.db.execute(sql, [suite] if suite else []).fetchall()


def _from_last(store, ref: str, back: int, suite: str | None, what: str) -> str:
    runs = _runs_newest_first(store, suite)
    if back < len(runs):
        return runs[back]["run_id"]
    scope = f"of suite {suite!r} " if suite else ""
    if not runs:
        suites = sorted({r["suite"] for r in _runs_newest_first(store)})
        known = f"; suites in the store: {', '.join(suites)}" if suites and suite else ""
        raise RunRefError(f"{what}: {ref!r}: no run {scope}in {store.path}{known}")
    raise RunRefError(f"{what}: {ref!r}: only {len(runs)} run(s) {scope}in {store.path} "
                      f"(last~{len(runs) - 1} is the oldest); {LISTS_THEM}")


def _from_prefix(store, ref: str, what: str) -> str:
    found = [r for r in _runs_newest_first(store) if r["run_id"].startswith(ref)]
    if len(found) == 1:
        return found[0]["run_id"]
    if found:
        raise RunRefError(f"{what}: {ref!r} is ambiguous, {len(found)} runs start with it: "
                          f"{_describe(found)}; give more of the id")
    newest = _runs_newest_first(store)
    hint = f"; newest: {_describe(newest)}" if newest else " (the store holds no run yet)"
    raise RunRefError(f"{what}: no run {ref!r} in {store.path}{hint}; {LISTS_THEM}")


def _describe(rows) -> str:
    shown = ", ".join(f"{r['run_id']} ({r['suite']}, {r['status']})" for r in rows[:SHOWN])
    return shown + (f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else "")
