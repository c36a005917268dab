"""Output paths checked before any work (so a typo costs seconds, not a measured suite), and a
fallback folder when a report folder stops being writable after the suite was measured."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from qbench.errors import UsageError


def _dir_problem(path: Path, create: bool = True) -> str | None:
    """Why no file can be written in folder `path`, or None. create=False: a missing folder is not
    made; the nearest existing ancestor must be a writable folder (nothing is left behind)."""
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a folder"
    target = path
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        else:
            while not target.exists():
                target = target.parent
            if not target.is_dir():
                return f"{target} is a file, not a folder"
        fd, probe = tempfile.mkstemp(prefix=".qbench-probe-", dir=target)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write in {target}: {exc.strerror or type(exc).__name__}"
    return None


def check_writable_dir(path: Path, flag: str, *, create: bool = True) -> Path:
    """Prove a file can be written in folder `path` (created unless create=False); else a UsageError
    naming the flag."""
    path = Path(path)
    problem = _dir_problem(path, create)
    if problem:
        raise UsageError(f"{flag} {path}: {problem}; give a writable folder")
    return path


def check_output_file(path: Path, flag: str) -> Path:
    """`path` must name a file whose folder can be written (created if missing)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder; give a file name, e.g. {path / 'out'}")
    problem = _dir_problem(path.parent)
    if problem:
        raise UsageError(f"{flag} {path}: cannot write it ({problem}); give a writable place")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path}: the file is not writable; give another path")
    return path


def fallback_dir(run_id: str) -> Path:
    """A fresh folder in the system's temporary directory for outputs that could not go where asked."""
    return Path(tempfile.mkdtemp(prefix=f"qbench-{run_id}-"))


def resolve_run_refs(db, refs: list[str]) -> list[str]:
    """Run references (results/runref.py) resolved against the store at db, opened for this only."""
    from qbench.results.runref import resolve_runs
    from qbench.results.store import open_store

    store = open_store(db, readonly=True)
    try:
        return resolve_runs(store, refs)
    finally:
        store.close()
