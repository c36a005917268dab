"""`threads` above the cores a device gives the runner: the extra threads time-share cores, so the
latency measures contention rather than the model. Warned at check time for the host (its cores are
known without connecting) and at session open for every device; recorded in each cell's
`extra.warnings`."""

from __future__ import annotations

import os

from qbench.results.columns import thread_warning_extra


def threads_warning(threads: int, cores: int | None, affinity: list[int] | None, device: str) -> str | None:
    usable = len(set(affinity)) if affinity else cores
    if not usable or threads <= usable:
        return None
    where = f"the {usable} CPU(s) of its affinity" if affinity else f"its {usable} core(s)"
    return (f"threads: {threads} on {device} is more than {where}: the extra threads time-share cores, so "
            f"latency measures contention rather than the model; use threads <= {usable}")


def host_cores() -> int | None:
    try:
        return len(os.sched_getaffinity(0))  # what this process may use (cpusets, taskset)
    except AttributeError:
        return os.cpu_count()


def host_warnings(suite, profiles) -> list[str]:
    """For the suite check: host profiles whose thread count exceeds this machine's cores."""
    from qbench.suite.sweep import swept_axes, values

    bench = suite.benchmark
    swept = swept_axes(bench)
    found = []
    for p in profiles:
        if p.transport == "host":
            counts = values(bench, "threads") if "threads" in swept else [p.threads or values(bench, "threads")[0]]
            places = values(bench, "affinity") if "affinity" in swept else [p.affinity or values(bench, "affinity")[0]]
            for threads in counts:
                for cores in places:
                    if isinstance(threads, int):  # `auto` and cluster names are resolved on the device
                        found.append(threads_warning(threads, host_cores(), cores if isinstance(cores, list) else None,
                                                     p.name))
    return list(dict.fromkeys(w for w in found if w))


def warn_at_session_open(session, settings, cell_ids, store, log) -> None:
    """Once the device says how many cores it has: record the warning on its cells (and print it for a
    remote device; the host's was printed by the check)."""
    warning = threads_warning(settings.threads, session.info.get("cores"), settings.affinity, session.name)
    if warning is None:
        return
    for cid in cell_ids:
        store.merge_extra(cid, **thread_warning_extra(warning))
    if session.device.transport != "host":
        log(f"warning: {warning}")
