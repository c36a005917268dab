"""`qbench doctor DEVICE` on this host, the emulated ARM phone (loopback ADB endpoint + the runner bundle
under qemu-aarch64) and the sshd board; and each ✗ case: unreachable, no space, a noexec workdir, a
cluster the device lacks, a non-arm64 phone, a bundle missing a library. Plus `qbench devices NAME`."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

from qbench.pipeline.doctor import check_device, ready
from qbench.devices.profiles import DeviceProfile
from tests.helpers import cli_env, free_port, qbench

pytestmark = pytest.mark.slow
ARM = shutil.which("aarch64-linux-gnu-g++") and shutil.which("qemu-aarch64")
needs_arm = pytest.mark.skipif(not ARM, reason="needs g++-aarch64-linux-gnu and qemu-user")
needs_adb = pytest.mark.skipif(shutil.which("adb") is None, reason="needs Debian's adb")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("doctor")
    (root / "home").mkdir()
    (root / "device_profiles").mkdir()
    env = {"HOME": str(root / "home"), "QEMU_LD_PREFIX": None}
    lab = {"root": root, "env": env, "port": free_port(), "daemons": []}
    yield lab
    subprocess.run(["adb", "-P", str(lab["port"]), "kill-server"], env=cli_env(env), capture_output=True)
    for d in lab["daemons"]:
        d.stop()


def profile(lab, name: str, text: str) -> str:
    (lab["root"] / "device_profiles" / f"{name}.yaml").write_text(textwrap.dedent(text))
    return name


def phone(lab, **props) -> str:
    from qbench.testing.adbd import AdbDaemon

    daemon = AdbDaemon(lab["root"] / f"phone-{uuid.uuid4().hex[:6]}", properties=props or None)
    daemon.start()
    lab["daemons"].append(daemon)
    return daemon.address


def doctor(lab, name: str, *extra) -> tuple[int, dict]:
    proc = qbench("doctor", name, "--json", *extra, env=lab["env"], cwd=lab["root"], timeout=900)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    return proc.returncode, {c["name"]: c for c in doc["checks"]} | {"_ready": doc["ready"]}


def test_host_is_ready_and_the_text_is_a_checklist(lab):
    proc = qbench("doctor", "host", env=lab["env"], cwd=lab["root"], timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[-1] == "host: ready to run a suite"
    assert all(ln[0] in "✓!" for ln in lines[:-1] if not ln.startswith("    ")), proc.stdout
    for name in ("reachable", "ABI", "CPU clusters", "governors", "thermal zones", "free space", "workdir executes",
                 "runner", "power source", "battery", "root", "clock stability"):
        assert any(ln[2:].startswith(name + ":") for ln in lines), name
    assert "outputs match the host's" in proc.stdout


@needs_adb
@needs_arm
def test_the_emulated_arm_phone_is_ready_with_the_bundle(lab):
    addr = phone(lab, **{"ro.product.model": "Pixel 8 (emulated)"})
    name = profile(lab, "arm-phone", f"""
        transport: adb
        adb_server_port: {lab['port']}
        address: {addr}
        runner: {{kind: native, target: android-arm64-v8a, launcher: [qemu-aarch64, -cpu, cortex-a76]}}
        """)
    code, checks = doctor(lab, name)
    assert code == 0 and checks["_ready"], checks
    assert "Pixel 8 (emulated)" in checks["reachable"]["detail"] and "arm64-v8a" in checks["ABI"]["detail"]
    assert checks["runner"]["data"]["flavour"] == "android-bundle"
    assert "bundle: glibc loader, no NDK" in checks["runner"]["detail"]


@needs_arm
def test_the_ssh_board_is_ready(lab):
    from qbench.testing.sshd import SshServer

    sshd = SshServer(lab["root"] / "sshd", alias="qbench-doctor-pi")
    sshd.start()
    try:
        name = profile(lab, "pi", f"""
            transport: ssh
            address: {sshd.alias}
            ssh_config: {sshd.ssh_config_path}
            workdir: {lab['root'] / 'pi-work'}
            runner: {{kind: native, target: linux-aarch64, launcher: [qemu-aarch64, -cpu, cortex-a72, -L, /usr/aarch64-linux-gnu]}}
            """)
        code, checks = doctor(lab, name)
    finally:
        sshd.stop()
    assert code == 0 and checks["_ready"], checks
    assert checks["reachable"]["detail"].startswith("ssh: ")


@needs_adb
def test_an_unreachable_phone_says_how_to_connect_it_and_devices_exits_1(lab):
    name = profile(lab, "gone", f"transport: adb\nadb_server_port: {lab['port']}\naddress: 127.0.0.1:{free_port()}\n"
                                "connect_retries: 0\n")
    code, checks = doctor(lab, name)
    assert code == 1 and not checks["_ready"] and list(checks) == ["reachable", "_ready"]
    assert "accept the RSA prompt" in checks["reachable"]["fix"]
    proc = qbench("devices", name, "--timeout", "20", env=lab["env"], cwd=lab["root"], timeout=300)
    assert proc.returncode == 1 and "unreachable: gone" in proc.stderr
    ok = qbench("devices", "host", env=lab["env"], cwd=lab["root"], timeout=300)
    assert ok.returncode == 0 and ok.stdout.startswith("host")
    unknown = qbench("doctor", "nosuch", env=lab["env"], cwd=lab["root"], timeout=300)
    assert unknown.returncode == 2 and unknown.stderr.startswith("qbench: no device profile 'nosuch'")


def test_no_space_and_a_missing_cluster_are_not_ready(tmp_path):
    prof = DeviceProfile(name="tight", transport="host", workdir=str(tmp_path / "w"), affinity="mid")
    checks = {c.name: c for c in check_device(prof, run_model=False, min_free_bytes=1 << 60, stability_seconds=0)}
    assert not ready(list(checks.values()))
    assert not checks["free space"].ok and "free space on the device" in checks["free space"].fix
    assert not checks["CPU clusters"].ok and "affinity: mid" in checks["CPU clusters"].detail


def test_a_noexec_workdir_is_caught_before_the_runner(tmp_path):
    mnt = tmp_path / "noexec"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,size=4m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a noexec tmpfs here (needs root)")
    try:
        prof = DeviceProfile(name="noexec", transport="host", workdir=str(mnt / "qbench"))
        checks = {c.name: c for c in check_device(prof, stability_seconds=0)}
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
    assert not checks["workdir executes"].ok and "noexec" in checks["workdir executes"].detail
    assert "/data/local/tmp/qbench" in checks["workdir executes"].fix
    assert "runner" not in checks  # not tried where it cannot start


@needs_adb
@needs_arm
def test_a_phone_that_is_not_arm64_and_a_broken_bundle(lab, tmp_path):
    from qbench.runners.native_build import build_runner

    addr = phone(lab, **{"ro.product.cpu.abi": "x86_64", "ro.product.cpu.abilist": "x86_64"})
    name = profile(lab, "x86-phone", f"transport: adb\nadb_server_port: {lab['port']}\naddress: {addr}\n"
                                     "runner: {kind: native, target: android-arm64-v8a}\n")
    code, checks = doctor(lab, name)
    assert code == 1 and not checks["ABI"]["ok"]
    assert "its ABI is x86_64, not arm64" in checks["ABI"]["detail"] and "runner" not in checks

    broken = tmp_path / "bundle"
    shutil.copytree(build_runner("android-arm64-v8a").parent, broken)
    (broken / "libm.so.6").unlink()
    addr = phone(lab)
    name = profile(lab, "broken", f"transport: adb\nadb_server_port: {lab['port']}\naddress: {addr}\n"
                                  f"runner: {{kind: native, binary: {broken / 'qbench_runner'}, "
                                  "launcher: [qemu-aarch64, -cpu, cortex-a76]}\n")
    code, checks = doctor(lab, name)
    assert code == 1 and not checks["runner"]["ok"]
    assert "lacks libm.so.6" in checks["runner"]["detail"]
