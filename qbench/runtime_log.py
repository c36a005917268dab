"""ExecuTorch's own log lines, kept out of the terminal and sent to the `qbench.runtime` logger.

In-process (numerics, accuracy, op profiling) the runtime's log (ET_LOG, e.g. `[cpuinfo_utils.cpp:100]
Reading file /sys/devices/...`) reaches Python's sys.stderr a token at a time: the pybindings
redirect C++'s std::cerr there for each call (checked with strace: nothing goes to fd 2 directly).
It would land in the middle of the progress bar. Its level is fixed when the wheel is built, so
while qbench calls the runtime, sys.stderr is a stand-in that keeps what the calling thread writes
and logs it afterwards, one DEBUG record per line on `qbench.runtime` (shown with -v, kept in the
run's log). Other threads (the progress bar, other devices) write through to the terminal as usual.

Runner processes print the same lines on their own stderr; `log_lines` sends those to the logger too.
"""

from __future__ import annotations

import logging
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

log = logging.getLogger("qbench.runtime")

_lock = threading.Lock()


class _PerThreadCapture:
    """Stands in for sys.stderr: capturing threads' writes are kept, other threads write through."""

    def __init__(self, real):
        self.real = real
        self.kept: dict[int, list[str]] = {}

    def write(self, text: str) -> int:
        kept = self.kept.get(threading.get_ident())
        if kept is None:
            return self.real.write(text)
        kept.append(text)
        return len(text)

    def flush(self) -> None:
        self.real.flush()

    def __getattr__(self, name: str):  # encoding, isatty, fileno...: the real stream's
        return getattr(self.real, name)


@contextmanager
def runtime_log_captured() -> Iterator[None]:
    me = threading.get_ident()
    with _lock:
        capture = sys.stderr if isinstance(sys.stderr, _PerThreadCapture) else _PerThreadCapture(sys.stderr)
        sys.stderr = capture
        outermost = me not in capture.kept
        if outermost:
            capture.kept[me] = []
    try:
        yield
    finally:
        if outermost:
            with _lock:
                text = "".join(capture.kept.pop(me))
                if not capture.kept and sys.stderr is capture:
                    sys.stderr = capture.real
            log_lines(text)


def log_lines(text: str) -> None:
    """Runtime output, one DEBUG record per non-empty line."""
    for line in text.splitlines():
        if line.strip():
            log.debug(line.rstrip())
