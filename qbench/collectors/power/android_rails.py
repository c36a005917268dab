"""`android-rails`: the Pixel on-device power monitor (ODPM), per-rail energy read at window edges.

Formats, as the Pixel power stats HAL parses and prints them (hardware/google/pixel
powerstats/dataproviders/IioEnergyMeterDataProvider.cpp and powerstats/PowerStatsAidl.cpp):

* `/sys/bus/iio/devices/iio:deviceN/energy_value`: first line `t=<ms since boot>`, then one line per
  channel `CH3(T=358356)[S2M_VDD_CPUCL2], 761330`: cumulative energy in microwatt-seconds (uWs).
  Pixel 6 and later have two such PMIC devices with 8 channels each.
* `enabled_rails`: `CH2[VSYS_PWR_RFFE]:Cellular` per line (rail name and subsystem).
* `dumpsys android.hardware.power.stats.IPowerStats/default`: an "energy meter" section with lines
  `  <%32s [RAIL]:Subsystem>   <%14.2f> mWs` (milliwatt-seconds, printed from a 32-bit float, so
  large counters lose precision: ~4 mWs steps at 5e7 mWs). With the `delta` argument each line also
  has `(<delta>)`. The section also lists nothing when the device has no ODPM.

Reading energy_value usually needs `adb root` on user builds; dumpsys works from the adb shell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from qbench.collectors.power import shell
from qbench.collectors.power.base import POWER_SOURCES, CounterReading, PowerLog, PowerSource, ProbeResult
from qbench.collectors.power.counters import parse_counter_log, snapshot_reading
from qbench.collectors.power.logfmt import Skips, scan
from qbench.collectors.power.probe import did_not_run, from_lines, probe_lines

UWS = 1e-6  # joules per microwatt-second
DUMPSYS_SERVICE = "android.hardware.power.stats.IPowerStats/default"
_CHANNEL = re.compile(r"^CH(\d+)\(T=(\d+)\)\[([^\]]{1,50})\],\s*(\d+)\s*$")
_TIME = re.compile(r"^t=(\d+)\s*$")
_ENABLED = re.compile(r"^CH(\d+)\[([^\]]+)\]:(.*)$")
_METER_START = "PowerStats HAL 2.0 energy meter"
_METER_END = "End of PowerStats HAL 2.0 energy meter"
_DUMPSYS_LINE = re.compile(
    r"^\s*\[([^\]]+)\]:(.*?)\s+(\d+(?:\.\d+)?)\s+mWs(?:\s+\(\s*-?\d+(?:\.\d+)?\))?\s*$"
)


@dataclass
class EnergyValue:
    t_ms: int | None
    rails_uws: dict[str, int] = field(default_factory=dict)
    skips: Skips = field(default_factory=Skips)


def parse_energy_value(text: str, skips: Skips | None = None) -> EnergyValue:
    """One energy_value read. As in the HAL, the `t=` line must come first."""
    out = EnergyValue(None, skips=skips or Skips())
    for line in text.splitlines():
        if not line.strip():
            continue
        if out.t_ms is None:
            m = _TIME.match(line.strip())
            if m:
                out.t_ms = int(m.group(1))
            else:
                out.skips.add(line, "energy_value must start with t=<ms>")
            continue
        m = _CHANNEL.match(line.strip())
        if not m:
            out.skips.add(line, "expected CHn(T=ms)[RAIL], uWs")
            continue
        rail = m.group(3)
        if rail in out.rails_uws:
            out.skips.add(line, f"rail {rail} appears twice")
            continue
        out.rails_uws[rail] = int(m.group(4))
    return out


def parse_enabled_rails(text: str, skips: Skips | None = None) -> dict[str, str]:
    """Rail name -> subsystem, from `enabled_rails`."""
    skips = skips or Skips()
    rails: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _ENABLED.match(line.strip())
        if m:
            rails[m.group(2)] = m.group(3).strip()
        else:
            skips.add(line, "expected CHn[RAIL]:Subsystem")
    return rails


def parse_dumpsys_energy_meter(text: str, skips: Skips | None = None) -> tuple[dict[str, float], bool]:
    """Rail -> cumulative mWs from the energy meter section; also whether that section was found."""
    skips = skips or Skips()
    rails: dict[str, float] = {}
    inside = found = False
    for line in text.splitlines():
        if _METER_END in line:
            inside = False
            continue
        if _METER_START in line:
            inside = found = True
            continue
        if not inside or not line.strip():
            continue
        if "Channel" in line and "Cumulative Energy" in line:
            continue  # the column header (delta mode glues "Elapsed time: N ms" in front of it)
        m = _DUMPSYS_LINE.match(line)
        if m:
            rails[m.group(1)] = float(m.group(3))
        else:
            skips.add(line, "expected [RAIL]:Subsystem  <mWs> mWs")
    return rails, found


def dumpsys_step_mws(value_mws: float) -> float:
    """Quantization of one printed value: the float32 spacing at that size, or the 0.01 printed."""
    return max(float(np.spacing(np.float32(value_mws))), 0.01)


@POWER_SOURCES.register("android-rails")
class AndroidRails(PowerSource):
    name = "android-rails"
    kind = "counter"
    note = (
        "Pixel on-device power monitor (ODPM): energy of the enabled PMIC rails (16 on Pixel 6 and "
        "later: CPU clusters, GPU, TPU, memory, display, modem...), read at the window edges. It "
        "covers those rails only, not the whole phone, and the total is their sum (an LDO fed by a "
        "measured buck would count twice). energy_value usually needs `adb root`; method='dumpsys' "
        "works from the shell but rounds to 32-bit floats."
    )

    def __init__(self, method: str = "sysfs", iio_root: str = "/sys/bus/iio/devices"):
        if method not in ("sysfs", "dumpsys"):
            raise ValueError(f"method must be sysfs or dumpsys, not {method!r}")
        self.method = method
        self.iio_root = iio_root.rstrip("/")

    def _devices_glob(self) -> str:
        return f"{shell.q(self.iio_root)}/iio:device*"

    def probe_command(self) -> str:
        p = shell.PROBE_PREFIX
        if self.method == "dumpsys":
            return (
                f'if ! command -v dumpsys > /dev/null 2>&1; then echo "{p} nocmd dumpsys"; '
                f'else echo "{p} ran"; dumpsys {DUMPSYS_SERVICE} 2>&1; fi'
            )
        return (
            f'qb_f=0; for d in {self._devices_glob()}; do [ -e "$d/energy_value" ] || continue; qb_f=1; '
            f'if cat "$d/energy_value" > /dev/null 2>&1; then echo "{p} ok $d"; '
            f'echo "{p} rails ${{d##*/}}"; cat "$d/enabled_rails" 2>/dev/null; '
            f'else echo "{p} denied $d/energy_value"; fi; done; '
            f'[ "$qb_f" = 1 ] || echo "{p} missing {self.iio_root}/iio:device*/energy_value"'
        )

    def parse_probe(self, stdout: str, returncode: int = 0, stderr: str = "") -> ProbeResult:
        lines = probe_lines(stdout)
        if not lines:
            return did_not_run(returncode, stderr)
        if self.method == "dumpsys":
            if any(s == "nocmd" for s, _ in lines):
                return from_lines(lines)
            if "Can't find service" in stdout:
                return ProbeResult(
                    False, f"power stats HAL not found (dumpsys {DUMPSYS_SERVICE}: Can't find service)"
                )
            rails, found = parse_dumpsys_energy_meter(stdout)
            if not found:
                return ProbeResult(False, "dumpsys printed no PowerStats energy meter section")
            if not rails:
                return ProbeResult(False, "the power stats HAL has no energy meter channels on this device")
            return ProbeResult(True, "ok", details={"rails": sorted(rails)})
        result = from_lines(lines, hint="ODPM energy_value usually needs `adb root`; or use method='dumpsys'")
        rails = parse_enabled_rails("\n".join(ln for ln in stdout.splitlines() if ln.startswith("CH")))
        if rails:
            result.details["rails"] = rails
        return result

    def start_command(self, log_path: str, period_s: float = 0.1, max_seconds: float = 3600.0) -> str:
        return shell.start_counter_log(log_path, self.name, f"method={self.method}")

    def _snapshot_body(self) -> str:
        if self.method == "dumpsys":
            return f"dumpsys {DUMPSYS_SERVICE}"
        return (
            f'for d in {self._devices_glob()}; do [ -e "$d/energy_value" ] || continue; '
            f'echo "# dev ${{d##*/}}"; cat "$d/energy_value"; done'
        )

    def mark_command(self, log_path: str, label: str) -> str:
        return shell.snapshot(log_path, label, self._snapshot_body())

    def stop_command(self, log_path: str) -> str:
        return ":"

    def parse_log(self, text: str) -> PowerLog:
        # The log's header names the method it was written with; that decides how to read it.
        method = scan(text).header.get("method", self.method)
        read = self._dumpsys_reading if method == "dumpsys" else self._sysfs_reading
        log, _ = parse_counter_log(self.name, text, read, unreadable="rail")
        log.details["method"] = method
        return log

    def _sysfs_reading(self, snap, skips: Skips) -> CounterReading | None:
        parts: list[list[str]] = []
        for line in snap.lines:
            if line.startswith("# dev"):
                parts.append([])
            elif parts:
                parts[-1].append(line)
            else:
                skips.add(line, "before any `# dev` line")
        rails: dict[str, float] = {}
        times = []
        for part in parts:
            ev = parse_energy_value("\n".join(part), skips)
            if ev.t_ms is None or not ev.rails_uws:
                continue
            times.append(ev.t_ms / 1e3)
            rails.update({r: v * UWS for r, v in ev.rails_uws.items()})
        if not rails:
            return None
        return snapshot_reading(snap, rails, device_t_s=sum(times) / len(times), step_j=UWS * len(rails), width_s=1e-3)

    def _dumpsys_reading(self, snap, skips: Skips) -> CounterReading | None:
        mws, _ = parse_dumpsys_energy_meter("\n".join(snap.lines), skips)
        if not mws:
            return None
        rails = {r: v * 1e-3 for r, v in mws.items()}
        step = sum(dumpsys_step_mws(v) for v in mws.values()) * 1e-3
        return snapshot_reading(snap, rails, step_j=step)
