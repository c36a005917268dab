"""What verifying the artifact cache costs per hit: size + sha256 of each file of an entry.

    python benchmarks/cache_verify.py            # entries the size of mobilenet_v2 fp32/int8, resnet18, MiniLM

Files are random bytes of the sizes of real .pte files (README figures); hashing does not care
what is inside. Prints the median lookup time with the hash check and with the size check only.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from qbench.export.cache import Artifact, ArtifactCache

SIZES_MIB = {"mobilenet_v2 int8": 3.6, "mobilenet_v2 fp32": 13.3, "resnet18 fp32": 44.6, "MiniLM fp32": 86.0}


def median_lookup_ms(cache: ArtifactCache, key: str, repeats: int = 15) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        assert cache.lookup(key) is not None
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, mib) in enumerate(SIZES_MIB.items()):
            key = f"{i:024d}"
            cache = ArtifactCache(Path(tmp))
            staging = cache.staging(key)
            (staging / "model.pte").write_bytes(os.urandom(int(mib * 2**20)))
            (staging / "inputs.bin").write_bytes(os.urandom(4096))
            cache.commit(staging, Artifact(key=key, dir=staging, program="model.pte", kind="pte", program_bytes=0))
            hashed = median_lookup_ms(cache, key)
            sized = median_lookup_ms(ArtifactCache(Path(tmp), verify_hash=False), key)
            print(f"{name:<20} {mib:6.1f} MiB   lookup with sha256 {hashed:7.2f} ms   size only {sized:6.3f} ms")


if __name__ == "__main__":
    main()
