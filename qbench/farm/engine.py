"""The orchestrator's side of a farm run: prepare on any prepare slot, measure on the worker that owns
each device, and write what comes back to the store (this process stays the only writer).

Faults, each bounded:
- a device's worker is gone (killed, cut off, device withdrawn) for `lost_wait` seconds: its
  remaining cells fail with that cause; trials already committed stay; other devices go on.
  A worker back within the wait picks the task up again (Dask re-runs it): each run of a measure task
  first asks for the device's committed trials (`hello` -> seed), and events of an earlier run of it
  are dropped, so no trial is measured or committed twice.
- a worker dies while preparing: Dask re-runs the prepare task on another prepare slot.
- the scheduler goes away (restarted, killed): Dask cancels every task of this client; the run stops
  as `interrupted` (SchedulerLost) and `--resume` continues it on the cluster.
- the results database stops answering: the run's store (results/hold.py) holds each event and
  retries it for `--db-wait` seconds, then the run stops with StoreUnavailable (what was committed stays).
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Iterator

from qbench.errors import CellError, DeviceError, ExitCode, QbenchError, UsageError
from qbench.farm import PREPARE, device_resource

log = logging.getLogger(__name__)

HEARTBEAT_STALE_S = 5.0  # workers report every ~0.5 s; silence this long starts the lost-worker wait


class SchedulerLost(QbenchError):
    """The scheduler went away mid-run (Dask cancelled this client's tasks): the run stops unfinished."""

    exit_code = ExitCode.INTERRUPTED


class FarmEngine:
    def __init__(self, client, *, lost_wait: float = 60.0, cache_dir: str | None = None,
                 local_devices: bool = False):
        """`local_devices`: measure on this host's threads (`--jobs`: the cluster only prepares)."""
        self.client = client
        self.lost_wait = lost_wait
        self.cache_dir = cache_dir
        self.local_devices = local_devices
        self.cluster = None  # a LocalCluster this engine owns (--jobs)
        self.token = secrets.token_hex(4)
        self.bundle = None
        self.payloads: dict[str, object] = {}  # variant label -> future of its ArtifactPayload
        self.attempts: dict[str, str] = {}  # device -> the run of its measure task whose events count
        self.address = getattr(client.scheduler, "address", "the scheduler")
        self.scheduler_id = client.scheduler_info()["id"]
        self.unreachable = False  # the event queue did not answer last time (said once per outage)

    # the cluster --------------------------------------------------------------------------------
    def workers(self) -> dict[str, dict]:
        return self.client.scheduler_info(n_workers=-1)["workers"]

    def owners(self, resource: str) -> list[str]:
        return [addr for addr, w in self.workers().items() if (w.get("resources") or {}).get(resource, 0) > 0]

    def check_devices(self, devices: list[str]) -> None:
        """Every device the suite names is advertised by some worker, before anything is measured."""
        if self.local_devices:
            return
        advertised = sorted({r.split(":", 1)[1] for w in self.workers().values() for r in (w.get("resources") or {})
                             if r.startswith("device:") and w["resources"][r] > 0})
        missing = [d for d in devices if d not in advertised]
        if missing:
            raise UsageError(f"no worker of the cluster owns device(s) {', '.join(missing)} (advertised: "
                             f"{', '.join(advertised) or 'none'}); start `qbench worker SCHEDULER --devices "
                             f"{','.join(missing)}` on the host they are plugged into")
        if not self.owners(PREPARE):
            raise UsageError("no worker of the cluster has prepare slots; start one with "
                             "`qbench worker SCHEDULER --prepare 1`")

    # prepare ------------------------------------------------------------------------------------
    def prepare(self, run, variants) -> Iterator[tuple[object, object]]:
        from qbench.farm import tasks
        from qbench.farm.bundle import pack

        checked, cache, progress = run.checked, run.cache, run.progress
        self.check_devices(checked.device_names)
        if self.bundle is None:  # a task's result, not scattered data: Dask rebuilds it when its holder dies
            self.bundle = self.client.submit(tasks.suite_bundle, pack(checked.loaded.path),
                                             key=f"qbench-bundle-{self.token}")
        full, small = {}, {}
        for v in variants:  # all at once: prepare slots work in parallel
            full[v] = self.client.submit(tasks.prepare_task, self.bundle, v.model.name, v.recipe.name, self.cache_dir,
                                         v.batch, v.generate, resources={PREPARE: 1}, key=f"qbench-prepare-{v.label}-{self.token}",
                                         retries=1)
            small[v] = self.client.submit(tasks.summary, full[v], key=f"qbench-summary-{v.label}-{self.token}")
        try:
            for v in variants:
                progress.stage(f"prepare {v.label} (cluster)")
                result = self._wait(small[v], PREPARE, f"preparing {v.label}")
                if isinstance(result, CellError):
                    yield v, result
                elif isinstance(result, tasks.PrepareFailure):
                    yield v, CellError(result.stage, result.message)
                else:
                    self.payloads[v.label] = full[v]
                    progress.log(f"[prepared] {v.label} on {result.prepared_by}" + (" (cached)" if result.cached else ""))
                    yield v, self._local_artifact(result, full[v], cache)
        except BaseException:
            self.client.cancel(list(full.values()) + list(small.values()))
            raise

    def _local_artifact(self, summary, payload_future, cache):
        if not self.local_devices:
            return summary.artifact()  # what the store records; the bytes stay on the workers
        from qbench.farm.artifacts import materialize

        art = materialize(payload_future.result(), cache)  # --jobs: measured here, verified by hash
        art.cached = summary.cached  # built by a worker this run, even when it shares our cache folder
        return art

    def _wait(self, future, resource: str, what: str):
        """The future's result; a CellError when no worker can run it for lost_wait seconds."""
        from distributed import TimeoutError as DaskTimeout

        missing_since = None
        while True:
            try:
                return future.result(timeout=1.0)
            except (DaskTimeout, TimeoutError):
                self._check_scheduler(future)
            except Exception as exc:  # noqa: BLE001 - the task failed or its workers kept dying
                self._check_scheduler(future)
                return CellError("prepare", f"{what} failed on the cluster: {type(exc).__name__}: {exc}")
            try:
                owned = bool(self.owners(resource))
            except Exception:  # noqa: BLE001 - the scheduler does not answer now: the next round sees
                continue
            if owned:
                missing_since = None
            elif missing_since is None:
                missing_since = time.monotonic()
            elif time.monotonic() - missing_since > self.lost_wait:
                future.cancel()
                return CellError("prepare", f"{what}: no worker with prepare slots for {self.lost_wait:.0f} s")

    def _check_scheduler(self, future) -> None:
        """A task cancelled while the scheduler is unreachable or another one: the scheduler was lost."""
        if future.status != "cancelled":
            return
        same = self.client.status == "running"  # not reconnecting, not given up
        try:
            same = same and self.client.scheduler_info()["id"] == self.scheduler_id
        except Exception:  # noqa: BLE001 - unreachable
            same = False
        if not same:
            raise SchedulerLost(f"the scheduler {self.address} went away mid-run (restarted or killed): the run "
                                "stopped. Everything committed is kept: resume with --resume RUN_ID once the "
                                "scheduler and its workers are back")

    # measure ------------------------------------------------------------------------------------
    def measure(self, run, jobs, artifacts, measure_device=None) -> None:
        """On the cluster each device's task runs the same per-device loop (tasks.measure_task imports it
        on the worker); `measure_device` is used as is only for --jobs (devices measured here)."""
        if self.local_devices:
            from qbench.pipeline.engine import measure_devices_locally

            return measure_devices_locally(run, jobs, artifacts, measure_device)
        store, ids, progress = run.store, run.cell_ids, run.progress
        from distributed import Event, Queue

        from qbench.farm import tasks

        queue_name, stop_name = f"qbench-events-{self.token}", f"qbench-stop-{self.token}"
        queue, stop = Queue(queue_name, client=self.client), Event(stop_name, client=self.client)
        running: dict[str, object] = {}
        cells_of = {d: cs for d, cs in jobs}
        self.attempts.clear()
        for device, cells in jobs:
            spec = [(c.variant.model.name, c.variant.recipe.name, ids[c], c.sweep) for c in cells]
            payloads = {c.variant.label: self.payloads[c.variant.label] for c in cells}
            running[device] = self.client.submit(
                tasks.measure_task, self.bundle, device, spec, payloads, queue_name, stop_name, self.cache_dir,
                resources={device_resource(device): 1}, key=f"qbench-measure-{device}-{self.token}", retries=0)
        watch = _Watch(self, running)
        try:
            while running:
                for fut in running.values():
                    self._check_scheduler(fut)
                self._drain(queue, store, progress, run, cells_of)
                watch.refresh()  # one scheduler query per second at most
                for device, fut in list(running.items()):
                    if fut.done():
                        self._check_scheduler(fut)
                        self._drain(queue, store, progress, run, cells_of)  # what it sent before it returned
                        cause = (f"measuring on the cluster failed: {_cause(fut)}" if fut.status == "error" else
                                 f"its measure task ended ({fut.status}) before these cells were measured")
                        self._fail_rest(run, cells_of[device], DeviceError(device, cause))
                        del running[device]
                    elif (lost := watch.lost(device)) is not None:
                        fut.cancel()
                        self._fail_rest(run, cells_of[device], DeviceError(device, lost))
                        del running[device]
                time.sleep(0.1)
            self._drain(queue, store, progress, run, cells_of)
        except BaseException:
            run.stop.set()
            try:
                stop.set()  # workers finish the trial in flight and stop; their sends are dropped
            except Exception:  # noqa: BLE001
                pass
            self.client.cancel(list(running.values()))
            raise

    def _drain(self, queue, store, progress, run, cells_of) -> None:
        from qbench.farm.relay import apply, decode

        while True:
            try:
                batch = queue.get(batch=True)
            except Exception as exc:  # noqa: BLE001 - the scheduler is unreachable: try again next round
                if not self.unreachable:  # said once per outage, not once per round
                    log.warning("the scheduler %s does not answer; waiting for it (the workers hold their results)",
                                self.address)
                self.unreachable = True
                log.debug("farm: event queue unreachable: %s", exc)
                return
            if self.unreachable:
                log.info("the scheduler %s answers again", self.address)
                self.unreachable = False
            if not batch:
                return
            for text in batch:
                event = decode(text)
                device, attempt = event.pop("device", None), event.pop("attempt", None)
                if event["op"] == "hello":  # a run of a device's measure task starts: send it what is committed
                    self.attempts[device] = attempt
                    self._send_seed(store, run, cells_of[device], event["reply"])
                elif attempt == self.attempts.get(device):
                    apply(store, event, progress)  # the run's store holds it through an outage
                else:
                    log.info("farm: dropped an event of an earlier run of %s's measure task", device)

    def _send_seed(self, store, run, cells, reply: str) -> None:
        from distributed import Queue

        from qbench.farm.relay import encode, seed_for

        seed = seed_for(store, run.run_id, [run.cell_ids[c] for c in cells])
        Queue(reply, client=self.client).put(encode(seed))

    def _fail_rest(self, run, cells, err: CellError) -> None:
        left = [c for c in cells if run.store.cell(run.cell_ids[c])["status"] == "pending"]
        for c in left:
            run.fail(c, err)
        if left:
            run.progress.log(f"[failed] {len(left)} cell(s) of {err}")


class _Watch:
    """When a device's task has had no live worker that owns the device: since when."""

    def __init__(self, engine: FarmEngine, running: dict):
        self.engine = engine
        self.missing_since: dict[str, float] = {}
        self.last_seen: dict[str, tuple[float, float]] = {}  # worker -> (its last_seen, our clock when it changed)
        self.where: dict[str, str] = {}
        self.workers: dict[str, dict] = {}
        self.refreshed = float("-inf")

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self.refreshed < 1.0:
            return
        self.refreshed = now
        try:
            self.workers = self.engine.workers()
        except Exception:  # noqa: BLE001 - the scheduler does not answer now: keep what we knew
            return
        for addr, w in self.workers.items():
            seen = w.get("last_seen", 0)
            prev = self.last_seen.get(addr)
            if prev is None or prev[0] != seen:
                self.last_seen[addr] = (seen, now)

    def lost(self, device: str) -> str | None:
        now = time.monotonic()
        alive = []
        for addr, w in self.workers.items():
            if (w.get("resources") or {}).get(device_resource(device), 0) <= 0:
                continue
            self.where[device] = w.get("name") or addr
            if now - self.last_seen[addr][1] <= HEARTBEAT_STALE_S:
                alive.append(addr)  # a heartbeat arrived recently
        if alive:
            self.missing_since.pop(device, None)
            return None
        since = self.missing_since.setdefault(device, now)
        if now - since <= self.engine.lost_wait:
            return None
        where = self.where.get(device, "its worker")
        return f"worker {where} owning it was lost (no heartbeat for {self.engine.lost_wait:.0f} s); remaining trials not measured"


def _cause(fut) -> str:
    try:
        exc = fut.exception(timeout=5)
    except Exception as e:  # noqa: BLE001
        exc = e
    return f"{type(exc).__name__}: {exc}"
