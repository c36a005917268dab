"""`qbench worker`: a Dask worker whose resources are the devices plugged into this host.

Each device passes `qbench doctor`'s checks (pipeline/doctor.py) before it is advertised (one task at
a time on it), and is re-checked every `check_interval` seconds while idle: a device that fails them
is withdrawn (resource 0, so nothing new is sent to it) and advertised again when it passes. `--prepare N` adds N slots for
quantize + export work. When the scheduler goes away (restarted), the worker waits for it and joins again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

from qbench.farm import PREPARE, device_resource

log = logging.getLogger("qbench.worker")


def check_device(name: str, suite_dir: Path | None = None, *, run_model: bool = True) -> str | None:
    """None when `name` is ready (pipeline/doctor.py: every required check passes), else the reasons.

    run_model: also run a tiny model with the device's runner (before a device is first advertised);
    the periodic re-check of an idle device leaves it out (reachability, workdir, runner files).
    """
    from qbench.devices.profiles import load_profile
    from qbench.pipeline.doctor import check_device as doctor_checks, ready

    try:
        profile = load_profile(name, suite_dir)
        checks = doctor_checks(profile, suite_dir, run_model=run_model, stability_seconds=0.0)
    except Exception as exc:  # noqa: BLE001 - any failure means: do not advertise it
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    if ready(checks):
        return None
    return "; ".join(f"{c.name}: {c.detail}" + (f" (fix: {c.fix})" if c.fix else "")
                     for c in checks if c.required and not c.ok)


def run_worker(scheduler: str, devices: list[str], prepare: int = 0, *, name: str | None = None,
               cache_dir: Path | None = None, profiles: Path | None = None, check_interval: float = 30.0,
               security=None, host: str | None = None, say=print) -> None:
    if profiles:
        os.environ["QBENCH_PROFILES"] = os.pathsep.join([str(profiles), os.environ.get("QBENCH_PROFILES", "")]).strip(os.pathsep)
    if cache_dir:
        os.environ["QBENCH_CACHE"] = str(cache_dir)
    healthy = {}
    for d in devices:
        reason = check_device(d)
        healthy[d] = reason is None
        say(f"device {d}: " + ("ok, advertised" if reason is None else f"not advertised ({reason})"))
    rejoining, refused = False, None
    while True:  # a Dask worker closes when its scheduler goes away; this one joins it again when it is back
        try:
            asyncio.run(_serve(scheduler, devices, healthy, prepare, name, check_interval, security, host, say))
        except (OSError, RuntimeError, ValueError, asyncio.TimeoutError) as exc:
            if not rejoining:
                raise  # the first join: the caller says why (wrong address, TLS...)
            # e.g. "name taken": the scheduler still lists this worker's earlier self (cut off, not yet dropped)
            why = str(exc.__cause__ or exc)
            if why != refused:
                say(f"the scheduler {scheduler} refused this worker for now ({why}); trying again")
            refused = why
            log.debug("joining %s failed", scheduler, exc_info=True)
            time.sleep(5.0)
            continue
        rejoining, refused = True, None
        say(f"lost the scheduler {scheduler}; joining it again as soon as it answers (Ctrl-C stops)")
        time.sleep(1.0)


async def _serve(scheduler, devices, healthy, prepare, name, check_interval, security, host, say) -> None:
    from distributed import Worker

    from qbench.farm import tasks

    resources = {device_resource(d): (1 if healthy[d] else 0) for d in devices}
    if prepare:
        resources[PREPARE] = prepare
    kwargs = {"security": security} if security is not None else {}
    if host:
        kwargs["host"] = host
    async with Worker(scheduler, nthreads=max(1, len(devices) + prepare), resources=resources, name=name,
                      dashboard=False, **kwargs) as worker:
        say(f"worker {worker.name} at {worker.address}: devices {', '.join(devices) or 'none'}, "
            f"{prepare} prepare slot(s); scheduler {scheduler}")

        async def recheck():
            while worker.status.name not in ("closing", "closed", "failed"):
                await asyncio.sleep(check_interval)
                for d in devices:
                    if d in tasks.busy_devices:
                        continue  # being measured: the trial loop notices a lost device itself
                    ok = await asyncio.to_thread(check_device, d, run_model=False) is None
                    if ok != healthy[d]:
                        healthy[d] = ok
                        await worker.set_resources(**{device_resource(d): 1 if ok else 0})
                        say(f"device {d}: " + ("back, advertised again" if ok else "not answering, withdrawn"))

        checker = asyncio.create_task(recheck()) if devices else None
        try:
            await worker.finished()
        finally:
            if checker:
                checker.cancel()
