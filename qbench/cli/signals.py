"""SIGTERM (what CI runners, schedulers and `kill` send) ends `qbench run` like Ctrl-C does.

Python's default is to die on the spot: no message, the run left `running` forever. Here the first
SIGTERM raises `Terminated` (a KeyboardInterrupt) in the main thread, so the same path as Ctrl-C
runs: the trial in flight is abandoned (its runner killed), finished work is kept, the run is
marked `interrupted`, the resume line is printed, and the exit code is 143 (128 + SIGTERM).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives."""


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
