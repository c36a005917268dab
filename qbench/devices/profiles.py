"""Device profiles: one YAML per device kind in device_profiles/ (host.yaml, pixel8.yaml, rpi5.yaml...).

A suite names profiles (`devices: [host, pixel8]`); `--device` overrides. Profiles are validated as
strictly as suites, with file:line in every error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import Field, PositiveInt, ValidationError, field_validator

from qbench.devices.transports import RUNNER_TARGETS, TRANSPORTS, transport_of
from qbench.errors import SuiteError
from qbench.registry import UnknownName
from qbench.suite.schema import CooldownSpec, Strict


class RunnerChoice(Strict):
    kind: Literal["auto", "python", "native"] = Field("auto", description="which runner measures on this "
                                                                           "device (auto: native where built)")
    target: Optional[Literal[RUNNER_TARGETS]] = Field(
        None, description="the native runner build for this device (`qbench runner build --target`)")
    binary: Optional[str] = Field(None, description="a prebuilt native runner for this device's ABI")
    python: str = Field("python3", description="interpreter on the device, for the Python runner")
    # Emulated latencies are not a Pi's: the launcher is recorded with the runner.
    launcher: list[str] = Field(
        default_factory=list, description="a command the native runner is started under on the device, "
                                          "e.g. [chrt, -f, '50'] or [qemu-aarch64, -cpu, cortex-a76]")


class PowerChoice(Strict):
    model_config = Strict.model_config | {"extra": "allow"}
    kind: str = Field("none", description="the power source: none, android-rails, android-battery, "
                                          "rpi5-pmic, rapl, external (its options are the other keys)")


# The transport's own keys (address, serial, user...) stay top-level so existing profiles load unchanged;
# `connection` is them validated by that transport's config model (qbench/devices/transports.py).
class DeviceProfile(Strict):
    name: str = Field(min_length=1, description="the device's name (default: the file's name)")
    description: Optional[str] = Field(None, description="free text, shown by `qbench devices`")
    # a str checked against the registry (not a Literal), so a transport registered later is valid too
    transport: str = Field("host", description="how qbench reaches the device",
                           json_schema_extra=lambda schema: schema.update(enum=TRANSPORTS.names()))
    address: Optional[str] = Field(None, description="adb: host:port for TCP; ssh: host or ~/.ssh/config alias")
    serial: Optional[str] = Field(None, description="adb: select a device by serial")
    adb_mode: Literal["server", "direct-tcp", "direct-usb"] = Field(
        "server", description="server: through the host's adb server; direct-*: adb-shell with ~/.android/adbkey")
    adb_server_port: Optional[int] = Field(None, description="a private adb server (default: adb's own, 5037)")
    user: Optional[str] = Field(None, description="ssh: the login user (default: ssh's)")
    port: Optional[int] = Field(None, description="ssh: the port (default: ssh's)")
    ssh_config: Optional[str] = Field(None, description="ssh: a config file to use instead of ~/.ssh/config")
    identity_file: Optional[str] = Field(None, description="ssh: a private key; adb direct modes: the adbkey")
    strict_host_key_checking: bool = Field(True, description="ssh: refuse hosts not in known_hosts")
    workdir: Optional[str] = Field(None, description="where runner and .pte files go on the device (default: "
                                                     "/tmp/qbench over ssh, /data/local/tmp/qbench over adb)")
    runner: RunnerChoice = Field(RunnerChoice(), description="the runner used on this device")
    threads: Union[PositiveInt, Literal["auto"], None] = Field(
        None, description="overrides the suite's benchmark.threads (auto: one per core of the affinity)")
    affinity: Union[list[int], Literal["little", "mid", "big", "prime"], None] = Field(
        None, description="e.g. the big cores of a phone: a core list, or a cluster by name")
    thermal_zones: Optional[list[str]] = Field(None, description="thermal zones to record (null: all the "
                                                                 "device exposes)")
    cooldown: Optional[CooldownSpec] = Field(None, description="overrides the suite's benchmark.cooldown")
    power: PowerChoice = Field(PowerChoice(), description="where energy figures come from")
    connect_retries: int = Field(2, ge=0, description="reconnect attempts before the device counts as lost")

    @field_validator("transport", mode="before")
    @classmethod
    def _known_transport(cls, value):
        if isinstance(value, str) and value not in TRANSPORTS:
            raise ValueError(str(UnknownName("device transport", value, TRANSPORTS.names())))
        return value

    @property
    def connection(self):
        """This transport's keys of the profile, as its config model (e.g. SshConfig)."""
        model = transport_of(self).config
        return model.model_validate({key: getattr(self, key) for key in model.model_fields})


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
    """Build the Device a profile describes (its transport imports the device module only now)."""
    return transport_of(profile).open(profile.name, profile.connection)
