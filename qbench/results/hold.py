"""A run's store that outlives a short database outage: a call the server did not answer is retried
(reconnecting between tries) for at most `db_wait` seconds, holding its results meanwhile; then the
run stops with StoreUnavailable, and every later call fails at once with the same message. What was
committed before stays. Local runs (each device thread) and farm runs (the event stream) use it alike.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from qbench.errors import ExitCode, QbenchError
from qbench.results.lease import RunHeld, renew
from qbench.results.urls import scrub

# context managers and teardown: nothing to retry there
_PASS_THROUGH = {"transaction", "close"}


class StoreUnavailable(QbenchError):
    """The results database stopped answering for longer than the bounded wait: the run stops
    unfinished (like Ctrl-C, it can be resumed)."""

    exit_code = ExitCode.INTERRUPTED


class HoldingStore:
    """Wraps a ResultsStore: its methods, each retried through an outage (see the module)."""

    def __init__(self, store, db_wait: float, log: Callable[[str], None] = lambda text: None):
        self._store, self._db_wait, self._log = store, db_wait, log

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name in _PASS_THROUGH or name.startswith("_") or not callable(attr):
            return attr

        def held(*args, **kwargs):
            return self._call(lambda: attr(*args, **kwargs))
        return held

    def _call(self, fn: Callable[[], Any]) -> Any:
        backend = self._store.backend
        started = None
        while True:
            try:
                return fn()
            except Exception as exc:
                if not backend.is_transient(exc):
                    raise
                started = started or time.monotonic()
                waited = time.monotonic() - started
                if waited > self._db_wait:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    first = scrub(first)  # psycopg's messages may quote the URL
                    gone = StoreUnavailable(
                        f"the results database {self._store.path} did not answer for {self._db_wait:.0f} s ({first}); "
                        "the run stopped. Everything committed before is kept: resume with --resume RUN_ID")
                    backend.give_up(gone)  # the run's closing writes fail fast with the same message
                    raise gone from None
                self._log(f"[db] results database not answering ({waited:.0f}s): holding results, retrying")
                time.sleep(min(2.0, max(0.1, self._db_wait / 10)))
                try:
                    backend.reconnect()
                    renew(self._store.target)  # the outage also ended the run's lease session
                except RunHeld:
                    raise  # another qbench took the run meanwhile: this one must stop writing it
                except Exception:  # noqa: BLE001 - the next try reports it
                    pass
