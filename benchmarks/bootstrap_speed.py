"""How long the comparison statistics take: the two-level bootstrap of a ratio of medians over
3 trials × 333 samples per run (what `qbench compare` and the nightly gate do per cell).

    .venv/bin/python benchmarks/bootstrap_speed.py

Prints seconds per call for the hierarchical (trial-labelled) and the flat bootstrap, 2000 replicates.
The goal: well under a second per cell on a 2-core machine, so a 64-cell nightly gate takes seconds.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from qbench.report.stats import ratio_of_medians


def run(rng, trials: int = 3, n: int = 333):
    offsets = rng.normal(0, 0.05, trials)
    samples = np.concatenate([rng.lognormal(np.log(10e6) + o, 0.1, n) for o in offsets])
    labels = np.repeat(np.arange(trials), n)
    return samples, labels


def main() -> int:
    rng = np.random.default_rng(9)
    (base, tb), (new, tn) = run(rng), run(rng)
    for name, kwargs in (("hierarchical", {"trials_base": tb, "trials_new": tn}), ("flat", {})):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            ratio_of_medians(base, new, n_boot=2000, **kwargs)
            times.append(time.perf_counter() - t0)
        print(f"{name:>12}: median {statistics.median(times):.3f} s per cell (min {min(times):.3f}, 5 calls)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
