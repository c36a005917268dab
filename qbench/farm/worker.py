"""`qbench worker`: a Dask worker whose resources are the devices plugged into this host.

Each device is checked before it is advertised (one task at a time on it), and re-checked every
`check_interval` seconds while idle: a device that stops answering is withdrawn (resource 0, so
nothing new is sent to it) and advertised again when it answers. `--prepare N` adds N slots for
quantize + export work.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from qbench.farm import PREPARE, device_resource

log = logging.getLogger("qbench.worker")


def check_device(name: str, suite_dir: Path | None = None) -> str | None:
    """None when `name` answers through the Device interface, else the reason.

    Hook: when qbench.devices.doctor is present, its checks for the profile belong here too
    (runner present, workdir writable, governor): this is the minimal reachability part.
    """
    from qbench.devices.profiles import load_profile, open_device

    try:
        profile = load_profile(name, suite_dir)
        device = open_device(profile, suite_dir)
        try:
            device.info()
            result = device.run(["true"], timeout=30)
            if result.returncode != 0:
                return f"`true` exited {result.returncode} on it: {result.last_error_line()}"
        finally:
            device.close()
    except Exception as exc:  # noqa: BLE001 - any failure means: do not advertise it
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


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
    asyncio.run(_serve(scheduler, devices, healthy, prepare, name, check_interval, security, host, say))


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
                    ok = await asyncio.to_thread(check_device, d) is None
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
