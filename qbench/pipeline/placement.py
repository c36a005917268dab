"""Threads and CPU affinity for a device's trials: core lists as given, cluster names resolved on the device."""

from __future__ import annotations


def resolve_placement(session, profile, bench) -> tuple[int, list[int] | None]:
    """(threads, cores). `affinity: big` and `threads: auto` are read from the device's /sys; what they
    resolved to is recorded in the device info stored with every cell (the trials record the cores applied)."""
    from qbench.devices.clusters import name_clusters, read, resolve

    affinity = profile.affinity if profile.affinity is not None else bench.affinity
    threads = profile.threads or bench.threads
    clusters = name_clusters(read(session.device)) if isinstance(affinity, str) or threads == "auto" else {}
    threads, cores = resolve(affinity, threads, clusters, session.name)
    if clusters:
        session.info["placement"] = {"affinity": affinity, "cores": cores, "threads": threads, "clusters": clusters}
    return threads, cores
