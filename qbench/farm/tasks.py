"""The functions a farm's workers run; nothing else of qbench's is sent to them.

suite_bundle   the packed suite folder, as a task result every other task depends on

prepare_task   quantize + export one variant (the worker's cache first), return its bytes + hashes
measure_task   one device's cells, measured by the same function a local run uses, with a store
               whose writes stream back to the orchestrator
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from qbench.farm.artifacts import ArtifactPayload

_checked_lock = threading.Lock()
_checked: dict[tuple, object] = {}
busy_devices: set[str] = set()  # devices a task is measuring now (the worker's health check leaves them alone)


@dataclass
class PrepareFailure:
    """A variant that could not be prepared: its cells fail with this stage and message."""

    stage: str
    message: str


def _suite(bundle, cache_root: Path, devices: list[str]):
    """The checked suite from this worker's copy of the suite folder (parsed once per bundle)."""
    from qbench.farm.bundle import unpack
    from qbench.pipeline.check import check_suite
    from qbench.suite.loader import load_suite

    key = (bundle.sha256, tuple(devices))
    with _checked_lock:
        if key not in _checked:
            path = unpack(bundle, cache_root)
            _checked[key] = check_suite(load_suite(path), devices=devices, preflight=False, resolve_devices=False)
        return _checked[key]


def _variant(checked, model: str, recipe: str, batch: int | None = None, generate: str = ""):
    from qbench.pipeline import grid

    return next(v for v in grid.variants(checked) if v._key() == (model, recipe, batch, generate))


def _cache(cache_dir: str | None):
    from qbench.export.cache import ArtifactCache, default_cache_dir

    root = Path(cache_dir) if cache_dir else default_cache_dir()
    return root, ArtifactCache(root)


def suite_bundle(bundle):
    """The suite folder as a task's result (any worker may hold it; lost with it, it is made again)."""
    return bundle


def prepare_task(bundle, model: str, recipe: str, cache_dir: str | None = None,
                 batch: int | None = None, generate: str = "") -> ArtifactPayload | PrepareFailure:
    from qbench.errors import CellError
    from qbench.farm.artifacts import payload_of
    from qbench.pipeline.engine import prepare_local

    root, cache = _cache(cache_dir)
    checked = _suite(bundle, root, devices=[])
    try:
        art = prepare_local(checked, _variant(checked, model, recipe, batch, generate), cache)
    except CellError as exc:
        return PrepareFailure(exc.stage, str(exc).split(": ", 1)[-1])
    return payload_of(art, prepared_by=_worker_name())


def summary(payload: ArtifactPayload | PrepareFailure):
    """What the orchestrator needs of a prepared variant (its bytes stay on the workers)."""
    if isinstance(payload, PrepareFailure):
        return payload
    return ArtifactPayload(payload.meta, {}, dict(payload.sha256), payload.cached, payload.prepared_by)


def measure_task(bundle, device: str, cells: list[tuple[str, str, int, str]], payloads: dict[str, ArtifactPayload],
                 queue_name: str, stop_name: str, cache_dir: str | None = None,
                 flush_timeout: float = 300.0) -> dict:
    """Measure `cells` [(model, recipe, cell_id, sweep)] on this worker's `device`; writes stream to `queue_name`.

    Each run of this task (Dask runs it again when its worker died) starts by asking the orchestrator
    for the device's committed trials, so it measures only what is missing."""
    from qbench.farm.artifacts import materialize
    from qbench.farm.relay import Outbox, RelayProgress, RelayStore
    from qbench.pipeline import grid
    from qbench.models.loading import BuiltModels
    from qbench.pipeline.context import Run
    from qbench.pipeline.orchestrator import measure_device

    root, cache = _cache(cache_dir)
    checked = _suite(bundle, root, devices=[device])
    stop = StopFlag(stop_name)
    outbox = Outbox(queue_name, device)
    seed = outbox.ask_seed(stop)
    if seed is None:
        return {"device": device, "worker": _worker_name(), "undelivered": 0}  # told to stop before starting
    artifacts, ids, todo = {}, {}, []
    grid_cells = {(c.variant.model.name, c.variant.recipe.name, c.sweep): c for c in grid.cells(checked)
                  if c.device == device}  # the same cells (sweep points included) the orchestrator made
    for model, recipe, cell_id, point in cells:
        cell = grid_cells[(model, recipe, point)]
        v = cell.variant
        if v not in artifacts:
            artifacts[v] = materialize(payloads[v.label], cache)  # verified against its sha256
        ids[cell] = cell_id
        todo.append(cell)
    store = RelayStore(seed, outbox)
    busy_devices.add(device)
    try:
        run = Run(checked, store, seed["run_id"], cache, BuiltModels(), RelayProgress(outbox),
                  stop=stop, cell_ids=ids)  # the relay store stands in for the run's store
        measure_device(run, device, todo, artifacts)
    finally:
        busy_devices.discard(device)
        store.close()
        delivered = outbox.flush(timeout=flush_timeout)
    return {"device": device, "worker": _worker_name(), "undelivered": 0 if delivered else len(outbox.held)}


class StopFlag:
    """`stop.is_set()` for the measuring loop: the orchestrator said stop (Ctrl-C), or forgot the task
    (it died or gave up on this worker), or this worker lost its scheduler (nobody would receive the
    results; the task runs again from the committed trials), so the device is not held for nobody."""

    def __init__(self, name: str):
        from distributed.worker import get_worker, thread_state

        self.name = name
        self.key = getattr(thread_state, "key", None)
        self.worker = get_worker()

    def is_set(self) -> bool:
        from distributed import Event

        if self.worker.status.name in ("closing", "closing_gracefully", "closed", "failed"):
            return True
        try:
            if Event(self.name).is_set():
                return True
        except Exception:  # noqa: BLE001 - scheduler unreachable: go on, the outbox holds the results
            return False
        if self.key is None:
            return False
        ts = self.worker.state.tasks.get(self.key)
        return ts is None or ts.state in ("cancelled", "released", "forgotten")

    def set(self) -> None:  # the local loop's interface; a worker never sets it
        raise NotImplementedError


def _worker_name() -> str:
    try:
        from distributed import get_worker

        w = get_worker()
        return str(w.name if w.name is not None and w.name != "" else w.address)
    except ValueError:
        return "local"
