"""Starting qbench's native C++ runner (native/qbench_runner.cpp) on a device.

The same program runs on the host, a Pi and a phone, so their numbers carry no interpreter
overhead and are comparable. Where it comes from, in order: the profile's prebuilt `runner.binary`,
the build cache for the device's target, or (host only) a build made now.
"""

from __future__ import annotations

from pathlib import Path

from qbench.devices.base import Device
from qbench.devices.profiles import DeviceProfile
from qbench.devices.targets import ANDROID_ARM64, ARM64_ABIS, ARM64_TARGETS, HOST_TARGET
from qbench.devices.transports import transport_of
from qbench.runners.base import Runner, TrialSettings



class NativeRunner(Runner):
    name = "native"

    def __init__(self, binary: Path, launcher: list[str] | tuple[str, ...] = (), flavour: str | None = None):
        from qbench.runners.bundle import is_bundle

        self.binary = Path(binary)
        self.launcher = list(launcher)
        self._remote: str | None = None
        # a glibc bundle (bundle.py) starts through its own loader; recorded on every cell it measures
        self.bundled = is_bundle(self.binary)
        self.flavour = flavour or ("android-bundle" if self.bundled else "native")

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
            return cls(path, flavour="prebuilt"), f"native (prebuilt {path})"
        target = profile.runner.target or transport_of(profile).runner_target(device)
        if target is None:
            return None, "unknown device ABI; set runner.target or runner.binary in the profile"
        if not profile.runner.launcher:  # under an emulator (launcher) any host may run ARM code
            check_abi(device, target)
        flavour = _flavour(target)
        found = native_build.find_runner(target)
        if found is not None:
            return cls(found, flavour=flavour), f"native ({_describe(target, flavour)}, cached build)"
        if flavour == "android-bundle":  # no NDK needed: build it now when the cross compiler is here
            try:
                return cls(native_build.build_runner(target), flavour=flavour), f"native ({_describe(target, flavour)}, built now)"
            except Exception as exc:
                return None, f"no native runner for {target}: {str(exc).splitlines()[0] if str(exc) else exc}"
        if target != HOST_TARGET:
            return None, (f"no native runner for {target}: build one with `qbench runner build --target {target}` "
                          "or set runner.binary in the device profile")
        ok, why = native_build.can_build()
        if not ok:
            return None, f"cannot build the native runner here: {why}"
        try:
            built = native_build.build_runner(HOST_TARGET)
            return cls(built, flavour=HOST_TARGET), f"native ({HOST_TARGET}, built now)"
        except Exception as exc:  # a failed build falls back to Python; the reason is recorded
            return None, f"native runner build failed: {str(exc).splitlines()[0] if str(exc) else exc}"

    def setup(self, device: Device) -> None:
        if self.bundled:
            from qbench.runners.bundle import check_bundle

            check_bundle(self.binary.parent)  # a missing library fails here, naming it, not on the phone
        # a build folder carries the ExecuTorch shared libraries beside the binary (RUNPATH=$ORIGIN)
        for lib in sorted(self.binary.parent.glob("*.so*")):
            device.push(lib, lib.name)
        self._remote = device.push(self.binary, "qbench_runner")

    def parse(self, result, settings: TrialSettings) -> dict:
        if result.returncode in (126, 127) and "permission denied" in result.stderr.lower():
            from qbench.errors import CellError

            raise CellError("run", f"cannot start the runner ({result.last_error_line()}): the device's workdir does "
                                   "not allow executing programs (mounted noexec?); set the profile's workdir to one "
                                   "that does, e.g. /data/local/tmp/qbench on a phone")
        return super().parse(result, settings)

    def start_argv(self) -> list[str]:
        """The command that starts the runner on the device (before its flags)."""
        if not self.bundled:
            return [*self.launcher, self._remote]
        from qbench.runners.bundle import launch_argv

        return [*self.launcher, *launch_argv(self._remote.rsplit("/", 1)[0] if "/" in self._remote else ".")]

    def argv(self, program, settings: TrialSettings, inputs=None, outputs=None, etdump=None) -> list[str]:
        argv = [*self.start_argv(), "--model", program, *settings.flags()]
        for flag, value in (("--inputs", inputs), ("--outputs", outputs), ("--etdump", etdump)):
            if value:
                argv += [flag, value]
        return argv


def check_abi(device: Device, target: str) -> None:
    """An ARM build on a device that is not arm64 fails with the cause, before anything is pushed."""
    from qbench.errors import DeviceError

    if target not in ARM64_TARGETS:
        return
    try:
        info = device.info()
    except Exception:
        return  # reachability is reported elsewhere
    abis = [a for a in (info.abi, *str(info.extra.get("abilist", "")).split(",")) if a]
    if abis and not any(a.strip() in ARM64_ABIS for a in abis):
        raise DeviceError(device.name, f"its ABI is {info.abi}, not arm64: the {target} runner cannot run there. "
                                       f"Use a profile whose runner.target matches (host for x86_64), or "
                                       f"runner.kind: python")


def _flavour(target: str) -> str:
    from qbench.runners import native_build

    if target == ANDROID_ARM64:
        return "android-" + native_build.android_flavour()
    return target


def _describe(target: str, flavour: str) -> str:
    return {"android-bundle": f"{target} bundle: glibc loader, no NDK",
            "android-ndk": f"{target} NDK build"}.get(flavour, target)

