"""Content-addressed artifact cache: an unchanged cell is never quantized or exported twice.

Key = sha256 of (model fingerprint + weights digest + inputs + recipe kind/options + calibration spec
and its data files + numerics spec + tool versions + a digest of qbench's own code that builds
artifacts, so editing a quantizer or the lowering in a checkout invalidates what it made). An entry is a folder written to a temporary
name and renamed into place, so a crash never leaves a half-written artifact that looks valid.

The cache does not trust its files: meta.json records the size and sha256 of every file of the
entry, and a lookup checks them (a 13 MiB mobilenet_v2 .pte hashes in 10-60 ms here, see
benchmarks/cache_verify.py). A file overwritten, truncated or deleted since makes the entry a miss;
the rebuilt entry replaces it. meta.json itself is sealed: it carries the sha256 of its own other
fields (`seal`), so a figure edited in it by hand (`arena_bytes`, `delegation`, numerics) makes the
entry a miss too, and the figures reported are always the ones the build measured.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qbench.hashing import file_sha256

log = logging.getLogger(__name__)

def default_cache_dir() -> Path:
    from qbench.env import cache_root

    return cache_root()


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
    files: dict = field(default_factory=dict)  # name -> {"bytes", "sha256"}, recorded at commit
    # every output leaf {name, dtype, shape} in program order (qbench/models/outputs.py): names the
    # flat outputs a runner writes with --outputs
    outputs: list = field(default_factory=list)
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


def meta_seal(meta: dict) -> str:
    """sha256 of an entry's meta.json fields other than `seal` (canonical JSON)."""
    fields = {k: v for k, v in meta.items() if k != "seal"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


class ArtifactCache:
    def __init__(self, root: Path | None = None, *, verify_hash: bool = True):
        self.root = (root or default_cache_dir()) / "artifacts"
        self.verify_hash = verify_hash  # sizes are always checked; hashes unless told not to

    def lookup(self, key: str) -> Artifact | None:
        """The entry for `key` if it is whole: every recorded file present with its size and hash."""
        meta_path = self.root / key / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            seal = meta.pop("seal", None)
            art = Artifact(dir=self.root / key, cached=True, **meta)
        except (ValueError, TypeError, OSError):
            return None  # an entry from an incompatible qbench: rebuild it
        damage = self.meta_damage(meta, seal) or self.damage(art)
        if damage:
            log.warning("artifact cache entry %s is damaged (%s): rebuilding it", key, damage)
            return None
        art.program_bytes = art.files[art.program]["bytes"]
        return art

    @staticmethod
    def meta_damage(meta: dict, seal: str | None) -> str | None:
        """Why a meta.json's recorded figures cannot be trusted, or None when its seal matches."""
        if seal is None:
            return "meta.json has no seal (written by an older qbench)"
        if seal != meta_seal(meta):
            return "meta.json was edited since it was built (its seal differs)"
        return None

    def damage(self, art: Artifact) -> str | None:
        """What is wrong with a committed entry's files, or None when they are as recorded."""
        if art.program not in art.files:
            return "no recorded size and hash (written by an older qbench)"
        for name, want in art.files.items():
            path = art.dir / name
            try:
                size = path.stat().st_size
            except OSError:
                return f"{name} is missing"
            if size != want["bytes"]:
                return f"{name} is {size} bytes, {want['bytes']} when built"
            if self.verify_hash and file_sha256(path) != want["sha256"]:
                return f"{name} changed since it was built (sha256 differs)"
        return None

    def staging(self, key: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{key}-", dir=self.root))

    def commit(self, staging: Path, artifact: Artifact) -> Artifact:
        """Record sizes and hashes, then move the entry into place; a broken entry with the same key is
        replaced (renamed away first: a directory cannot be renamed over a non-empty one)."""
        artifact.files = {f.name: {"bytes": f.stat().st_size, "sha256": file_sha256(f)}
                          for f in sorted(staging.iterdir()) if f.is_file() and f.name != "meta.json"}
        artifact.program_bytes = artifact.files[artifact.program]["bytes"]
        meta = json.loads(json.dumps(artifact.meta()))  # sealed as a lookup will read it back
        meta["seal"] = meta_seal(meta)
        (staging / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        final = self.root / artifact.key
        if final.exists() and self.lookup(artifact.key) is not None:
            shutil.rmtree(staging, ignore_errors=True)  # a concurrent run got there first; theirs is as good
        else:
            self._replace(staging, final)
        artifact.dir = final
        return artifact

    def _replace(self, staging: Path, final: Path) -> None:
        broken = None
        if final.exists():
            broken = Path(tempfile.mkdtemp(prefix=f".{final.name}-broken-", dir=self.root))
            os.replace(final, broken / "entry")
        try:
            os.replace(staging, final)
        except OSError:  # another run put a whole entry there in between: keep theirs
            if not final.is_dir():
                raise
            shutil.rmtree(staging, ignore_errors=True)
        finally:
            if broken is not None:
                shutil.rmtree(broken, ignore_errors=True)

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)
