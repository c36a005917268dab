"""The store a measuring worker writes to, and the stream that carries its writes home.

A worker measures a device with the very function a local run uses (orchestrator.measure_device),
handed a RelayStore: a private SQLite mirror of the device's cells (seeded with their committed
trials, so resumed cells and summaries come out the same) that also emits every write as an event.
The orchestrator applies each event to the real store with the same method and arguments, so it
stays the only writer and every trial is committed as it arrives.
"""

from __future__ import annotations

import inspect
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from qbench import strict_json
from qbench.results.store import ResultsStore

log = logging.getLogger(__name__)

WRITES = ("add_trial", "update_cell", "replace_ops", "replace_power_samples")


def encode(event: dict) -> str:
    return strict_json.dumps(event, default=str)


def decode(text: str) -> dict:
    return json.loads(text)


class RelayStore(ResultsStore):
    """A ResultsStore in a temporary file whose writes are also sent through `emit(event)`."""

    def __init__(self, seed: dict, emit: Callable[[dict], None]):
        self._tmp = tempfile.TemporaryDirectory(prefix="qbench-relay-")
        super().__init__(Path(self._tmp.name) / "mirror.db")
        self._emit = emit
        _load_seed(self, seed)

    def add_trial(self, cell_id: int, trial: int, samples_ns: Iterable[int], thread_cpu_ns: Iterable[int] | None = None,
                  **fields: Any) -> None:
        samples = [int(ns) for ns in samples_ns]
        cpu = None if thread_cpu_ns is None else [None if c is None else int(c) for c in thread_cpu_ns]
        super().add_trial(cell_id, trial, samples, thread_cpu_ns=cpu, **fields)
        self._emit({"op": "add_trial", "cell_id": cell_id, "trial": trial, "samples": samples, "thread_cpu_ns": cpu,
                    "fields": fields})

    def update_cell(self, cell_id: int, **fields: Any) -> None:
        self._emit({"op": "update_cell", "cell_id": cell_id, "fields": dict(fields)})
        super().update_cell(cell_id, **fields)

    def replace_ops(self, cell_id: int, rows: list[dict]) -> None:
        super().replace_ops(cell_id, rows)
        self._emit({"op": "replace_ops", "cell_id": cell_id, "rows": rows})

    def replace_power_samples(self, cell_id: int, samples: list) -> None:
        super().replace_power_samples(cell_id, samples)
        self._emit({"op": "replace_power_samples", "cell_id": cell_id, "samples": [list(s) for s in samples]})

    def close(self) -> None:
        super().close()
        self._tmp.cleanup()


class RelayProgress:
    """Progress events travel with the writes (the orchestrator draws them)."""

    def __init__(self, emit: Callable[[dict], None]):
        self._emit = emit

    def start(self, total: int) -> None: ...

    def stage(self, text: str) -> None:
        self._emit({"op": "progress", "kind": "stage", "arg": text})

    def advance(self, n: int = 1) -> None:
        self._emit({"op": "progress", "kind": "advance", "arg": n})

    def more(self, n: int = 1) -> None:
        self._emit({"op": "progress", "kind": "more", "arg": n})

    def log(self, text: str) -> None:
        self._emit({"op": "progress", "kind": "log", "arg": text})

    def cell_done(self, label: str, cell: dict) -> None:
        self._emit({"op": "progress", "kind": "cell_done", "args": [label, cell]})


# the orchestrator's side -----------------------------------------------------------------------

def seed_for(store: ResultsStore, run_id: str, cell_ids: list[int]) -> dict:
    """What a worker's mirror needs: the cells (ids, names, extra) and their committed trials + samples."""
    cells, trials = [], []
    for cid in cell_ids:
        row = store.cell(cid)
        cells.append({k: row[k] for k in ("cell_id", "model", "recipe", "recipe_kind", "device", "status", "extra",
                                          "sweep", "batch")})
        samples = store.samples(cid)
        for t in store.trials(cid):
            fields = {k: t[k] for k in t.keys() if k not in ("cell_id", "trial") and t[k] is not None}
            trials.append({"cell_id": cid, "trial": t["trial"], "samples": samples.get(t["trial"], []),
                           "fields": fields})
    return {"run_id": run_id, "cells": cells, "trials": trials}


def _load_seed(mirror: ResultsStore, seed: dict) -> None:
    mirror.create_run(run_id=seed["run_id"], suite="relay", status="running", started_at="")
    with mirror.transaction() as db:
        for c in seed["cells"]:
            db.execute("INSERT INTO cells (cell_id, run_id, model, recipe, recipe_kind, device, status, extra, sweep, "
                       "batch) VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (c["cell_id"], seed["run_id"], c["model"], c["recipe"], c["recipe_kind"], c["device"],
                        c["status"], c["extra"], c.get("sweep") or "", c.get("batch")))
    for t in seed["trials"]:  # base-class writes: the seed is not news to the orchestrator
        ResultsStore.add_trial(mirror, t["cell_id"], t["trial"], t["samples"], **_json_fields(t["fields"]))


def _json_fields(fields: dict) -> dict:
    """Trial rows read back from a store hold JSON columns as text; the store's writer wants values."""
    from qbench.results.store import _JSON_COLUMNS

    return {k: (json.loads(v) if k in _JSON_COLUMNS and isinstance(v, str) else v) for k, v in fields.items()}


def apply(store: ResultsStore, event: dict, progress) -> None:
    """One event from a worker, written to the real store (or drawn, for progress)."""
    op = event["op"]
    if op == "add_trial":
        store.add_trial(event["cell_id"], event["trial"], event["samples"], thread_cpu_ns=event.get("thread_cpu_ns"),
                        **event["fields"])
    elif op == "update_cell":
        store.update_cell(event["cell_id"], **event["fields"])
    elif op == "replace_ops":
        store.replace_ops(event["cell_id"], event["rows"])
    elif op == "replace_power_samples":
        store.replace_power_samples(event["cell_id"], [tuple(s) for s in event["samples"]])
    elif op == "progress":
        getattr(progress, event["kind"])(*event.get("args", [event.get("arg")]))


class Outbox:
    """Events from a worker to the orchestrator through a Dask queue; held and retried while the
    scheduler is unreachable (a cut-off worker keeps what it measured until the link is back).
    Each event names the device and this run of its task (`attempt`): the orchestrator keeps only the
    events of the run it last sent a seed to.

    A worker that lost its scheduler closes (and `qbench worker` joins again as a new one): the Dask
    client this run's queue speaks through is closed with it, so nothing it holds can be delivered any
    more; the task runs again on the new worker from the committed trials."""

    def __init__(self, queue_name: str, device: str):
        import secrets

        from distributed import Queue

        self.queue_name, self.device, self.attempt = queue_name, device, secrets.token_hex(6)
        self.queue = Queue(queue_name)
        self.held: list[str] = []
        self.holding = False  # an outage is going on (said once, not once per retry)
        try:
            from distributed import get_worker

            self.worker = get_worker()
        except ValueError:  # not on a worker (tests)
            self.worker = None

    def __call__(self, event: dict) -> None:
        self.held.append(encode({**event, "device": self.device, "attempt": self.attempt}))
        self.flush(timeout=0)

    def ask_seed(self, stop) -> dict | None:
        """Say hello and wait for the seed (the device's committed cells and trials); None if told to stop."""
        from distributed import Queue

        reply = f"{self.queue_name}-seed-{self.attempt}"
        self({"op": "hello", "reply": reply})
        answers = Queue(reply)
        while not stop.is_set():
            self.flush(timeout=0)
            try:
                return decode(answers.get(timeout=2))
            except Exception:  # noqa: BLE001 - not yet (a timeout), or the scheduler is unreachable: ask again
                continue
        return None

    def worker_gone(self) -> bool:
        """The worker running this task closed (it lost its scheduler): its client can reach nobody."""
        return self.worker is not None and self.worker.status.name in ("closing", "closing_gracefully", "closed",
                                                                       "failed")

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.held:
            if self.worker_gone():
                log.info("%d event(s) of %s's measure task dropped: this worker lost its scheduler (the task "
                         "runs again from the committed trials)", len(self.held), self.device)
                return False
            try:
                self._put(self.held[0])
            except Exception as exc:  # noqa: BLE001 - any comm failure: keep it, try again later
                if not self.holding:
                    self.holding = True
                    log.warning("the scheduler does not answer; %s's results are held and sent when it is "
                                "back", self.device)
                log.debug("event held (scheduler unreachable: %s)", exc)
                if time.monotonic() >= deadline:
                    return False
                time.sleep(1.0)
                continue
            self.held.pop(0)
            if self.holding and not self.held:
                self.holding = False
                log.info("the scheduler answers again; %s's held results were sent", self.device)
        return True

    def _put(self, text: str) -> None:
        client = self.queue.client
        if client is None or client.status in ("closing", "closed") or client.scheduler is None:
            raise ConnectionError("this worker's client to the scheduler is closed")
        sent = self.queue.put(text, timeout=10)
        if inspect.isawaitable(sent):  # a client whose event loop stopped hands back the coroutine unsent
            sent.close()
            raise ConnectionError("this worker's client to the scheduler has no running event loop")
