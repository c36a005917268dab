"""Does the reported median stay put when the device is disturbed, or is the cell flagged?

    .venv/bin/python benchmarks/noise_robustness.py            # resnet18, fp32 + int8-ptq (~15 min)
    .venv/bin/python benchmarks/noise_robustness.py --quick    # tiny CNN, short phases: a smoke test

The same cached cells (one CNN, fp32 and int8-ptq, 1 and 2 threads) are measured in three
conditions: quiet; with a busy process pinned to a core the runner uses (cpu0); with one on a core it
does not use (threads 1 pins the runner to cpu0 and the hog to cpu1; with 2 threads on a 2-core
machine there is no unused core, so that row is skipped). The script starts and stops the hog itself.

Each condition is measured twice, back to back, under the same hog:
- naive: what qbench did before interference was measured: `trials` fixed trials, every one pooled
  (interference_threshold 1.0 marks nothing, no precision target);
- qbench: disturbed trials replaced, trials repeated until the median's CI is within `precision`,
  up to `max_trials`, and a stable/noisy verdict.
Printed: the median shift against the quiet run of the same mode, trials needed, verdicts, and
whether the target holds (qbench's median within 3 % of quiet, or the cell flagged noisy). The quiet
control must flag nothing. Run it on an otherwise idle machine: other work counts as interference.
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

SUITE = """
name: noise-{mode}-t{threads}
models:
  - name: {model}
    source: {source}
    inputs: [{{shape: {shape}}}]
recipes:
  - {{name: fp32, kind: fp32}}
  - {{name: int8-ptq, kind: ptq}}
calibration: {{kind: random, samples: 16, seed: 0}}
numerics: {{samples: 2}}
devices: [host]
benchmark:
  warmup: 5
  warmup_seconds: {warmup_s}
  iterations: 10
  min_seconds: {min_s}
  threads: {threads}
  affinity: {affinity}
  runner: native
  trials: {trials}
{policy}
"""

NAIVE = "  max_trials: {trials}\n  interference_threshold: 1.0\n  quiet_start: {{max_wait_s: 0}}"
QBENCH = "  max_trials: {max_trials}\n  precision: \"{precision}\""

HOG = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"
TARGET = 0.03  # qbench's median within 3 % of the quiet one, or the cell flagged noisy


class Hog:
    """A busy process pinned to one core, for the duration of a `with` block (None: no hog)."""

    def __init__(self, core: int | None):
        self.core, self.proc = core, None

    def __enter__(self):
        if self.core is not None:
            self.proc = subprocess.Popen([sys.executable, "-c", HOG, str(self.core)])
            time.sleep(0.5)  # let it reach full speed
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def run_suite(tmp: Path, env: dict, args, mode: str, threads: int, affinity: list[int]) -> dict:
    policy = (NAIVE.format(trials=args.trials) if mode == "naive" else
              QBENCH.format(max_trials=args.max_trials, precision=args.precision))
    suite = tmp / f"{mode}-t{threads}.yaml"
    suite.write_text(SUITE.format(mode=mode, threads=threads, affinity=affinity, trials=args.trials, policy=policy,
                                  model=args.model_name, source=args.source, shape=args.shape,
                                  warmup_s=args.warmup_seconds, min_s=args.min_seconds))
    shutil.copytree(REPO / "suites" / "models", tmp / "models", dirs_exist_ok=True)
    db = tmp / "q.db"
    proc = subprocess.run([sys.executable, "-m", "qbench", "run", str(suite), "--db", str(db), "--json",
                           "--reports-dir", str(tmp / "reports")], capture_output=True, text=True, env=env)
    if proc.returncode not in (0, 1):
        sys.exit(proc.stderr[-3000:])
    doc = json.loads(proc.stdout)
    con = sqlite3.connect(db)
    out = {}
    for cell in doc["cells"]:
        if cell["status"] != "ok":
            sys.exit(f"{cell['recipe']}: {cell.get('error')}")
        ran, disturbed = con.execute(
            "SELECT count(*), coalesce(sum(t.disturbed), 0) FROM trials t JOIN cells c USING (cell_id) "
            "WHERE c.run_id=? AND c.recipe=?", (doc["run_id"], cell["recipe"])).fetchone()
        out[cell["recipe"]] = {"median": cell["latency_ms"]["median"], "stability": cell["stability"],
                               "ran": ran, "disturbed": disturbed, "speedup": cell.get("speedup_vs_fp32"),
                               "speedup_ci": cell.get("speedup_ci")}
    return out


def shift(value: float, base: float) -> str:
    return f"{(value / base - 1) * 100:+.1f}%"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny CNN and short phases (a smoke test, not the figures)")
    p.add_argument("--model", default="resnet18", help="a torchvision CNN (default resnet18)")
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--max-trials", type=int, default=10)
    p.add_argument("--precision", default="2%")
    args = p.parse_args()
    args.model_name, args.source, args.shape = args.model, f"torchvision:{args.model}", [1, 3, 224, 224]
    args.warmup_seconds, args.min_seconds = 0.5, 1.0
    if args.quick:
        args.model_name, args.source, args.shape = "tiny_cnn", "python:models/tiny.py:tiny_cnn", [1, 3, 32, 32]
        args.warmup_seconds, args.min_seconds = 0.05, 0.3
        args.trials, args.max_trials = 2, 4

    cores = sorted(os.sched_getaffinity(0))
    tmp = Path(tempfile.mkdtemp(prefix="qbench-noise-"))
    env = {**os.environ, "QBENCH_CACHE": os.environ.get("QBENCH_CACHE", str(Path.home() / ".cache" / "qbench"))}
    rows, ok = [], True
    try:
        for threads in (1, 2):
            used = cores[:threads]
            unused = [c for c in cores if c not in used]
            conditions = [("quiet", None), (f"hog on used cpu{used[0]}", used[0])]
            conditions.append((f"hog on other cpu{unused[0]}", unused[0]) if unused else ("hog on other core", "skip"))
            quiet: dict = {}
            for name, core in conditions:
                if core == "skip":
                    rows.append((threads, name, None, None))
                    continue
                with Hog(core):
                    results = {mode: run_suite(tmp, env, args, mode, threads, used) for mode in ("naive", "qbench")}
                if core is None:
                    quiet = results
                rows.append((threads, name, results, quiet))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{args.model_name}, fp32 and int8-ptq, host ({len(cores)} cores), trials {args.trials}, "
          f"max_trials {args.max_trials}, precision {args.precision}")
    head = ("threads", "condition", "recipe", "naive ms", "naive shift", "qbench ms", "qbench shift", "trials (disturbed)",
            "verdict", "target")
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for threads, name, results, quiet in rows:
        if results is None:
            print(f"{threads} | {name} | — | no unused core on this machine | | | | | | ")
            continue
        for recipe in ("fp32", "int8-ptq"):
            naive, qb = results["naive"][recipe], results["qbench"][recipe]
            qn, qq = quiet["naive"][recipe], quiet["qbench"][recipe]
            verdict = qb["stability"]["verdict"]
            if name == "quiet":
                met = verdict == "stable" and qb["disturbed"] == 0
                target = "flags nothing" if met else "FALSE ALARM"
            else:
                met = abs(qb["median"] / qq["median"] - 1) <= TARGET or verdict == "noisy"
                target = "ok" if met else "MISSED"
            ok &= met
            print(f"{threads} | {name} | {recipe} | {naive['median']:.3f} | {shift(naive['median'], qn['median'])} | "
                  f"{qb['median']:.3f} | {shift(qb['median'], qq['median'])} | {qb['ran']} ({qb['disturbed']}) | "
                  f"{verdict} | {target}")
        s, ci = results["qbench"]["int8-ptq"]["speedup"], results["qbench"]["int8-ptq"]["speedup_ci"]
        if s and ci:
            print(f"  int8 speedup (qbench): {s:.2f}× [{ci[0]:.2f}–{ci[1]:.2f}]"
                  + ("  → no clear difference" if ci[0] <= 1 <= ci[1] else ""))
    for threads, name, results, _ in rows:
        if results is not None:
            reasons = {r: results["qbench"][r]["stability"]["reason"] for r in ("fp32", "int8-ptq")}
            print(f"  t{threads} {name}: " + "; ".join(f"{r}: {why}" for r, why in reasons.items()))
    print("targets met" if ok else "some targets missed (see the table)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
