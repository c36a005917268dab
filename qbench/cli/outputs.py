"""Output paths checked before any work (so a typo costs seconds, not a measured suite), and a
fallback folder when a report folder stops being writable after the suite was measured."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from qbench.errors import UsageError


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_writable_dir(path: Path, flag: str) -> Path:
    """Create `path` if needed and prove a file can be written in it; else a UsageError naming the flag."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: is a file, not a folder; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".qbench-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write there ({_reason(exc)}); give a writable folder") from None
    return path


def check_output_file(path: Path, flag: str) -> Path:
    """`path` must name a file whose folder can be written (created if missing)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder; give a file name, e.g. {path / 'out'}")
    check_writable_dir(path.parent, flag)
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path}: the file is not writable; give another path")
    return path


def fallback_dir(run_id: str) -> Path:
    """A fresh folder in the system's temporary directory for outputs that could not go where asked."""
    return Path(tempfile.mkdtemp(prefix=f"qbench-{run_id}-"))
