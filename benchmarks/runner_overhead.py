"""Native runner vs Python runner vs a bare loop: median per-iteration latency on two models.

    .venv/bin/python benchmarks/runner_overhead.py

Every figure is the median of per-iteration samples; the runners run in fresh processes exactly as
`qbench run` starts them (same flags), the bare loop executes the same .pte in this process. The
three are interleaved over ROUNDS rounds (A B C A B C ...) and the median of the round medians is
printed, so machine load drifting during the script does not favour whichever ran first.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from _common import artifact, bare_loop_median_ms

THREADS = 1
ROUNDS = 3
FLAGS = ["--warmup", "10", "--warmup-seconds", "1", "--iterations", "50", "--min-seconds", "3",
         "--threads", str(THREADS), "--json"]


def runner_median_ms(argv: list[str]) -> float:
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    report = json.loads(out.strip().splitlines()[-1])
    return statistics.median(report["samples_ns"]) / 1e6


def main() -> int:
    from qbench.runners.native_build import build_runner
    from qbench.runners.python_launch import SCRIPT

    native = build_runner("host")
    cases = [("mobilenet_v2 int8 (ptq)", "torchvision:mobilenet_v2", [1, 3, 224, 224], "ptq"),
             ("encoder block int8 (dynamic)", "python:models/encoder.py:encoder_block", [1, 128, 256], "dynamic")]
    rows = []
    for label, source, shape, kind in cases:
        art = artifact(source, shape, kind)
        args = ["--model", str(art.path), "--inputs", str(art.dir / "inputs.bin"), *FLAGS]
        bares, nats, pys = [], [], []
        for _ in range(ROUNDS):
            bares.append(bare_loop_median_ms(art.path, art.dir / "inputs.bin", THREADS))
            nats.append(runner_median_ms([str(native), *args]))
            pys.append(runner_median_ms([sys.executable, str(SCRIPT), *args]))
        rows.append((label, statistics.median(bares), statistics.median(nats), statistics.median(pys)))
    print(f"{'model':<30} {'bare loop':>10} {'native':>10} {'python':>10} {'native/bare':>12} {'python/bare':>12}")
    for label, bare, nat, py in rows:
        print(f"{label:<30} {bare:>8.3f}ms {nat:>8.3f}ms {py:>8.3f}ms {nat / bare:>12.3f} {py / bare:>12.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
