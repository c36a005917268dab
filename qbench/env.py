"""The environment a run was measured in (tool versions, git sha, host) and where qbench keeps its
files on this machine. Cheap (no torch import)."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def cache_root() -> Path:
    """Artifacts, runner builds and the host's work folder live here ($QBENCH_CACHE overrides)."""
    env = os.environ.get("QBENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "qbench"


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    from qbench.version import __version__

    return {
        "qbench_version": __version__,
        "torch_version": package_version("torch"),
        "executorch_version": package_version("executorch"),
        "torchao_version": package_version("torchao"),
    }


def git_sha(where: Path) -> str | None:
    """The commit of the repository holding the suite (dirty trees get a '+dirty' suffix)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def host_summary() -> dict:
    return {
        "hostname": platform.node(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
