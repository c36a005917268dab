"""Starting qbench's native C++ runner (native/qbench_runner.cpp) on a device.

The same program runs on the host, a Pi and a phone, so their numbers carry no interpreter
overhead and are comparable. Where it comes from, in order: the profile's prebuilt `runner.binary`,
the build cache for the device's target, or (host only) a build made now.
"""

from __future__ import annotations

from pathlib import Path

from qbench.devices.base import Device
from qbench.devices.profiles import DeviceProfile
from qbench.runners.base import Runner, TrialSettings

# what a device reports as its ABI -> the build target that runs there
ABI_TARGETS = {"arm64-v8a": "android-arm64-v8a", "aarch64": "linux-aarch64", "x86_64": "host"}


class NativeRunner(Runner):
    name = "native"

    def __init__(self, binary: Path, launcher: list[str] | tuple[str, ...] = ()):
        self.binary = Path(binary)
        self.launcher = list(launcher)
        self._remote: str | None = None

    @classmethod
    def for_device(cls, device: Device, profile: DeviceProfile) -> tuple["NativeRunner | None", str]:
        runner, why = cls._find(device, profile)
        if runner is not None and profile.runner.launcher:
            runner.launcher = list(profile.runner.launcher)
            why += f" under {' '.join(profile.runner.launcher)}"
        return runner, why

    @classmethod
    def _find(cls, device: Device, profile: DeviceProfile) -> tuple["NativeRunner | None", str]:
        from qbench.runners import native_build

        if profile.runner.binary:
            path = Path(profile.runner.binary).expanduser()
            if not path.is_file():
                return None, f"runner.binary {path} does not exist"
            return cls(path), f"native (prebuilt {path})"
        target = profile.runner.target or ("host" if device.transport == "host" else _target_for(device))
        if target is None:
            return None, "unknown device ABI; set runner.target or runner.binary in the profile"
        found = native_build.find_runner(target)
        if found is not None:
            return cls(found), f"native ({target}, cached build)"
        if target != "host":
            return None, (f"no native runner for {target}: build one with `qbench runner build --target {target}` "
                          "or set runner.binary in the device profile")
        ok, why = native_build.can_build()
        if not ok:
            return None, f"cannot build the native runner here: {why}"
        try:
            return cls(native_build.build_runner("host")), "native (host, built now)"
        except Exception as exc:  # a failed build falls back to Python; the reason is recorded
            return None, f"native runner build failed: {str(exc).splitlines()[0] if str(exc) else exc}"

    def setup(self, device: Device) -> None:
        # a build folder carries the ExecuTorch shared libraries beside the binary (RUNPATH=$ORIGIN)
        for lib in sorted(self.binary.parent.glob("*.so*")):
            device.push(lib, lib.name)
        self._remote = device.push(self.binary, "qbench_runner")

    def argv(self, program, settings: TrialSettings, inputs=None, outputs=None, etdump=None) -> list[str]:
        argv = [*self.launcher, self._remote, "--model", program, *settings.flags()]
        for flag, value in (("--inputs", inputs), ("--outputs", outputs), ("--etdump", etdump)):
            if value:
                argv += [flag, value]
        return argv


def _target_for(device: Device) -> str | None:
    try:
        abi = device.info().abi
    except Exception:
        return None
    return ABI_TARGETS.get(abi or "")
