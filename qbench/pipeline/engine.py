"""Where the work of a run happens: preparing variants and measuring devices.

The orchestrator asks an engine two things and writes every answer to the store itself:
  prepare(run, variants) → (variant, Artifact | CellError) in order, as each is ready
  measure(run, jobs, artifacts, measure_device) → every device's trials in `run.store`
(`measure_device(run, device_name, cells, artifacts)` is the orchestrator's per-device trial loop,
passed in so this module does not import it). LocalEngine does both in this process (devices in
parallel threads). qbench/farm/ does them on a Dask cluster and streams the same store writes back,
so a run's rows do not depend on where it ran.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Iterator

from qbench.errors import CellError


def prepare_local(checked, variant, cache, models=None, on_stage=lambda stage: None):
    """One variant's artifact from the content-addressed cache (built on a miss); raises CellError.
    `models`: the run's BuiltModels (each model built at most once); a fresh one when not given."""
    from qbench.models.loading import BuiltModels
    from qbench.pipeline.prepare import prepare_variant

    suite = checked.suite
    return prepare_variant(
        variant, calibration=variant.model.calibration or suite.calibration, numerics=suite.numerics,
        cache=cache, models=models if models is not None else BuiltModels(),
        profile_ops=suite.benchmark.profile_ops, on_stage=on_stage, dataset=checked.dataset_for(variant.model),
    )


def measure_devices_locally(run, jobs, artifacts, measure_device) -> None:
    """Each device's cells, devices in parallel (one thread each); Ctrl-C, SIGTERM or a crash on one
    device lets the trials in flight finish, then the others stop too."""
    if len(jobs) <= 1:
        for device_name, device_cells in jobs:
            measure_device(run, device_name, device_cells, artifacts)
        return
    with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="device") as pool:
        futures = [pool.submit(measure_device, run, d, cs, artifacts) for d, cs in jobs]
        try:
            for f in as_completed(futures):  # the first device that crashes stops the others
                f.result()
        except BaseException:
            run.stop.set()  # workers finish (or time out) their current trial, then stop
            run.progress.log("stopping: finishing the trials in flight…")
            raise


class LocalEngine:
    def prepare(self, run, variants) -> Iterator[tuple[object, object]]:
        for v in variants:
            run.progress.stage(f"prepare {v.label}")
            try:
                yield v, prepare_local(run.checked, v, run.cache, run.models,
                                       on_stage=lambda s, label=v.label: run.progress.stage(f"{s} {label}"))
            except CellError as exc:
                yield v, exc

    def measure(self, run, jobs, artifacts, measure_device) -> None:
        measure_devices_locally(run, jobs, artifacts, measure_device)
