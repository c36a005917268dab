"""Wall time of `qbench run suites/smoke.yaml`: cold (empty artifact cache) and cached rerun, how
many model builds each needed, and how much of the wall time was spent inside the runner's trial
processes (set by the suite's `benchmark:` and the runner, not by qbench's own work around them).

    .venv/bin/python benchmarks/smoke_timing.py [--checkout DIR] [--repeat N]

`--checkout DIR` times another checkout of qbench (e.g. an older commit made with `git worktree
add /tmp/old COMMIT`) with this venv, so two versions can be compared on the same machine (run
them alternately). Model builds are counted by the suite's own factory functions, wrapped in a
copy of suites/, so the count means the same for any version.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

def run(checkout: Path, suite: Path, cache: Path, db: Path, counter: Path) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(checkout), "QBENCH_CACHE": str(cache), "QBENCH_BUILD_COUNT": str(counter)}
    t0 = time.perf_counter()
    # cwd = the checkout: `python -m` puts the working folder first on sys.path, before PYTHONPATH
    proc = subprocess.run([sys.executable, "-m", "qbench", "run", str(suite), "--db", str(db), "--json",
                           "--reports-dir", str(db.parent / "reports")], capture_output=True, text=True, env=env,
                          cwd=checkout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"qbench run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, json.loads(proc.stdout)["run_id"]


def trial_seconds(db: Path, run_id: str) -> float:
    """Wall time of the run's trial processes, as each trial row recorded it."""
    with sqlite3.connect(db) as con:
        (total,) = con.execute("SELECT sum(t.wall_s) FROM trials t JOIN cells c USING (cell_id) WHERE c.run_id=?",
                               (run_id,)).fetchone()
    return total or 0.0


def builds(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, default=REPO, help="the qbench checkout to time (default: this one)")
    parser.add_argument("--repeat", type=int, default=1, help="cold+cached pairs to time (default 1)")
    args = parser.parse_args()
    checkout = args.checkout.resolve()
    for i in range(args.repeat):
        tmp = Path(tempfile.mkdtemp(prefix="qbench-smoke-"))
        try:
            suite_dir = tmp / "suite"
            shutil.copytree(REPO / "suites", suite_dir)
            # the factory file counts its own calls: one line per model build
            tiny = suite_dir / "models" / "tiny.py"
            text = tiny.read_text()
            tiny.write_text(text + "\n\nimport os as _os\n"
                            "def _counted(fn):\n"
                            "    def wrapped(*a, **k):\n"
                            "        with open(_os.environ['QBENCH_BUILD_COUNT'], 'a') as f:\n"
                            "            f.write(fn.__name__ + '\\n')\n"
                            "        return fn(*a, **k)\n"
                            "    return wrapped\n\n"
                            "tiny_cnn, tiny_mlp = _counted(tiny_cnn), _counted(tiny_mlp)\n")
            cache, db = tmp / "cache", tmp / "q.db"
            # the native runner build is part of neither figure
            subprocess.run([sys.executable, "-m", "qbench", "runner", "build"], check=True, capture_output=True,
                           env={**os.environ, "PYTHONPATH": str(checkout), "QBENCH_CACHE": str(cache)}, cwd=checkout)
            cold_count, warm_count = tmp / "cold.count", tmp / "warm.count"
            cold, cold_id = run(checkout, suite_dir / "smoke.yaml", cache, db, cold_count)
            warm, warm_id = run(checkout, suite_dir / "smoke.yaml", cache, db, warm_count)
            cold_trials, warm_trials = trial_seconds(db, cold_id), trial_seconds(db, warm_id)
            print(f"{checkout.name}: cold {cold:6.1f} s ({builds(cold_count)} model builds, trials {cold_trials:.1f} s, "
                  f"the rest {cold - cold_trials:.1f} s) · cached {warm:6.1f} s ({builds(warm_count)} model builds, "
                  f"trials {warm_trials:.1f} s, the rest {warm - warm_trials:.1f} s)", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
