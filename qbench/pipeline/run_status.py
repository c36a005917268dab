"""How a run ends in the store: `complete` only when every cell ended (ok or failed); an exception
makes it `failed` with the cause stored; Ctrl-C or SIGTERM make it `interrupted`.

`--baseline last` takes only complete runs, so a crash can never become tomorrow's baseline.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timezone

from qbench.errors import ExitCode

log = logging.getLogger(__name__)


def describe_exception(exc: BaseException) -> str:
    """The cause of a failed run in one line (an OSError names its file; a store URL's password never)."""
    from qbench.results.urls import scrub

    return scrub(_describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def record_run_end(store, run_id: str, cell_ids, exc: BaseException | None = None) -> str:
    """Store how the run ended and return that status.

    Best effort: when the store itself is what failed (a full disk) the run may stay `running`,
    which is still never mistaken for a complete run.
    """
    from qbench.results.lease import RunHeld

    if isinstance(exc, RunHeld):  # another qbench took the run (after a database outage): not ours to write
        return "failed"
    error = None
    try:
        if isinstance(exc, KeyboardInterrupt) or getattr(exc, "exit_code", None) == ExitCode.INTERRUPTED:
            # Ctrl-C, SIGTERM (the CLI raises it as one), or a stop that --resume continues (the scheduler was lost)
            status = "interrupted"
        elif exc is not None:
            status, error = "failed", describe_exception(exc)
        else:
            pending = sum(1 for cid in cell_ids if store.cell(cid)["status"] == "pending")
            status, error = ("failed", f"{pending} cell(s) never measured") if pending else ("complete", None)
        ended = datetime.now(timezone.utc).isoformat(timespec="seconds")
        store.finish_run(run_id, status, ended, error=error)
    except sqlite3.Error as problem:
        log.warning("could not record how run %s ended: %s", run_id, problem)
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    return status


def count_cells(store, cell_ids) -> tuple[int, int]:
    """(ok, failed) cells; (0, 0) when the store cannot be read any more."""
    try:
        statuses = [store.cell(cid)["status"] for cid in cell_ids]
    except sqlite3.Error:
        return 0, 0
    return statuses.count("ok"), statuses.count("failed")


ABANDONED = "its qbench stopped without recording how the run ended (e.g. the store's disk was full)"


def settle_abandoned(store, target, run_ids=None) -> list[str]:
    """Runs that still say `running` but that no qbench holds (results/lease.py) — their writer died,
    or could not write its end (a full disk) — are marked `failed` with that cause, so a store never
    shows a dead run as running. Returns their ids. A store that cannot be written is left as it is."""
    from qbench.results.lease import RunHeld, hold

    settled = []
    for row in store.runs():
        if row["status"] != "running" or (run_ids is not None and row["run_id"] not in run_ids):
            continue
        try:
            lease = hold(target, row["run_id"])
        except RunHeld:  # being written right now (or resumed by this very process)
            continue
        try:
            store.finish_run(row["run_id"], "failed", datetime.now(timezone.utc).isoformat(timespec="seconds"),
                             error=ABANDONED)
            settled.append(row["run_id"])
        except sqlite3.Error as problem:
            log.warning("could not mark the abandoned run %s failed: %s", row["run_id"], problem)
        finally:
            lease.release()
    return settled


def recorded_status(store, run_id: str) -> str | None:
    """The status the store holds for the run now (None: it cannot even be read)."""
    try:
        row = store.run(run_id)
    except Exception:  # noqa: BLE001 - whatever broke the run may have broken reading too
        return None
    return row["status"] if row is not None else None
