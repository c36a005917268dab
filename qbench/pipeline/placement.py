"""Threads and CPU affinity for a device's trials: core lists as given, cluster names resolved on the device."""

from __future__ import annotations


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
    if clusters:
        session.info["placement"] = {"affinity": affinity, "cores": cores, "threads": threads, "clusters": clusters}
    return threads, cores
