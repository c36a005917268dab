"""What qbench adds: reported latency vs a bare loop, and a cached rerun vs a cold run.

    .venv/bin/python benchmarks/harness_overhead.py

1. mobilenet_v2 int8 on host: the median latency `qbench run` reports against a bare loop over the
   same .pte in this process (ratio ~1.0 means the harness adds nothing to the figure).
2. Wall time of `qbench run` with an empty artifact cache vs the same suite again (cache hit).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import bare_loop_median_ms

SUITE = """
name: overhead
models:
  - name: mobilenet_v2
    source: torchvision:mobilenet_v2
    inputs: [{shape: [1, 3, 224, 224]}]
recipes:
  - {name: int8-ptq, kind: ptq}
calibration: {kind: random, samples: 16, seed: 0}
benchmark: {warmup: 10, warmup_seconds: 1, iterations: 50, min_seconds: 3, trials: 3, threads: 1}
"""


def qbench_run(suite: Path, db: Path, env: dict) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "qbench", "run", str(suite), "--db", str(db), "--json",
                           "--reports-dir", str(db.parent / "reports")], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(proc.stderr[-2000:])
    return wall, json.loads(proc.stdout)


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="qbench-overhead-"))
    try:
        suite = tmp / "suite.yaml"
        suite.write_text(SUITE)
        env = {**os.environ, "QBENCH_CACHE": str(tmp / "cache")}
        # the native runner build is not part of either figure: build it first into the fresh cache
        subprocess.run([sys.executable, "-m", "qbench", "runner", "build"], env=env, check=True, capture_output=True)
        cold, doc = qbench_run(suite, tmp / "q.db", env)
        warm, doc2 = qbench_run(suite, tmp / "q.db", env)
        cell = doc2["cells"][0]
        art_dir = next((tmp / "cache" / "artifacts").iterdir())
        bare = bare_loop_median_ms(art_dir / "model.pte", art_dir / "inputs.bin", threads=1)
        reported = cell["latency_ms"]["median"]
        print(f"mobilenet_v2 int8, host, 1 thread ({cell['runner']} runner, {cell['latency_ms']['trials']} trials)")
        print(f"  qbench median    {reported:8.3f} ms")
        print(f"  bare loop median {bare:8.3f} ms")
        print(f"  ratio            {reported / bare:8.3f}")
        print(f"cold run (quantize + export + measure)  {cold:7.1f} s")
        print(f"cached rerun (measure only)             {warm:7.1f} s   ({cold / warm:.1f}x faster)")
        print(f"  second run used the cache: {all(c['cached_artifact'] for c in doc2['cells'])}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
