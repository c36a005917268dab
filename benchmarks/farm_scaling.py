"""How a farm scales, measured with real processes on this machine (loopback only).

1. Devices in parallel: 4 emulated devices across 2 `qbench worker`s, each trial a fixed-length
   workload (the device's runner sleeps TRIAL_S and reports, so devices do not compete for this
   machine's cores). Goal: measuring wall time / the slowest device's own busy time <= 1.1, i.e. the
   farm adds little beyond what the slowest device needs anyway.
2. Prepare throughput: 8 variants quantized + exported from cold caches with 1 prepare slot, then with
   2 (one per worker process). Export is CPU-bound: on a 2-core machine the speed-up cannot exceed
   2x, and other load on the machine takes from it; the figure printed is what this machine gave.

    python benchmarks/farm_scaling.py            # about 5 minutes on 2 cores
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRIAL_S = 1.5
TRIALS = 4

RUNNER = """#!/bin/sh
# an emulated device: every trial takes the same time and uses no CPU. It is the launcher of the real
# host runner, which it runs only when outputs are asked for (the worker's device check compares a tiny
# model's outputs; device numerics): those are not trials.
case "$*" in *--outputs*) exec "$@";; esac
sleep {seconds}
echo '{{"load_ms": 0.1, "method_init_ms": 0.1, "first_inference_ms": 1.0, "samples_ns": [1000000, 1000000, 1000000], "threads": 1, "peak_rss_bytes": 1}}'
"""

SUITE = """
name: farm-scaling
models:
{models}
recipes:
{recipes}
calibration: {{kind: random, samples: 4, seed: 0}}
numerics: {{samples: 2}}
devices: [{devices}]
benchmark: {{warmup: 0, warmup_seconds: 0, iterations: 3, min_seconds: 0, trials: {trials}, threads: 1,
            timeout_seconds: 120, quiet_start: {{max_wait_s: 0}}}}
"""


def _suite(folder: Path, name: str, models: list[str], recipes: list[str], devices: list[str], trials: int) -> Path:
    models_yaml = "\n".join(f"  - {{name: {m}, source: 'python:models/tiny.py:{m}', inputs: [{{shape: {shape}}}]}}"
                            for m, shape in [(m, "[1, 64]" if m == "tiny_mlp" else "[1, 3, 32, 32]") for m in models])
    path = folder / f"{name}.yaml"
    path.write_text(SUITE.format(models=models_yaml, recipes="\n".join(f"  - {r}" for r in recipes),
                                 devices=", ".join(devices), trials=trials))
    return path


def devices_in_parallel(root: Path) -> None:
    from distributed import Client

    from qbench.export.cache import ArtifactCache
    from qbench.farm.engine import FarmEngine
    from qbench.pipeline.check import check_suite
    from qbench.pipeline.orchestrator import begin_run, execute
    from qbench.results.store import ResultsStore
    from qbench.suite.loader import load_suite
    from qbench.testing.farm import Farm

    runner = root / "fixed_workload.sh"
    runner.write_text(RUNNER.format(seconds=TRIAL_S))
    runner.chmod(0o755)
    profiles = root / "profiles"
    profiles.mkdir()
    devices = ["emu1", "emu2", "emu3", "emu4"]
    for d in devices:
        (profiles / f"{d}.yaml").write_text(f"transport: host\nworkdir: {root / d}\n"
                                            f"runner: {{kind: native, target: host, launcher: [{runner}]}}\n")
    suite = _suite(root / "suite", "parallel", ["tiny_mlp"], ["{name: fp32, kind: fp32}", "{name: int8-ptq, kind: ptq}"],
                   devices, TRIALS)
    farm = Farm(root / "procs-parallel", env={"QBENCH_PROFILES": str(profiles)})
    try:
        farm.start_scheduler()
        farm.start_worker("A", devices[:2], prepare=1)
        farm.start_worker("B", devices[2:], prepare=1)
        client = Client(farm.address)
        store = ResultsStore(root / "parallel.db")
        checked = check_suite(load_suite(suite), resolve_devices=False)
        timings = []
        for attempt in ("warm-up (workers import torch, artifacts built)", "timed"):
            engine = FarmEngine(client)
            measure = engine.measure

            def timed(*args, measure=measure):
                t0 = time.perf_counter()
                measure(*args)
                timings.append(time.perf_counter() - t0)

            engine.measure = timed
            run_id = begin_run(checked, store)
            execute(checked, store, run_id, ArtifactCache(root / "orchestrator-cache"), engine=engine)
        wall = timings[-1]
        own = {}
        for c in store.cells(run_id):
            assert c["status"] == "ok", dict(c)
            own[c["device"]] = own.get(c["device"], 0.0) + sum(t["wall_s"] for t in store.trials(c["cell_id"]))
        slowest = max(own.values())
        print(f"devices in parallel: 4 emulated devices on 2 workers, {TRIALS} trials x 2 cells x {TRIAL_S} s each")
        print("  own busy time per device: " + ", ".join(f"{d} {s:.1f} s" for d, s in sorted(own.items())))
        print(f"  measuring wall time {wall:.1f} s / slowest device {slowest:.1f} s = {wall / slowest:.2f}"
              f"  (goal <= 1.10; serial would be {sum(own.values()) / slowest:.1f})")
        client.close()
    finally:
        farm.stop()


def prepare_throughput(root: Path) -> None:
    from distributed import Client, wait

    from qbench.farm import PREPARE, tasks
    from qbench.farm.bundle import pack
    from qbench.testing.farm import Farm

    recipes = ["{name: fp32, kind: fp32}", "{name: int8-ptq, kind: ptq}", "{name: int8-dynamic, kind: dynamic}",
               "{name: int8-ptq-tensor, kind: ptq, per_channel: false}"]
    suite = _suite(root / "suite", "prepare", ["tiny_mlp", "tiny_cnn"], recipes, ["host"], 1)
    pairs = [(m, r.split(",")[0].split(": ")[1]) for m in ("tiny_mlp", "tiny_cnn") for r in recipes]
    results = {}
    for slots in (1, 2):
        farm = Farm(root / f"procs-prepare-{slots}")
        try:
            farm.start_scheduler()
            for i in range(slots):  # one process per slot: export holds the GIL
                farm.start_worker(f"P{i}", [], prepare=1, env={"QBENCH_CACHE": str(root / f"cold-cache-{slots}-{i}")})
            client = Client(farm.address)
            bundle = client.scatter(pack(suite), broadcast=True, hash=False)
            import importlib

            client.run(importlib.import_module, "torch")  # not timed: a worker's first import of torch
            t0 = time.perf_counter()
            futs = [client.submit(tasks.prepare_task, bundle, m, r, resources={PREPARE: 1}, pure=False)
                    for m, r in pairs]
            wait(futs)
            results[slots] = time.perf_counter() - t0
            done = [f.result() for f in futs]
            cached = sum(1 for p in done if getattr(p, "cached", False))
            client.close()
            print(f"prepare 8 variants with {slots} slot(s): {results[slots]:.1f} s ({cached} were cache hits)")
        finally:
            farm.stop()
    cores = os.cpu_count()
    print(f"  speed-up {results[1] / results[2]:.2f}x with 2 slots on {cores} core(s): export is CPU-bound, so the "
          f"bound is min(slots, cores) = {min(2, cores)}x, less whatever else this machine is running")


def main() -> int:
    sys.path.insert(0, str(REPO))
    root = Path(tempfile.mkdtemp(prefix="qbench-farm-bench-"))
    try:
        shutil.copytree(REPO / "suites" / "models", root / "suite" / "models")
        os.environ.setdefault("QBENCH_CACHE", str(root / "cache"))
        devices_in_parallel(root)
        prepare_throughput(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
