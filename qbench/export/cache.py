"""Content-addressed artifact cache: an unchanged cell is never quantized or exported twice.

Key = sha256 of (model fingerprint + weights digest + inputs + recipe kind/options + calibration spec
and its data files + numerics spec + tool versions + a digest of qbench's own code that builds
artifacts, so editing a quantizer or the lowering in a checkout invalidates what it made). An entry is a folder written to a temporary
name and renamed into place, so a crash never leaves a half-written artifact that looks valid.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path


def default_cache_dir() -> Path:
    env = os.environ.get("QBENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "qbench"


# The packages whose code decides what an artifact contains (not how it is measured or reported).
ARTIFACT_CODE = ("models", "quantize", "export", "datasets", "collectors/numerics.py",
                 "collectors/accuracy.py", "collectors/device_numerics.py", "pipeline/prepare.py")


@functools.lru_cache(maxsize=1)
def artifact_code_digest() -> str:
    return code_digest(Path(__file__).resolve().parents[1])


def code_digest(package_root: Path) -> str:
    """sha256 over the source files in ARTIFACT_CODE under package_root (paths and bytes, stable order)."""
    h = hashlib.sha256()
    for part in ARTIFACT_CODE:
        target = package_root / part
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        for f in files:
            h.update(f.relative_to(package_root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cache_key(parts: dict) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


@dataclass
class Artifact:
    key: str
    dir: Path
    program: str  # file name inside dir: model.pte (or model.pt2 for the eager reference)
    kind: str  # "pte" or "pt2"
    program_bytes: int
    arena_bytes: int | None = None
    delegation: dict = field(default_factory=dict)
    numerics: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)  # seconds spent in quantize / lower / numerics
    etrecord: str | None = None
    cached: bool = False  # filled on load, never stored

    @property
    def path(self) -> Path:
        return self.dir / self.program

    @property
    def etrecord_path(self) -> Path | None:
        return self.dir / self.etrecord if self.etrecord else None

    def meta(self) -> dict:
        d = asdict(self)
        d.pop("dir"), d.pop("cached")
        return d


class ArtifactCache:
    def __init__(self, root: Path | None = None):
        self.root = (root or default_cache_dir()) / "artifacts"

    def lookup(self, key: str) -> Artifact | None:
        meta_path = self.root / key / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            art = Artifact(dir=self.root / key, cached=True, **meta)
        except (ValueError, TypeError):
            return None  # an entry from an incompatible qbench: rebuild it
        return art if art.path.is_file() else None

    def staging(self, key: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{key}-", dir=self.root))

    def commit(self, staging: Path, artifact: Artifact) -> Artifact:
        (staging / "meta.json").write_text(json.dumps(artifact.meta(), indent=1, sort_keys=True))
        final = self.root / artifact.key
        if final.exists():  # a concurrent run got there first; theirs is as good as ours
            shutil.rmtree(staging, ignore_errors=True)
        else:
            os.replace(staging, final)
        artifact.dir = final
        return artifact

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)
