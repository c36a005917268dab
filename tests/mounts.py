"""Real read-only and full filesystems for tests: a small tmpfs mounted for the test (we run as root
here and in CI); without mount, a non-root user gets permissions instead; else the test is skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True, timeout=30).returncode == 0


def can_mount(scratch: Path) -> bool:
    """Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN, mount installed)."""
    scratch.mkdir(parents=True, exist_ok=True)
    if not (shutil.which("mount") and _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(scratch))):
        return False
    subprocess.run(["umount", "-l", str(scratch)], capture_output=True, timeout=30)
    return True


@contextmanager
def small_disk(path: Path, size: str):
    """A tmpfs of `size` at `path` (a real "No space left on device" / SQLITE_FULL when it fills)."""
    path.mkdir(parents=True, exist_ok=True)
    if not (shutil.which("mount") and _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))):
        pytest.skip("cannot mount a tmpfs here (needs root and mount)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


@contextmanager
def read_only_folder(path: Path, files: dict[str, Path] | None = None):
    """`path` as a read-only filesystem holding copies of `files` ({name: source})."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") and _mount("-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path)):
        try:
            for name, src in (files or {}).items():
                shutil.copy(src, path / name)
            if not _mount("-o", "remount,ro", str(path)):
                pytest.skip("cannot remount a tmpfs read-only here")
            yield path
        finally:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)
        return
    if os.geteuid() == 0:
        pytest.skip("a read-only folder needs mount when running as root (root ignores permissions)")
    for name, src in (files or {}).items():
        shutil.copy(src, path / name)
        os.chmod(path / name, 0o444)
    os.chmod(path, 0o555)
    try:
        yield path
    finally:
        os.chmod(path, 0o755)
