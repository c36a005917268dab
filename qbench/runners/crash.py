"""Turning a runner that died by a signal into a sentence: which signal, what it means, and where.

On the host a signal death is a negative return code; through a device's shell (adb, ssh) it is
128 + the signal number. Runners never exit above 2 on their own, so both forms are unambiguous.
The native runner prints `qbench-runner: crashed: SIGSEGV (...) while <phase> — <hint>` from its
signal handler; when that line is there it is the most precise account and is used as is.
"""

from __future__ import annotations

from qbench.devices.base import RunResult

# Linux numbering (host, Android and Linux boards alike)
SIGNALS = {
    4: "SIGILL (illegal instruction — was the runner built for another CPU?)",
    6: "SIGABRT (aborted)",
    7: "SIGBUS (bus error)",
    8: "SIGFPE (arithmetic error)",
    9: "SIGKILL (killed — often the out-of-memory killer)",
    11: "SIGSEGV (segmentation fault)",
    13: "SIGPIPE (broken pipe)",
    15: "SIGTERM (terminated by another process)",
}

_OWN_LINE = "qbench-runner: crashed: "
_RUNTIME_FATAL = "executorch: F "  # the native runner's prefix for ExecuTorch's fatal log lines


def crash_signal(result: RunResult) -> int | None:
    """The signal that ended the runner, or None when it exited by itself."""
    rc = result.returncode
    if rc < 0:
        return -rc
    if 128 < rc <= 128 + 64:
        return rc - 128
    return None


def describe_signal(sig: int) -> str:
    return SIGNALS.get(sig, f"signal {sig}")


def crash_message(runner: str, sig: int, result: RunResult) -> str:
    """One line for the cell: `native runner crashed: SIGSEGV (segmentation fault) while ...`."""
    lines = [ln.strip() for ln in result.stderr.splitlines() if ln.strip()]
    # searched from the end: a device's shell may add its own "Segmentation fault" after it
    own = next((ln for ln in reversed(lines) if ln.startswith(_OWN_LINE)), None)
    if own is not None:
        message = f"{runner} runner crashed: {own[len(_OWN_LINE):]}"
    else:
        message = f"{runner} runner crashed: {describe_signal(sig)}"
        if lines:
            message += f"; its last message: {lines[-1][:300]}"
    fatal = next((ln for ln in reversed(lines) if ln.startswith(_RUNTIME_FATAL)), None)
    if fatal is not None:  # an ExecuTorch check that aborted says what it found
        message += f" (ExecuTorch: {fatal.partition('] ')[2][:200]})"
    return message
