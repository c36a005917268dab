"""What `qbench devices` shows: this host, what the adb server sees, and every configured profile."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from qbench.devices.base import DeviceInfo
from qbench.devices.transports import TRANSPORTS, transport_of


def one_line(info: DeviceInfo) -> str:
    parts = [info.model, info.soc, info.abi, info.os]
    if info.cores:
        top = max(info.max_freq_khz) / 1e6 if info.max_freq_khz else None
        parts.append(f"{info.cores} cores" + (f" ≤{top:.2f} GHz" if top else ""))
    if info.ram_bytes:
        parts.append(f"{info.ram_bytes / 2**30:.1f} GiB")
    if info.governor:
        parts.append(f"governor {info.governor}")
    return " · ".join(p for p in parts if p)


def _probe(profile, timeout: float) -> dict:
    from qbench.devices.profiles import open_device

    entry = {"name": profile.name, "transport": profile.transport,
             "address": profile.address or profile.serial, "state": "ok", "summary": ""}
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            device = open_device(profile)
            info = pool.submit(device.info).result(timeout=timeout)
            entry["summary"], entry["info"] = one_line(info), info.__dict__
            device.close()
        except FutureTimeout:
            entry["state"], entry["summary"] = "unreachable", f"no answer within {timeout:g} s"
        except Exception as exc:  # discovery reports every device, reachable or not
            entry["state"], entry["summary"] = "unreachable", str(exc).splitlines()[0][:160]
    return entry


def discover(profiles_dir: Path | None = None, timeout: float = 10.0, names: list[str] | None = None) -> list[dict]:
    """Every profile (and unconfigured adb devices); with `names`, only those profiles (unknown -> SuiteError)."""
    from qbench.devices.profiles import available_profiles, load_profile

    from qbench.errors import SuiteError

    base = profiles_dir.parent if profiles_dir else None
    profiles, invalid = [], []
    for name in (names or available_profiles(base)):
        try:
            profiles.append(load_profile(name, base))
        except SuiteError as exc:  # one broken file must not hide the other devices
            lines = str(exc).splitlines()
            invalid.append({"name": name, "transport": "?", "address": None, "state": "invalid profile",
                            "summary": (lines[1] if len(lines) > 1 else lines[0]).strip()})
    found = [_probe(p, timeout) for p in profiles if transport_of(p).local]
    found += [_probe(p, timeout) for p in profiles if not transport_of(p).local]
    if not names:  # each transport adds the devices it sees that no profile names
        for name in TRANSPORTS.names():
            found += TRANSPORTS.get(name).discover(profiles, timeout)
    return found + invalid
