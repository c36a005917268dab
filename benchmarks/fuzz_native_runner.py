"""How the native runner fares on malformed programs: counts of outcomes over many fuzzed .pte files.

    .venv/bin/python benchmarks/fuzz_native_runner.py [--count 2000] [--seed 7] [--runner BIN] [PTE ...]

Without PTE arguments it exports the tiny fp32 and int8 convnets of the runner tests. Each variant
(qbench/testing/pte_fuzz.py) runs once in the host's native runner, capped at 1 GiB of address
space and --timeout seconds. Prints per outcome: ok, clean error (one `qbench-runner:` line),
signal N (with the runner's own crash line), timeout. --runner compares another build (e.g. main's,
copied with its folder of libraries) on the same variants. A signal without the runner's crash line, or
any other exit code, would be a regression.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def tiny_programs(folder: Path) -> list[Path]:
    sys.path.insert(0, str(REPO))
    from tests.runners.test_native_runner import export_pte, tiny_convnet

    model, example = tiny_convnet()
    return [export_pte(model, example, folder / f"{kind}.pte", int8=kind == "int8") for kind in ("fp32", "int8")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("programs", nargs="*", type=Path)
    p.add_argument("--count", type=int, default=2000, help="variants per program")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--runner", type=Path, help="a runner binary to fuzz instead of this checkout's build")
    p.add_argument("--show", type=int, default=10, help="list this many signal deaths (program, variant)")
    args = p.parse_args()

    from qbench.runners.native_build import build_runner
    from qbench.testing.pte_fuzz import variants

    binary = args.runner or build_runner("host")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        programs = args.programs or tiny_programs(folder)
        counts: collections.Counter = collections.Counter()
        unexplained = []
        deaths = []
        for pte in programs:
            for i, data in enumerate(variants(pte.read_bytes(), args.count, seed=args.seed)):
                path = folder / "variant.pte"
                path.write_bytes(data)
                argv = ["prlimit", f"--as={1 << 30}", "--", str(binary), "--model", str(path), "--warmup", "0",
                        "--warmup-seconds", "0", "--iterations", "2", "--min-seconds", "0", "--json"]
                try:
                    r = subprocess.run(argv, capture_output=True, timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    counts["timeout"] += 1
                    continue
                last = (r.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
                if r.returncode == 0:
                    counts["ok"] += 1
                elif r.returncode < 0:
                    counts[f"signal {-r.returncode}"] += 1
                    deaths.append((pte.name, i, -r.returncode))
                    if "qbench-runner: crashed:" not in r.stderr.decode(errors="replace"):
                        unexplained.append((pte.name, i, r.returncode))
                elif last.startswith("qbench-runner: "):
                    counts["clean error"] += 1
                else:
                    counts[f"exit {r.returncode}"] += 1
                    unexplained.append((pte.name, i, r.returncode))
    total = sum(counts.values())
    print(f"{total} variants of {len(programs)} program(s), seed {args.seed}:")
    for kind, n in counts.most_common():
        print(f"  {kind:12s} {n:6d}  ({100 * n / total:.2f}%)")
    print(f"  without a clear line: {len(unexplained)} {unexplained[:10]}")
    print(f"  signal deaths (program, variant, signal): {deaths[:args.show]}")


if __name__ == "__main__":
    main()
