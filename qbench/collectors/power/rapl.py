"""`rapl`: Linux powercap RAPL energy counters, read at window edges (and `read_rapl_host()` here).

sysfs layout (Documentation/power/powercap/powercap.rst): /sys/class/powercap holds flat links
`intel-rapl:0` (name `package-0`), its sub-zones `intel-rapl:0:0` (`core`), `intel-rapl:0:1`
(`uncore`, or `dram` on servers), and top-level zones such as `intel-rapl:1` (`psys`). Each has
`energy_uj` (cumulative microjoules) and `max_energy_range_uj` (where it wraps to 0; 262143328850 on
many Intel clients). AMD exposes the same `intel-rapl:*` names. `intel-rapl-mmio:*` duplicates the
package zone on some laptops and is not read. Since Linux 5.10, energy_uj is root-only
(CVE-2020-8694, "Platypus").

Rail keys: top-level zones by name (`package-0`, `psys`), sub-zones as `package-0/core`. The total
is the packages plus DRAM: core/uncore are inside their package, and psys (whole SoC platform)
overlaps the package; both are reported per rail only. A counter that went down wrapped once;
a window longer than range / power (~40 min at 100 W) could hide a second wrap.

Snapshot line in the log: `<zone> <name> <energy_uj> <max_energy_range_uj>` (`ERR` when unreadable).
"""

from __future__ import annotations

import os

from qbench.collectors.power import shell
from qbench.collectors.power.base import (
    POWER_SOURCES,
    CounterReading,
    PowerError,
    PowerLog,
    PowerSource,
    ProbeResult,
)
from qbench.collectors.power.counters import parse_counter_log, snapshot_reading
from qbench.collectors.power.logfmt import Skips, parse_number
from qbench.collectors.power.probe import did_not_run, from_lines, probe_lines

UJ = 1e-6
POWERCAP = "/sys/class/powercap"


def rail_keys(zones: dict[str, str]) -> dict[str, str]:
    """zone id -> rail key: `intel-rapl:0` -> `package-0`, `intel-rapl:0:1` -> `package-0/uncore`."""
    keys = {}
    for zone, name in zones.items():
        parent = zone.rsplit(":", 1)[0] if zone.count(":") >= 2 else None
        keys[zone] = f"{zones[parent]}/{name}" if parent in zones else name
    return keys


def total_rails(keys: list[str]) -> list[str]:
    return [k for k in keys if ("/" not in k and k.startswith("package")) or k.rsplit("/", 1)[-1] == "dram"]


def parse_rapl_lines(lines: list[str], skips: Skips) -> tuple[dict[str, float], dict[str, float]]:
    """energy and wrap range in joules per rail key, from `<zone> <name> <energy_uj> <max_uj>` lines."""
    zones: dict[str, tuple[str, float, float]] = {}
    for line in lines:
        tok = line.split()
        nums = [parse_number(x) for x in tok[2:4]]
        if len(tok) != 4 or not tok[0].startswith("intel-rapl:") or None in nums or min(nums) < 0:
            skips.add(line, "expected <zone> <name> <energy_uj> <max_energy_range_uj>")
            continue
        zones[tok[0]] = (tok[1], nums[0], nums[1])
    keys = rail_keys({z: v[0] for z, v in zones.items()})
    energy = {keys[z]: v[1] * UJ for z, v in zones.items()}
    wrap = {keys[z]: v[2] * UJ for z, v in zones.items() if v[2] > 0}
    return energy, wrap


@POWER_SOURCES.register("rapl")
class Rapl(PowerSource):
    name = "rapl"
    kind = "counter"
    note = (
        "Linux RAPL (Intel, AMD): CPU package and DRAM energy counters, not the whole machine (no "
        "disks, fans, PSU losses). Readable by root only since Linux 5.10. A model estimate, good "
        "for comparisons on one machine."
    )

    def __init__(self, root: str = POWERCAP):
        self.root = root.rstrip("/")

    def _glob(self) -> str:
        return f"{shell.q(self.root)}/intel-rapl:*"

    def probe_command(self) -> str:
        p = shell.PROBE_PREFIX
        return (
            f'qb_f=0; for z in {self._glob()}; do [ -e "$z/energy_uj" ] || continue; qb_f=1; '
            f'if cat "$z/energy_uj" > /dev/null 2>&1; then echo "{p} ok $z"; '
            f'else echo "{p} denied $z/energy_uj"; fi; done; '
            f'[ "$qb_f" = 1 ] || echo "{p} missing {self.root}/intel-rapl:*/energy_uj"'
        )

    def parse_probe(self, stdout: str, returncode: int = 0, stderr: str = "") -> ProbeResult:
        lines = probe_lines(stdout)
        if not lines:
            return did_not_run(returncode, stderr)
        return from_lines(lines, hint="energy_uj is root-only since Linux 5.10")

    def start_command(self, log_path: str, period_s: float = 0.1, max_seconds: float = 3600.0) -> str:
        return shell.start_counter_log(log_path, self.name)

    def mark_command(self, log_path: str, label: str) -> str:
        body = (
            f'for z in {self._glob()}; do [ -e "$z/energy_uj" ] || continue; qb_n=; qb_e=; qb_m=; '
            f'read -r qb_n < "$z/name"; read -r qb_e 2>/dev/null < "$z/energy_uj" || qb_e=ERR; '
            f'read -r qb_m < "$z/max_energy_range_uj"; echo "${{z##*/}} $qb_n $qb_e $qb_m"; done'
        )
        return shell.snapshot(log_path, label, body)

    def stop_command(self, log_path: str) -> str:
        return ":"

    def parse_log(self, text: str) -> PowerLog:
        def read(snap, skips):
            energy, wrap = parse_rapl_lines(snap.lines, skips)
            if not energy:
                return None
            return snapshot_reading(snap, energy, wrap_j=wrap, step_j=UJ * len(total_rails(list(energy))))

        log, _ = parse_counter_log(self.name, text, read, unreadable="zone")
        keys = sorted(set().union(*(r.energy_j for r in log.readings))) if log.readings else []
        log.total_rails = total_rails(keys)
        if any(k.split("/")[-1] == "psys" for k in keys):
            log.notes.append("psys (whole platform) is reported per rail, not added to the package total")
        return log


def read_rapl_host(root: str = POWERCAP, label: str | None = None) -> CounterReading:
    """Read this machine's RAPL zones now. Raises PowerError saying what is missing or denied."""
    import time

    try:
        entries = sorted(e for e in os.listdir(root) if e.startswith("intel-rapl:"))
    except FileNotFoundError:
        raise PowerError(f"{root} not found (no powercap support on this machine)") from None
    except PermissionError:
        raise PowerError(f"permission denied on {root}") from None
    lines = []
    t0 = time.time()
    for zone in entries:
        path = os.path.join(root, zone)
        if not os.path.exists(os.path.join(path, "energy_uj")):
            continue
        vals = []
        for leaf in ("name", "energy_uj", "max_energy_range_uj"):
            f = os.path.join(path, leaf)
            try:
                with open(f) as fh:
                    vals.append(fh.read().strip())
            except PermissionError:
                raise PowerError(
                    f"permission denied on {f} (energy_uj is root-only since Linux 5.10)"
                ) from None
        lines.append(f"{zone} {' '.join(vals)}")
    t1 = time.time()
    if not lines:
        raise PowerError(f"{root}/intel-rapl:*/energy_uj not found (no RAPL zones on this machine)")
    skips = Skips()
    energy, wrap = parse_rapl_lines(lines, skips)
    if skips.count:
        raise PowerError(f"unreadable RAPL zone: {skips.examples[0]}")
    return CounterReading(
        t_s=(t0 + t1) / 2,
        energy_j=energy,
        wrap_j=wrap,
        label=label,
        width_s=t1 - t0,
        step_j=UJ * len(total_rails(list(energy))),
    )
