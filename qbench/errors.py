"""One exception base for everything qbench reports to a user; cli.py turns it into text + exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CELLS_FAILED = 1  # the suite ran, some cells failed (their causes are stored)
    USAGE = 2  # bad command line, bad suite, unknown run id: nothing was measured
    REGRESSION = 3  # nightly gate: a significant regression against the baseline
    INTERRUPTED = 130  # Ctrl-C; finished cells are kept, `--resume RUN_ID` completes the rest
    TERMINATED = 143  # SIGTERM (128 + 15), handled like Ctrl-C


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
