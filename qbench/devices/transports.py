"""How qbench reaches a device, one registered transport per kind (host, adb, ssh).

A transport brings what differs between kinds: the profile keys it reads (its `config` model), how a
Device is opened from them, the doctor's advice when the device cannot be reached, which native-runner
build runs there, and devices it can find that no profile names yet. Nothing else in qbench branches on
the transport's name; a new kind is one class here (see docs/architecture.md, "Adding a device kind").
Device modules are imported only when a device of that kind is opened.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import ClassVar, Literal, Optional

# the native runner's builds and the device ABI each one runs on (RUNNER_TARGETS re-exported here)
from qbench.devices.targets import ABI_TARGETS, HOST_TARGET, RUNNER_TARGETS  # noqa: F401
from qbench.registry import Registry
from qbench.suite.schema import Strict


class Transport:
    name: ClassVar[str]
    config: ClassVar[type[Strict]]  # the profile keys this transport reads (they are top-level keys)
    local: ClassVar[bool] = False  # the device is this machine: its interpreter and files are ours
    fixed_target: ClassVar[Optional[str]] = None  # the runner build, when it does not depend on the ABI

    def open(self, name: str, cfg):
        """The Device the profile `name` with this transport's `cfg` describes."""
        raise NotImplementedError

    def reach_fix(self, name: str, cfg) -> str:
        """What the user does when the device cannot be reached (the doctor's fix line)."""
        return "check the profile"

    def runner_target(self, device) -> Optional[str]:
        """The native-runner build for this device: fixed, or by the ABI it reports (None: unknown)."""
        if self.fixed_target:
            return self.fixed_target
        try:
            abi = device.info().abi
        except Exception:
            return None
        return ABI_TARGETS.get(abi or "")

    def discover(self, profiles: list, timeout: float) -> list[dict]:
        """Devices of this kind that no profile names (rows for `qbench devices`)."""
        return []


TRANSPORTS: Registry[Transport] = Registry("device transport")


def transport_of(profile) -> Transport:
    return TRANSPORTS.get(profile.transport)


def is_local(transport: str) -> bool:
    """Whether a device reached this way is this machine (its cores, interpreter and files are ours)."""
    return TRANSPORTS.get(transport).local


# ------------------------------------------------------------------ host


class HostConfig(Strict):
    workdir: Optional[str] = None


class HostTransport(Transport):
    name, config, local, fixed_target = "host", HostConfig, True, HOST_TARGET

    def open(self, name, cfg):
        from qbench.devices.host import HostDevice

        return HostDevice(name, Path(cfg.workdir) if cfg.workdir else None)


# ------------------------------------------------------------------ adb


class AdbConfig(Strict):
    address: Optional[str] = None
    serial: Optional[str] = None
    adb_mode: Literal["server", "direct-tcp", "direct-usb"] = "server"
    adb_server_port: Optional[int] = None
    identity_file: Optional[str] = None
    workdir: Optional[str] = None


class AdbTransport(Transport):
    name, config = "adb", AdbConfig

    def open(self, name, cfg):
        from qbench.devices.adb import AdbDevice

        return AdbDevice(
            name, serial=cfg.serial, address=cfg.address, mode=cfg.adb_mode,
            workdir=cfg.workdir or "/data/local/tmp/qbench",
            adbkey=Path(cfg.identity_file).expanduser() if cfg.identity_file else None,
            server_port=cfg.adb_server_port,
        )

    def reach_fix(self, name, cfg):
        return ("enable USB debugging, plug the phone in, accept the RSA prompt (`adb devices` shows it as `device`), "
                "and set serial: or address: in the profile")

    def discover(self, profiles, timeout):
        if not shutil.which("adb"):
            return []
        from qbench.devices.adb_transport import list_adb_devices

        try:
            configured = {p.serial for p in profiles if p.serial}
            return [{"name": d["serial"], "transport": "adb", "address": d["serial"],
                     "state": d["state"] if d["state"] != "device" else "ok",
                     "summary": f"{d.get('model') or ''} (no profile: copy device_profiles/pixel8.yaml)"}
                    for d in list_adb_devices(timeout=timeout) if d["serial"] not in configured]
        except Exception as exc:
            return [{"name": "adb", "transport": "adb", "address": None, "state": "error",
                     "summary": str(exc).splitlines()[0]}]


# ------------------------------------------------------------------ ssh


class SshConfig(Strict):
    address: Optional[str] = None
    user: Optional[str] = None
    port: Optional[int] = None
    ssh_config: Optional[str] = None
    identity_file: Optional[str] = None
    strict_host_key_checking: bool = True
    workdir: Optional[str] = None


class SshTransport(Transport):
    name, config = "ssh", SshConfig

    def open(self, name, cfg):
        from qbench.devices.ssh import SshDevice

        return SshDevice(
            name, cfg.address or name, user=cfg.user, port=cfg.port,
            ssh_config=Path(cfg.ssh_config).expanduser() if cfg.ssh_config else None,
            identity_file=cfg.identity_file, strict_host_key_checking=cfg.strict_host_key_checking,
            workdir=cfg.workdir or "/tmp/qbench",
        )

    def reach_fix(self, name, cfg):
        return f"check `ssh {shlex.quote(cfg.address or name)} true` works (keys, ~/.ssh/config alias)"


# built-ins register the way a plugin's transport would
for _transport in (HostTransport(), AdbTransport(), SshTransport()):
    TRANSPORTS.register(_transport.name)(_transport)
