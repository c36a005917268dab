"""Logging, configured once by the CLI: what reaches the terminal depends on -q / -v / -vv; a run's
log file (reports/<run_id>/qbench.log) gets everything qbench logs, whatever the verbosity.

    -q    errors only (stdout keeps the summary)
          qbench's warnings, progress lines, the run header
    -v    + qbench's info lines (keys created, artifacts cached, runner chosen...) and Dask's
          warnings (a farm's reconnects and comm errors; qbench says what they mean without -v)
    -vv   + qbench's debug lines and the runtime's own log (logger `qbench.runtime`)

Progress lines are drawn by the progress display and also logged to `qbench.progress`, which only
the log file receives (the terminal already shows them).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

RUNTIME = "qbench.runtime"
PROGRESS = "qbench.progress"
LOG_NAME = "qbench.log"

_console: logging.Handler | None = None


def _is(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


class _ConsoleFilter(logging.Filter):
    def __init__(self, verbosity: int):
        super().__init__()
        self.verbosity = verbosity

    def filter(self, record: logging.LogRecord) -> bool:
        if _is(record.name, PROGRESS):
            return False
        if _is(record.name, RUNTIME):
            return self.verbosity >= 2
        if _is(record.name, "distributed") or _is(record.name, "tornado"):
            # Dask's own lines (reconnecting, comm errors): qbench says what they mean; -v shows them
            return self.verbosity >= 1 and record.levelno >= logging.WARNING
        if _is(record.name, "qbench"):
            floor = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(self.verbosity, logging.DEBUG)
        else:  # other libraries (torch, warnings): their warnings, unless -q
            floor = logging.ERROR if self.verbosity < 0 else logging.WARNING
        return record.levelno >= floor


class _ConsoleFormatter(logging.Formatter):
    """Info lines as they are; warnings and errors prefixed like the CLI's own messages."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno < logging.WARNING:
            return text
        who = "qbench" if _is(record.name, "qbench") else record.name
        return f"{who}: {record.levelname.lower()}: {text}"


class _NoSecrets(logging.Filter):
    """A store URL's password never reaches the terminal or a log file, whoever logs the text
    (psycopg and Dask quote URLs in their own messages and tracebacks)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from qbench.results.urls import scrub

        record.msg, record.args = scrub(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (tests swap it), never to a stale stream."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure(verbosity: int) -> None:
    """Idempotent: a second call (tests call main() repeatedly) replaces the first's handler."""
    global _console
    root = logging.getLogger()
    if _console is not None:
        root.removeHandler(_console)
    _console = _StderrHandler()
    _console.addFilter(_ConsoleFilter(verbosity))
    _console.addFilter(_NoSecrets())
    _console.setFormatter(_ConsoleFormatter("%(message)s"))
    root.addHandler(_console)
    logging.getLogger("qbench").setLevel(logging.DEBUG)  # handlers decide what is shown
    logging.captureWarnings(True)  # Python warnings (torch's) obey -q and reach the run log
    # torch's loggers write through torch's own handler (not propagated here). torchao, as pinned,
    # registers its enums with torch's pytree on import, and torch says on every cold run that this is
    # deprecated: a note for torchao's authors that no qbench user can act on.
    pytree = logging.getLogger("torch.utils._pytree")
    if not any(isinstance(f, _TorchaoEnumNote) for f in pytree.filters):
        pytree.addFilter(_TorchaoEnumNote())


class _TorchaoEnumNote(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "is an Enum subclass and is now natively supported" not in str(record.msg)


class _FileFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _is(record.name, "qbench") or record.levelno >= logging.WARNING


def attach_run_log(folder: Path) -> logging.Handler:
    """Everything qbench logs from now on also goes to folder/qbench.log (appended: --resume adds to it)."""
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(folder / LOG_NAME, encoding="utf-8")
    handler.addFilter(_FileFilter())
    handler.addFilter(_NoSecrets())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def detach(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()


def progress_line(text: str) -> None:
    """A progress line for the run log (the terminal draws its own)."""
    logging.getLogger(PROGRESS).info(text)
