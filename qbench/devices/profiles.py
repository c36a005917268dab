"""Device profiles: one YAML per device kind in device_profiles/ (host.yaml, pixel8.yaml, rpi5.yaml...).

A suite names profiles (`devices: [host, pixel8]`); `--device` overrides. Profiles are validated as
strictly as suites, with file:line in every error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import Field, PositiveInt, ValidationError

from qbench.errors import SuiteError
from qbench.suite.schema import CooldownSpec, Strict


class RunnerChoice(Strict):
    kind: Literal["auto", "python", "native"] = "auto"
    target: Optional[Literal["host", "linux-aarch64", "android-arm64-v8a"]] = None
    binary: Optional[str] = None  # a prebuilt native runner for this device's ABI
    python: str = "python3"  # interpreter on the device, for the Python runner
    # A command the native runner is started under on the device, e.g. [chrt, -f, "50"] for a
    # real-time class, or [qemu-aarch64, -cpu, cortex-a76, -L, /usr/aarch64-linux-gnu] to try a Pi
    # build on an x86 box. Recorded with the runner; emulated latencies are not a Pi's.
    launcher: list[str] = Field(default_factory=list)


class PowerChoice(Strict):
    model_config = Strict.model_config | {"extra": "allow"}
    kind: str = "none"


class DeviceProfile(Strict):
    name: str = Field(min_length=1)
    description: Optional[str] = None
    transport: Literal["host", "adb", "ssh"] = "host"
    address: Optional[str] = None  # adb: host:port for TCP; ssh: host or ~/.ssh/config alias
    serial: Optional[str] = None  # adb: select a device by serial
    adb_mode: Literal["server", "direct-tcp", "direct-usb"] = "server"
    adb_server_port: Optional[int] = None  # a private adb server (default: adb's own, 5037)
    user: Optional[str] = None
    port: Optional[int] = None
    ssh_config: Optional[str] = None
    identity_file: Optional[str] = None
    strict_host_key_checking: bool = True
    workdir: Optional[str] = None
    runner: RunnerChoice = RunnerChoice()
    threads: Union[PositiveInt, Literal["auto"], None] = None  # overrides the suite's benchmark.threads
    # e.g. the big cores of a phone: a core list, or a cluster by name (devices/clusters.py)
    affinity: Union[list[int], Literal["little", "mid", "big", "prime"], None] = None
    thermal_zones: Optional[list[str]] = None  # None = all zones the device exposes
    cooldown: Optional[CooldownSpec] = None
    power: PowerChoice = PowerChoice()
    connect_retries: int = Field(2, ge=0)


BUILTIN_HOST = DeviceProfile(name="host", transport="host", description="this machine")


def profile_dirs(suite_dir: Path | None) -> list[Path]:
    """Where profiles are looked for, first match wins: $QBENCH_PROFILES, then device_profiles/ beside
    or above the suite (or the current folder), then the profiles bundled with qbench."""
    from qbench.bundled import profiles_dir

    dirs = [Path(p) for p in os.environ.get("QBENCH_PROFILES", "").split(os.pathsep) if p]
    here = (suite_dir or Path.cwd()).resolve()
    for parent in [here, *here.parents]:
        if (parent / "device_profiles").is_dir():
            dirs.append(parent / "device_profiles")
            break
    bundled = profiles_dir()
    if bundled is not None and bundled.resolve() not in {d.resolve() for d in dirs}:
        dirs.append(bundled)
    return dirs


def find_profile_file(name: str, suite_dir: Path | None) -> Path | None:
    for d in profile_dirs(suite_dir):
        candidate = d / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    return None


def available_profiles(suite_dir: Path | None) -> list[str]:
    names = {"host"}
    for d in profile_dirs(suite_dir):
        names.update(p.stem for p in d.glob("*.yaml"))
    return sorted(names)


def load_profile(name: str, suite_dir: Path | None = None) -> DeviceProfile:
    from qbench.suite.loader import Problems, load_yaml

    path = find_profile_file(name, suite_dir)
    if path is None:
        if name == "host":
            return BUILTIN_HOST
        raise SuiteError(
            f"no device profile {name!r}; known: {', '.join(available_profiles(suite_dir))} "
            f"(profiles are device_profiles/NAME.yaml beside the suite, or in $QBENCH_PROFILES; "
            f"`qbench init --device NAME` copies a bundled one here)"
        )
    data, root = load_yaml(path)
    if not isinstance(data, dict):
        raise SuiteError(f"{path}:1: a device profile is a mapping")
    data.setdefault("name", name)
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as exc:
        problems = Problems(path, root)
        problems.add_validation_error(exc, DeviceProfile)
        problems.raise_if_any(f"{path}: invalid device profile")
        raise AssertionError("unreachable")


def open_device(profile: DeviceProfile, suite_dir: Path | None = None):
    """Build the Device a profile describes (transports are imported only when used)."""
    if profile.transport == "host":
        from qbench.devices.host import HostDevice

        return HostDevice(profile.name, Path(profile.workdir) if profile.workdir else None)
    if profile.transport == "ssh":
        from qbench.devices.ssh import SshDevice

        return SshDevice(
            profile.name, profile.address or profile.name, user=profile.user, port=profile.port,
            ssh_config=Path(profile.ssh_config).expanduser() if profile.ssh_config else None,
            identity_file=profile.identity_file, strict_host_key_checking=profile.strict_host_key_checking,
            workdir=profile.workdir or "/tmp/qbench",
        )
    if profile.transport == "adb":
        from qbench.devices.adb import AdbDevice

        return AdbDevice(
            profile.name, serial=profile.serial, address=profile.address, mode=profile.adb_mode,
            workdir=profile.workdir or "/data/local/tmp/qbench",
            adbkey=Path(profile.identity_file).expanduser() if profile.identity_file else None,
            server_port=profile.adb_server_port,
        )
    raise SuiteError(f"device {profile.name!r}: unknown transport {profile.transport!r}")
