"""Device transports are a registry: each kind brings its profile keys, open, the doctor's reachability
fix, its runner target and discovery, and a kind registered from outside works with no other edit."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from qbench.devices.discovery import discover
from qbench.devices.host import HostDevice
from qbench.devices.profiles import DeviceProfile, load_profile, open_device
from qbench.devices.transports import (ABI_TARGETS, RUNNER_TARGETS, TRANSPORTS, AdbConfig, HostConfig, SshConfig,
                                       Transport)
from qbench.errors import SuiteError
from qbench.pipeline.doctor import check_device
from qbench.runners import native_build
from qbench.runners.native_runner import NativeRunner
from qbench.suite.schema import Strict
from tests.helpers import qbench

BUNDLED = Path(__file__).resolve().parents[2] / "device_profiles"


class LoopConfig(Strict):
    workdir: str | None = None


class LoopTransport(Transport):
    """A made-up kind: this machine reached 'some other way', with its own fix and discovery."""

    name, config, fixed_target = "loop", LoopConfig, "host"

    def open(self, name, cfg):
        if cfg.workdir == "/nonexistent/unreachable":
            raise ConnectionError("loop: nobody home")
        return HostDevice(name, Path(cfg.workdir) if cfg.workdir else None)

    def reach_fix(self, name, cfg):
        return f"plug {name} into the loop"

    def discover(self, profiles, timeout):
        return [{"name": "loop0", "transport": "loop", "address": None, "state": "ok", "summary": "found by loop"}]


@pytest.fixture
def loop(monkeypatch):
    monkeypatch.setitem(TRANSPORTS._items, "loop", LoopTransport())
    return TRANSPORTS.get("loop")


def test_an_unknown_transport_names_the_file_line_and_the_registered_choices(tmp_path):
    (tmp_path / "device_profiles").mkdir()
    (tmp_path / "device_profiles" / "odd.yaml").write_text("description: x\ntransport: usb\n")
    with pytest.raises(SuiteError) as err:
        load_profile("odd", tmp_path)
    assert "odd.yaml:2: transport: unknown device transport 'usb'; choose one of: adb, host, ssh" in str(err.value)


def test_every_bundled_profile_loads_and_its_transport_keys_are_that_transports_model():
    kinds = {"host": HostConfig, "adb": AdbConfig, "ssh": SshConfig}
    for path in sorted(BUNDLED.glob("*.yaml")):
        profile = load_profile(path.stem, BUNDLED.parent)
        assert type(profile.connection) is kinds[profile.transport], path.name
    pi = load_profile("rpi5", BUNDLED.parent)
    assert pi.connection.address == pi.address and pi.connection.workdir == pi.workdir


def test_each_transports_keys_are_profile_keys_with_the_same_default():
    """The YAML stays flat: a transport's config key is a top-level profile key, defaulting alike."""
    for name in TRANSPORTS.names():
        for key, field in TRANSPORTS.get(name).config.model_fields.items():
            assert key in DeviceProfile.model_fields, f"{name}: {key} is not a profile key"
            assert DeviceProfile.model_fields[key].default == field.default, f"{name}: {key}"


def test_runner_targets_are_one_list():
    assert native_build.TARGETS == RUNNER_TARGETS
    assert set(ABI_TARGETS.values()) <= set(RUNNER_TARGETS)
    assert native_build.build_command("linux-aarch64") == "qbench runner build --target linux-aarch64"
    assert native_build.build_command(None) == "qbench runner build"


def _string_literals(path: Path) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)}


def test_target_and_transport_names_are_spelled_in_one_place():
    """A runner target is named through devices/targets.py's constants, a transport only in devices/
    (its registry and device modules): nothing else branches on either name."""
    from qbench.devices.targets import ARM64_TARGETS, HOST_TARGET

    package = Path(native_build.__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package).as_posix()
        literals = _string_literals(path)
        if where != "devices/targets.py":
            assert not literals & set(ARM64_TARGETS), where
        if where.startswith("runners/") or where == "cli/tools.py":
            assert HOST_TARGET not in literals, where
        if not where.startswith("devices/"):
            assert not literals & {"adb", "ssh"}, where


def test_a_registered_kind_loads_opens_and_is_discovered_with_no_other_edit(tmp_path, loop):
    profile = DeviceProfile(name="lp", transport="loop", workdir=str(tmp_path / "w"))
    device = open_device(profile)
    assert isinstance(device, HostDevice) and device.workdir == str(tmp_path / "w")
    assert loop.runner_target(device) == "host"
    (tmp_path / "device_profiles").mkdir()
    rows = discover(tmp_path / "device_profiles", timeout=5, names=None)
    assert {"name": "loop0", "transport": "loop", "address": None, "state": "ok", "summary": "found by loop"} in rows


def test_the_doctor_takes_the_reachability_fix_from_the_transport(loop):
    profile = DeviceProfile(name="lp", transport="loop", workdir="/nonexistent/unreachable")
    [reach] = check_device(profile, run_model=False, stability_seconds=0)
    assert not reach.ok and reach.fix == "plug lp into the loop"
    ssh = DeviceProfile(name="pi", transport="ssh", address="pi.lab")
    assert TRANSPORTS.get("ssh").reach_fix(ssh.name, ssh.connection) == \
        "check `ssh pi.lab true` works (keys, ~/.ssh/config alias)"


def test_the_native_runner_target_comes_from_the_transport(tmp_path, loop, monkeypatch):
    monkeypatch.setattr(native_build, "find_runner", lambda target: tmp_path / f"runner-{target}")
    profile = DeviceProfile(name="lp", transport="loop", workdir=str(tmp_path / "w"))
    runner, why = NativeRunner.for_device(open_device(profile), profile)
    assert runner.binary == tmp_path / "runner-host" and why == "native (host, cached build)"


def test_the_schema_offers_the_registered_transports():
    out = qbench("schema", "device", timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["properties"]["transport"]["enum"] == ["adb", "host", "ssh"]
