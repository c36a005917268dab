"""`threads` above the cores a device gives the runner: the extra threads time-share cores, so the
latency measures contention rather than the model. Warned at check time for the host (its cores are
known without connecting) and at session open for every device; recorded in each cell's
`extra.warnings`."""

from __future__ import annotations

import os

from qbench.devices.transports import is_local
from qbench.results.columns import thread_warning_extra


def threads_warning(threads: int | list[int], cores: int | None, affinity: list[int] | None,
                    device: str) -> str | None:
    """One warning for every thread count (one, or a sweep's) above what the device gives the runner."""
    usable = len(set(affinity)) if affinity else cores
    counts = [threads] if isinstance(threads, int) else threads
    over = [t for t in counts if usable and t > usable]
    if not over:
        return None
    where = f"the {usable} CPU(s) of its affinity" if affinity else f"its {usable} core(s)"
    shown = f"{over[0]} on {device} is" if len(over) == 1 else f"{_listed(over)} ({len(over)} values) on {device} are"
    return (f"threads: {shown} more than {where}: the extra threads "
            f"time-share cores, so latency measures contention rather than the model; use threads <= {usable}")


def _listed(counts: list[int], head: int = 5) -> str:
    """`3, 4, 5, 6, 7, …, 256`: a long sweep folded to its first values and its last."""
    if len(counts) <= head + 1:
        return ", ".join(map(str, counts))
    return ", ".join(map(str, counts[:head])) + f", …, {counts[-1]}"


def host_cores() -> int | None:
    try:
        return len(os.sched_getaffinity(0))  # what this process may use (cpusets, taskset)
    except AttributeError:
        return os.cpu_count()


def host_warnings(suite, profiles) -> list[str]:
    """For the suite check: host profiles whose thread counts exceed this machine's cores, one warning
    per profile and affinity (a sweep's counts folded into it)."""
    from qbench.suite.sweep import swept_axes, values

    bench = suite.benchmark
    swept = swept_axes(bench)
    found = []
    for p in profiles:
        if is_local(p.transport):
            counts = values(bench, "threads") if "threads" in swept else [p.threads or values(bench, "threads")[0]]
            places = values(bench, "affinity") if "affinity" in swept else [p.affinity or values(bench, "affinity")[0]]
            counts = [t for t in counts if isinstance(t, int)]  # `auto` and clusters are resolved on the device
            for cores in places:
                found.append(threads_warning(counts, host_cores(), cores if isinstance(cores, list) else None, p.name))
    return list(dict.fromkeys(w for w in found if w))


def warn_at_session_open(session, settings, cell_ids, store, log) -> None:
    """Once the device says how many cores it has: record the warning on its cells (and print it for a
    remote device; the host's was printed by the check)."""
    warning = threads_warning(settings.threads, session.info.get("cores"), settings.affinity, session.name)
    if warning is None:
        return
    for cid in cell_ids:
        store.merge_extra(cid, **thread_warning_extra(warning))
    if not is_local(session.device.transport):
        log(f"warning: {warning}")
