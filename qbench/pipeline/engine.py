"""Where the work of a run happens: preparing variants and measuring devices.

The orchestrator asks an engine two things and writes every answer to the store itself:
  prepare(checked, variants, cache, progress) → (variant, Artifact | CellError) in order, as each is ready
  measure(checked, jobs, ids, artifacts, store, progress, measure_device) → every device's trials in `store`
(`measure_device` is the orchestrator's per-device trial loop, passed in so this module does not import it).
LocalEngine does both in this process (devices in parallel threads). qbench/farm/ does them on a Dask
cluster and streams the same store writes back, so a run's rows do not depend on where it ran.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

from qbench.errors import CellError


def prepare_local(checked, variant, cache, on_stage=lambda stage: None):
    """One variant's artifact from the content-addressed cache (built on a miss); raises CellError."""
    from qbench.pipeline.prepare import prepare_variant

    suite = checked.suite
    return prepare_variant(
        variant, calibration=variant.model.calibration or suite.calibration, numerics=suite.numerics,
        base_dir=checked.loaded.base_dir, cache=cache, profile_ops=suite.benchmark.profile_ops,
        on_stage=on_stage, dataset=checked.dataset_for(variant.model),
    )


def measure_devices_locally(checked, jobs, ids, artifacts, store, progress, measure_device,
                            stop: threading.Event) -> None:
    """Each device's cells, devices in parallel (one thread each); Ctrl-C lets trials in flight finish."""
    _measure_device = measure_device
    if len(jobs) <= 1:
        for device_name, device_cells in jobs:
            _measure_device(checked, device_name, device_cells, ids, artifacts, store, progress, stop)
        return
    with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="device") as pool:
        futures = [pool.submit(_measure_device, checked, d, cs, ids, artifacts, store, progress, stop)
                   for d, cs in jobs]
        try:
            for f in futures:
                f.result()
        except KeyboardInterrupt:
            stop.set()  # workers finish (or time out) their current trial, then stop
            progress.log("interrupted: finishing the trials in flight…")
            raise


class LocalEngine:
    def prepare(self, checked, variants, cache, progress) -> Iterator[tuple[object, object]]:
        for v in variants:
            progress.stage(f"prepare {v.label}")
            try:
                yield v, prepare_local(checked, v, cache, on_stage=lambda s, label=v.label: progress.stage(f"{s} {label}"))
            except CellError as exc:
                yield v, exc

    def measure(self, checked, jobs, ids, artifacts, store, progress, measure_device) -> None:
        measure_devices_locally(checked, jobs, ids, artifacts, store, progress, measure_device, threading.Event())
