"""CPU clusters by name: phones are big.LITTLE, and `affinity: big` should mean the same cores on any phone.

Cores are grouped by what the kernel says about them: `cpu_capacity` (0..1024, the scheduler's own
measure) and `cpufreq/cpuinfo_max_freq`; cores with equal values form a cluster. Sorted from the
weakest cluster up, the names are:

  1 cluster     little = big = prime = every core (mid does not exist)
  2 clusters    little, big (prime = big)
  3 clusters    little, mid, big (prime = big)             Pixel 8 (Tensor G3): 4× A510, 4× A715, 1× X3
  4+ clusters   little, mid (all middle ones), big, prime  Galaxy S24 (Exynos 2400): 4× A520, 3+2× A720, 1× X4

`threads: auto` means one thread per core of the chosen cluster. `CLUSTER_SCRIPT` reads the facts on the
device in one round trip (sh, toybox and busybox alike); `parse` and `name_clusters` are pure.
"""

from __future__ import annotations

from qbench.errors import QbenchError

NAMES = ("little", "mid", "big", "prime")

# $1: the cpu folder (default /sys/devices/system/cpu). One line per core: cpuN<TAB>capacity<TAB>max kHz<TAB>cur kHz<TAB>governor
CLUSTER_SCRIPT = r"""
root=${1:-/sys/devices/system/cpu}
for d in "$root"/cpu[0-9]*; do
  [ -d "$d" ] || continue
  c=$(cat "$d/cpu_capacity" 2>/dev/null); m=$(cat "$d/cpufreq/cpuinfo_max_freq" 2>/dev/null)
  f=$(cat "$d/cpufreq/scaling_cur_freq" 2>/dev/null); g=$(cat "$d/cpufreq/scaling_governor" 2>/dev/null)
  printf '%s\t%s\t%s\t%s\t%s\n' "${d##*/}" "${c:--}" "${m:--}" "${f:--}" "${g:--}"
done
"""


def parse(text: str) -> dict[int, dict]:
    """Script output -> {cpu: {capacity, max_khz, cur_khz, governor}} (None where unreadable)."""
    cores: dict[int, dict] = {}
    for line in text.splitlines():
        parts = line.strip("\r").split("\t")
        if len(parts) != 5 or not parts[0].startswith("cpu") or not parts[0][3:].isdigit():
            continue
        num = lambda v: int(v) if v.strip().isdigit() else None  # noqa: E731
        cores[int(parts[0][3:])] = {"capacity": num(parts[1]), "max_khz": num(parts[2]), "cur_khz": num(parts[3]),
                                    "governor": parts[4].strip() if parts[4].strip() not in ("", "-") else None}
    return dict(sorted(cores.items()))


def groups(cores: dict[int, dict]) -> list[list[int]]:
    """Clusters, weakest first: cores with the same (capacity, max frequency)."""
    by: dict[tuple, list[int]] = {}
    for cpu, c in cores.items():
        by.setdefault((c.get("capacity") or 0, c.get("max_khz") or 0), []).append(cpu)
    return [sorted(v) for _, v in sorted(by.items())]


def name_clusters(cores: dict[int, dict]) -> dict[str, list[int]]:
    """{little, mid, big, prime: cores}; a name the device has no cluster for is absent."""
    g = groups(cores)
    if not g:
        return {}
    if len(g) == 1:
        return {"little": g[0], "big": g[0], "prime": g[0]}
    if len(g) == 2:
        return {"little": g[0], "big": g[1], "prime": g[1]}
    if len(g) == 3:
        return {"little": g[0], "mid": g[1], "big": g[2], "prime": g[2]}
    return {"little": g[0], "mid": sorted(c for grp in g[1:-2] for c in grp), "big": g[-2], "prime": g[-1]}


def describe(clusters: dict[str, list[int]]) -> str:
    if clusters and len({tuple(v) for v in clusters.values()}) == 1:
        return f"one cluster: cpu {_span(next(iter(clusters.values())))}"
    return ", ".join(f"{n} {_span(clusters[n])}" for n in NAMES if n in clusters)


def _span(cpus: list[int]) -> str:
    return f"{cpus[0]}-{cpus[-1]}" if len(cpus) > 1 and cpus == list(range(cpus[0], cpus[-1] + 1)) else ",".join(map(str, cpus))


def resolve(affinity, threads, clusters: dict[str, list[int]], device: str) -> tuple[int, list[int] | None]:
    """(threads, cores) for a profile/suite's `affinity` (a cluster name or core list) and `threads` (int or auto)."""
    cores = affinity
    if isinstance(affinity, str):
        if affinity not in NAMES:
            raise QbenchError(f"device {device}: unknown CPU cluster {affinity!r}; choose one of "
                              f"{', '.join(NAMES)} or a core list like [4, 5, 6, 7]")
        if not clusters:
            raise QbenchError(f"device {device}: `affinity: {affinity}` needs the CPU clusters, but the device shows no "
                              "/sys/devices/system/cpu/cpu*/cpu_capacity or cpufreq: give a core list instead")
        if affinity not in clusters:
            raise QbenchError(f"device {device} has no {affinity} cluster (it has: {describe(clusters)}); "
                              f"use one of those names or a core list")
        cores = clusters[affinity]
    if threads == "auto":
        threads = len(cores) if cores else 1
    return int(threads), (list(cores) if cores else None)


def read(device) -> dict[int, dict]:
    """The cores of a Device (host, adb, ssh), read with CLUSTER_SCRIPT."""
    res = device.run(["sh", "-c", CLUSTER_SCRIPT], timeout=30)
    return parse(res.stdout) if res.returncode == 0 else {}
