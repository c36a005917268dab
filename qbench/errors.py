"""One exception base for everything qbench reports to a user, and the one table of exit codes;
qbench/cli/__init__.py turns an error into one line of text and its code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CELLS_FAILED = 1  # the suite ran, some cells failed (their causes are stored), or the run failed
    USAGE = 2  # bad command line, bad suite, unknown run id: nothing was measured
    REGRESSION = 3  # nightly gate: a significant regression against the baseline
    INTERNAL_ERROR = 4  # a qbench bug (never a failed cell): the traceback is in the run log / with -v
    INTERRUPTED = 130  # Ctrl-C; finished cells are kept, `--resume RUN_ID` completes the rest
    TERMINATED = 143  # SIGTERM (128 + 15), handled like Ctrl-C


# What each code means to a user or a CI job: `qbench --help` prints this table, docs/python-api-and-gate.md too.
EXIT_CODE_MEANINGS = {
    ExitCode.OK: "every cell passed (and the gate, if any)",
    ExitCode.CELLS_FAILED: "some cells failed (or noisy, with --strict), the run failed, or the gate had "
                           "nothing to compare",
    ExitCode.USAGE: "usage or suite error, unknown or ambiguous run reference, missing extra: nothing measured",
    ExitCode.REGRESSION: "the gate found a significant regression against the baseline",
    ExitCode.INTERNAL_ERROR: "internal error: a qbench bug (the traceback is in the log, or shown with -v)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); --resume RUN finishes the run",
    ExitCode.TERMINATED: "terminated (SIGTERM); --resume RUN finishes the run",
}


def exit_code_table(indent: str = "  ") -> str:
    return "\n".join(f"{indent}{int(code):>3}  {text}" for code, text in EXIT_CODE_MEANINGS.items())


class QbenchError(Exception):
    """An error with a message meant for the user (no traceback needed)."""

    exit_code: ExitCode = ExitCode.USAGE


class SuiteError(QbenchError):
    """The suite (or a device profile) is invalid; the message cites file:line and key."""


class UsageError(QbenchError):
    """The command line asks for something that does not exist (run id, format, device) or cannot be
    done (an output folder that cannot be written)."""


class StoreError(UsageError):
    """The results store cannot be used: missing, damaged, not SQLite, newer, or not writable."""


class CellError(QbenchError):
    """One cell failed (export, deploy, run); recorded on the cell, the suite goes on."""

    exit_code = ExitCode.CELLS_FAILED

    def __init__(self, stage: str, message: str):
        super().__init__(f"{stage}: {message}")
        self.stage = stage


class DeviceError(CellError):
    """A device could not be reached or misbehaved; the message names the device."""

    def __init__(self, device: str, message: str):
        super().__init__("device", f"{device}: {message}")
        self.device = device
