"""Pick the runner for a device: the native runner when one exists or can be built, else Python.

`benchmark.runner` in the suite (or the profile's `runner.kind`) forces a choice; `auto` prefers
native because it carries no interpreter overhead and is what runs on phones.
"""

from __future__ import annotations

from qbench.devices.base import Device
from qbench.devices.profiles import DeviceProfile
from qbench.devices.transports import transport_of
from qbench.errors import CellError
from qbench.runners.base import Runner


def select_runner(device: Device, profile: DeviceProfile, suite_choice: str = "auto") -> tuple[Runner, str]:
    """Return (runner, why) — the reason is recorded so a reader knows which runner measured what."""
    from qbench.runners.python_launch import PythonRunner

    choice = suite_choice if suite_choice != "auto" else profile.runner.kind
    if choice in ("auto", "native"):
        native, reason = _native(device, profile)
        if native is not None:
            return native, reason
        if choice == "native":
            raise CellError("runner", f"native runner unavailable for {device.name}: {reason}")
        return PythonRunner(_interpreter(profile)), f"python ({reason})"
    return PythonRunner(_interpreter(profile)), "python (asked for)"


def _interpreter(profile: DeviceProfile) -> str | None:
    """The profile's interpreter on a remote device; None on this machine (the one running qbench)."""
    return None if transport_of(profile).local else profile.runner.python


def _native(device: Device, profile: DeviceProfile):
    try:
        from qbench.runners.native_runner import NativeRunner
    except ImportError:
        return None, "the native runner is not part of this install"
    return NativeRunner.for_device(device, profile)
