"""The suite's folder travels to workers as one content-addressed tarball.

Models, calibration files, datasets and metrics are referenced relative to the suite, so a worker
needs that folder, not the orchestrator's paths. It is packed once per run (small files only),
sent once per worker by Dask, checked against its sha256 and unpacked into the worker's cache.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from qbench.errors import UsageError

MAX_BYTES = 256 * 2**20
SKIP_DIRS = {"reports", "__pycache__", "node_modules", ".venv", "venv"}
SKIP_SUFFIXES = (".db", ".db-wal", ".db-shm", ".pte", ".pyc")


@dataclass(frozen=True)
class SuiteBundle:
    sha256: str
    data: bytes
    suite_name: str  # the YAML's file name inside the bundle


def pack(suite_path: Path) -> SuiteBundle:
    root = suite_path.resolve().parent
    buf = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if name.startswith(".") or name.endswith(SKIP_SUFFIXES) or not path.is_file():
                    continue
                total += path.stat().st_size
                if total > MAX_BYTES:
                    raise UsageError(f"{root}: the suite folder holds more than {MAX_BYTES >> 20} MiB; a farm run "
                                     "sends it to every worker: move large files out (weights by URL or on the workers)")
                info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0  # the same files give the same hash
                with path.open("rb") as f:
                    tar.addfile(info, f)
    data = buf.getvalue()
    return SuiteBundle(hashlib.sha256(data).hexdigest(), data, suite_path.name)


def unpack(bundle: SuiteBundle, cache_root: Path) -> Path:
    """The suite YAML's path in this worker's copy of the folder (unpacked once per hash)."""
    if hashlib.sha256(bundle.data).hexdigest() != bundle.sha256:
        raise RuntimeError("the suite bundle arrived corrupted (sha256 mismatch)")
    final = cache_root / "suites" / bundle.sha256[:24]
    if not final.is_dir():
        import shutil
        import tempfile

        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=final.parent))
        with tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:gz") as tar:
            tar.extractall(staging, filter="data")  # no absolute paths, no links out of the folder
        try:
            os.replace(staging, final)
        except OSError:  # another task unpacked it first
            shutil.rmtree(staging, ignore_errors=True)
    return final / bundle.suite_name
