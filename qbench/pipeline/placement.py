"""Threads and CPU affinity for a device's trials: core lists as given, cluster names resolved on the device."""

from __future__ import annotations

from qbench.devices.transports import is_local


def resolve_placement(session, profile, bench, threads=None, affinity=None) -> tuple[int, list[int] | None]:
    """(threads, cores). `affinity: big` and `threads: auto` are read from the device's /sys; what they
    resolved to is recorded in the device info stored with every cell (the trials record the cores applied).
    `threads`/`affinity`: a sweep point's values, which win over the profile (the sweep is the experiment)."""
    from qbench.devices.clusters import name_clusters, read, resolve
    from qbench.suite.sweep import values

    if affinity is None:  # not swept: the suite's single value (`[big]` is `big`), unless the profile sets one
        affinity = profile.affinity if profile.affinity is not None else values(bench, "affinity")[0]
    affinity = list(affinity) if isinstance(affinity, tuple) else affinity
    threads = threads or profile.threads or values(bench, "threads")[0]
    clusters = name_clusters(read(session.device)) if isinstance(affinity, str) or threads == "auto" else {}
    threads, cores = resolve(affinity, threads, clusters, session.name)
    check_cores(cores, session.info.get("cores"))
    if clusters:
        session.info["placement"] = {"affinity": affinity, "cores": cores, "threads": threads, "clusters": clusters}
    return threads, cores


def absent_cores(cores: list[int] | None, available) -> list[int]:
    """The cores of an affinity list that the device does not have (`available`: a set of core ids)."""
    return sorted({c for c in cores or () if c not in available})


def cores_problem(cores: list[int] | None, available, device: str) -> str | None:
    """One line naming the affinity's absent cores and the ones there are, or None."""
    absent = absent_cores(cores, available)
    if not absent:
        return None
    have = sorted(available)
    shown = ("CPU " if len(absent) == 1 else "CPUs ") + ", ".join(map(str, absent[:5]))
    shown += f" and {len(absent) - 5} more" if len(absent) > 5 else ""
    span = f"{have[0]}-{have[-1]}" if have == list(range(have[0], have[-1] + 1)) else ", ".join(map(str, have))
    verb = "is not a core" if len(absent) == 1 else "are not cores"
    return f"{shown} {verb} of {device} (its cores: {span}): list cores from {span}, or a cluster name"


def check_cores(cores: list[int] | None, count: int | None) -> None:
    """At session open, against the core count the device reported (cores are numbered from 0)."""
    from qbench.errors import QbenchError

    if count and (problem := cores_problem(cores, range(count), "the device")):
        raise QbenchError(f"affinity: {problem}")


def host_available_cores() -> set[int]:
    """The CPUs this process may use (cpusets, taskset), as the runner started here will."""
    import os

    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:
        return set(range(os.cpu_count() or 1))


def host_affinity_problems(bench, profiles: dict) -> list[tuple[list, str]]:
    """For the suite check: (location, message) for each host affinity naming a core this machine lacks.
    `profiles`: device index -> profile. The location is the suite's `benchmark.affinity`, or the
    device whose profile sets it."""
    from qbench.suite.sweep import values

    available, found = host_available_cores(), []
    for j, p in profiles.items():
        if not is_local(p.transport):
            continue
        if p.affinity is not None and not isinstance(p.affinity, str):
            if problem := cores_problem(list(p.affinity), available, "this host"):
                found.append((["devices", j], f"profile {p.name!r}: affinity: {problem}"))
        for cores in values(bench, "affinity"):
            if isinstance(cores, list) and (problem := cores_problem(cores, available, "this host")):
                found.append((["benchmark", "affinity"], problem))
    return list({(tuple(loc), msg): (loc, msg) for loc, msg in found}.values())
