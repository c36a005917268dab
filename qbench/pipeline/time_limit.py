"""A time limit for the user's code that the suite check runs in this process (factories, the
preflight forward pass), so a model that never returns is reported by name instead of hanging
"checking the suite…" forever.

Why an alarm in the main thread and not a subprocess: the check builds the user's model here, next
to the imports the run reuses; a child process would pay the torch import and the build again on
every check. SIGALRM interrupts Python code, sleeps, and lock or I/O waits, like Ctrl-C would; but
never an import in progress (a half-run `import torch` leaves a broken interpreter behind): then it
waits for the import to end. Time spent importing (torch, transformers: seconds on a busy host) is
not counted against the limit, which is about the user's code. Code stuck inside C that never returns to the interpreter, or an import
that never ends, cannot be interrupted safely, so a watchdog thread then ends the process with the
same kind of line (nothing has been measured during the check). The watchdog needs the GIL, which
native code that blocks (torch waits, I/O) releases; a C loop that holds it forever is not covered.
Off the main thread (qbench used as a library) signals cannot be used and no limit applies.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from qbench.errors import ExitCode

GRACE_SECONDS = 5.0  # after the limit, how long the alarm gets before the watchdog ends the process
IMPORT_ALLOWANCE_SECONDS = 120.0  # a slow import (transformers, on a busy host) may run this far over
_POLL_SECONDS = 0.1


class TimeLimitExceeded(Exception):
    def __init__(self, what: str, seconds: float, setting: str):
        super().__init__(f"{what} did not finish within {seconds:g} s ({setting})")


class _Expired(BaseException):
    """Raised inside the user's code: a BaseException, so their `except Exception` cannot swallow it."""


@contextmanager
def time_limit(seconds: float, what: str, setting: str = "benchmark.timeout_seconds") -> Iterator[None]:
    """Raise TimeLimitExceeded if the block runs longer than `seconds`."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    armed = True
    started = time.monotonic()
    importing_time = [0.0]  # sampled by the watchdog; not counted against the limit

    def used() -> float:
        return time.monotonic() - started - importing_time[0]

    def on_alarm(signum, frame):
        if not armed:  # the block has just ended; never raise into the code after it
            return
        if _importing(frame):
            signal.setitimer(signal.ITIMER_REAL, 0.05)  # let the import finish, then look again
            return
        left = seconds - used()
        if left > 0.01:  # imports took part of the time: it is given back
            signal.setitimer(signal.ITIMER_REAL, left)
            return
        raise _Expired()

    main_thread = threading.main_thread().ident

    def watch() -> None:
        while not stop.wait(_POLL_SECONDS):
            if _importing(sys._current_frames().get(main_thread)):
                importing_time[0] += _POLL_SECONDS
            if (used() > seconds + GRACE_SECONDS
                    or time.monotonic() - started > seconds + IMPORT_ALLOWANCE_SECONDS):
                give_up()

    def give_up() -> None:
        sys.stderr.write(f"qbench: {what} did not finish within {seconds:g} s ({setting}) and cannot be "
                         "interrupted safely (stuck in an import or in native code); stopped before measuring anything\n")
        sys.stderr.flush()
        os._exit(ExitCode.USAGE)

    stop = threading.Event()
    watchdog = threading.Thread(target=watch, name="qbench-time-limit", daemon=True)
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    watchdog.start()
    try:
        yield
    except _Expired:
        raise TimeLimitExceeded(what, seconds, setting) from None
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        stop.set()
        signal.signal(signal.SIGALRM, previous)


def _importing(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False
