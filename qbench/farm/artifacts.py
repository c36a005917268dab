"""Artifacts travel by hash: a prepared variant's files as bytes with their sha256.

The worker that prepared it returns an ArtifactPayload; Dask moves it once to each worker that
measures it; that worker verifies every file and keeps it in its own content-addressed cache, so a
later run finds it there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from qbench import strict_json
from qbench.export.cache import Artifact, ArtifactCache


@dataclass
class ArtifactPayload:
    meta: dict  # Artifact.meta(): key, program, kind, sizes, delegation, numerics, timings
    files: dict[str, bytes] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    cached: bool = False  # the preparing worker found it in its cache
    prepared_by: str = ""

    @property
    def key(self) -> str:
        return self.meta["key"]

    def artifact(self, where: Path | None = None, cached: bool | None = None) -> Artifact:
        """The Artifact as the store records it (`where`: the local folder when materialized)."""
        return Artifact(dir=where or Path("/nonexistent") / self.key, cached=self.cached if cached is None else cached,
                        **self.meta)


def payload_of(art: Artifact, prepared_by: str = "") -> ArtifactPayload:
    files = {p.name: p.read_bytes() for p in sorted(art.dir.iterdir()) if p.is_file() and p.name != "meta.json"}
    return ArtifactPayload(art.meta(), files, {n: hashlib.sha256(b).hexdigest() for n, b in files.items()},
                           art.cached, prepared_by)


def materialize(payload: ArtifactPayload, cache: ArtifactCache) -> Artifact:
    """The artifact in this host's cache: reused when its files match the hashes, else written and verified."""
    have = cache.lookup(payload.key)
    if have is not None and all(_sha(have.dir / n) == h for n, h in payload.sha256.items()):
        return have
    staging = cache.staging(payload.key)
    try:
        for name, data in payload.files.items():
            if hashlib.sha256(data).hexdigest() != payload.sha256[name]:
                raise RuntimeError(f"artifact {payload.key}: {name} arrived corrupted (sha256 mismatch)")
            (staging / Path(name).name).write_bytes(data)
        art = payload.artifact(staging, cached=payload.cached)
        (staging / "meta.json").write_text(strict_json.dumps(art.meta(), indent=1, sort_keys=True))
        final = cache.root / payload.key
        if final.exists():  # a stale or different copy: replace it with the verified one
            import shutil

            shutil.rmtree(final, ignore_errors=True)
        return cache.commit(staging, art)
    except BaseException:
        cache.discard(staging)
        raise


def _sha(path: Path) -> str | None:
    from qbench.hashing import file_sha256

    return file_sha256(path) if path.is_file() else None
