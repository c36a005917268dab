"""AdbDevice against the loopback adbd (qbench.testing.adbd), no mocks.

Every behaviour is checked in both "server" mode (Debian's real `adb` client with a private adb
server on a free port, HOME in a tmp dir) and "direct-tcp" mode (adb-shell). The daemon maps
/data/local/tmp into a sandbox folder and runs commands on this host, so files are checked in the
sandbox and processes with pgrep. "direct-usb" needs a phone on USB and is not covered here.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from qbench.devices.adb import AdbDevice, list_adb_devices
from qbench.devices.linux_info import THERMAL_SCRIPT, parse_thermal
from qbench.errors import DeviceError
from qbench.testing.adbd import AdbDaemon
from tests.helpers import free_port, pgrep, unique_sleep, wait_for

ADB = shutil.which("adb")
pytestmark = pytest.mark.skipif(ADB is None, reason="adb client not installed (apt-get install adb)")

MODES = ["server", "direct-tcp"]
WORKDIR = "/data/local/tmp/qbench"
PROPS = {"ro.product.model": "Pixel 8", "ro.product.manufacturer": "Google", "ro.soc.model": "Tensor G3",
         "ro.build.version.release": "15", "ro.build.version.sdk": "35"}


@pytest.fixture(scope="module")
def adb_port(tmp_path_factory):
    """A private adb server (own port, own HOME and key); killed at the end."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        for var in ("ADB_VENDOR_KEYS", "ANDROID_SERIAL", "ADB_SERVER_SOCKET", "ANDROID_ADB_SERVER_PORT"):
            mp.delenv(var, raising=False)
        port = free_port()
        subprocess.run([ADB, "-P", str(port), "start-server"], capture_output=True, timeout=30, check=True)
        try:
            yield port
        finally:
            subprocess.run([ADB, "-P", str(port), "kill-server"], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, adb_port):
    with AdbDaemon(tmp_path_factory.mktemp("phone"), properties=PROPS) as d:
        yield d


def _device(mode: str, address: str, port: int, **kw) -> AdbDevice:
    kw.setdefault("connect_timeout", 5)
    kw.setdefault("read_timeout", 20)
    return AdbDevice("phone", address=address, mode=mode, server_port=port, **kw)


@pytest.fixture(scope="module", params=MODES)
def device(request, daemon, adb_port):
    dev = _device(request.param, daemon.address, adb_port)
    yield dev
    dev.close()


@pytest.fixture
def fresh_daemon(tmp_path, adb_port):
    """For tests that kill connections or restart the daemon."""
    d = AdbDaemon(tmp_path / "phone").start()
    yield d
    d.stop()
    subprocess.run([ADB, "-P", str(adb_port), "disconnect", d.address], capture_output=True, timeout=30)


# -- run ----------------------------------------------------------------------------------------


def test_run_stdout_stderr_exit_codes(device):
    r = device.run(["echo", "hello", "world"], timeout=10)
    assert (r.returncode, r.stdout, r.stderr, r.timed_out) == (0, "hello world\n", "", False)
    assert r.seconds > 0

    r = device.run(["sh", "-c", "echo out; echo err >&2; printf partial >&2; printf tail; exit 3"], timeout=10)
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\ntail", "err\npartial")
    assert r.last_error_line() == "partial"
    assert device.run(["sh", "-c", "exit 255"], timeout=10).returncode == 255
    assert device.run(["no-such-program-qbench"], timeout=10).returncode == 127


def test_run_in_workdir_with_env(device, daemon):
    r = device.run(["sh", "-c", 'pwd; printf "%s|%s" "$QB_A" "$QB_B"'], timeout=10,
                   env={"QB_A": "x y", "QB_B": "$(id) `id` 'q' \"d\" ;|&"})
    # The daemon runs commands on this host: pwd shows where /data/local/tmp/qbench is mapped.
    assert r.stdout == f"{daemon.host_path(WORKDIR)}\nx y|$(id) `id` 'q' \"d\" ;|&"
    for bad in ("A B", "A;touch x", "1A", ""):
        with pytest.raises(ValueError):
            device.run(["true"], timeout=10, env={bad: "1"})
    with pytest.raises(ValueError):
        device.run([], timeout=10)


def test_legacy_protocol_still_gives_exit_code_and_stderr(tmp_path, adb_port):
    """No shell_v2: adb merges the streams and drops the exit code; the markers recover both."""
    with AdbDaemon(tmp_path / "old-phone", features=()) as old:
        for mode in MODES:
            dev = _device(mode, old.address, adb_port)
            r = dev.run(["sh", "-c", "echo out; echo err >&2; exit 7"], timeout=10)
            assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
            dev.close()


# -- push / pull --------------------------------------------------------------------------------


def test_push_copies_then_skips_identical(device, daemon, tmp_path):
    src = tmp_path / "model.pte"
    src.write_bytes(os.urandom(300_000))
    name = f"model-{device.mode}.pte"
    dest = device.push(src, name)
    landed = daemon.host_path(dest)
    assert dest == f"{WORKDIR}/{name}" and landed.read_bytes() == src.read_bytes()

    # Mark the device copy: a second push that rewrote it would reset mtime and change the inode.
    os.utime(landed, ns=(1_000_000_000, 1_000_000_000))
    before = landed.stat()
    assert device.push(src, name) == dest
    after = landed.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, 1_000_000_000)

    src.write_bytes(b"changed")
    device.push(src, name)
    assert landed.read_bytes() == b"changed" and landed.stat().st_mtime_ns != 1_000_000_000


def test_push_keeps_exec_bit_and_makes_subdirs(device, daemon, tmp_path):
    runner = tmp_path / "runner"
    runner.write_text("#!/bin/sh\necho runner \"$@\"\n")
    runner.chmod(0o755)
    dest = device.push(runner, f"bin-{device.mode}/arm64-v8a/runner")
    assert os.access(daemon.host_path(dest), os.X_OK)
    assert device.run([dest, "a b"], timeout=10).stdout == "runner a b\n"
    for bad in ("../escape", "/abs", "a//b", "", "a/./b"):
        with pytest.raises(ValueError):
            device.push(runner, bad)


def test_pull_returns_exact_bytes(device, daemon, tmp_path):
    data = os.urandom(200_000) + b"\r\n\x00end"
    target = daemon.host_path(f"{WORKDIR}/results-{device.mode}.bin")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    device.pull(f"results-{device.mode}.bin", tmp_path / "out" / "r.bin")
    assert (tmp_path / "out" / "r.bin").read_bytes() == data
    assert not (tmp_path / "out" / "r.bin.part").exists()
    with pytest.raises(DeviceError, match="no such file"):
        device.pull("missing.bin", tmp_path / "m.bin")
    assert not (tmp_path / "m.bin").exists()


def test_full_disk_on_push_says_so(device, daemon, tmp_path):
    # A private /dev/full node inside the sandbox: every write to it fails with ENOSPC. (Never point
    # the daemon at the real /dev/full: it unlinks the target of a failed push.)
    node = daemon.host_path(f"{WORKDIR}/full-{device.mode}.pte")
    node.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    src = tmp_path / "big.pte"
    src.write_bytes(os.urandom(100_000))
    try:
        with pytest.raises(DeviceError, match="No space left on device") as e:
            device.push(src, f"full-{device.mode}.pte")
        assert "phone" in str(e.value) and "storage is full" in str(e.value)
    finally:
        if node.is_char_device() or node.exists():
            node.unlink()
    assert device.run(["true"], timeout=10).returncode == 0  # the link is still usable


# -- info / thermal -----------------------------------------------------------------------------


def test_info_from_getprop_and_proc(device):
    info = device.info()
    assert (info.name, info.transport) == ("phone", "adb")
    assert (info.model, info.soc, info.abi) == ("Pixel 8", "Tensor G3", "arm64-v8a")
    assert info.os == "Android 15 (API 35)"
    assert info.extra["manufacturer"] == "Google" and info.extra["sdk"] == 35
    assert info.extra["abilist"].startswith("arm64-v8a")
    assert info.cores == os.cpu_count()
    meminfo = Path("/proc/meminfo").read_text()
    assert info.ram_bytes == int(meminfo.split("MemTotal:")[1].split()[0]) * 1024


def test_thermal_matches_the_zones_of_this_host(device):
    local = parse_thermal(subprocess.run(["sh", "-c", THERMAL_SCRIPT], capture_output=True, text=True).stdout)
    got = device.thermal()
    assert isinstance(got, dict) and set(got) == set(local)
    assert all(isinstance(v, float) for v in got.values())


# -- quoting ------------------------------------------------------------------------------------


def test_arguments_and_file_names_are_never_executed(device, daemon, tmp_path):
    probe = Path(f"/tmp/p_{secrets.token_hex(6)}")
    args = [f"x; touch {probe}", f"$(touch {probe})", f"`touch {probe}`", f"' ; touch {probe}; '",
            f'" ; touch {probe}; "', "two  spaces", "tab\there", "new\nline", "*", "~", "-n", "\\"]
    r = device.run(["printf", "%s\\n", *args], timeout=10, env={"QB": f"$(touch {probe})"})
    assert r.stdout == "".join(a + "\n" for a in args)
    r = device.run(["sh", "-c", 'printf %s "$QB"'], timeout=10, env={"QB": f"';touch {probe};'"})
    assert r.stdout == f"';touch {probe};'"

    weird = f"we ird $(touch {probe}) 'q' \"d\"; `x`-{device.mode}.bin"
    src = tmp_path / "w.bin"
    src.write_bytes(b"payload")
    dest = device.push(src, weird)
    assert dest == f"{WORKDIR}/{weird}"
    assert daemon.host_path(dest).read_bytes() == b"payload"
    assert device.push(src, weird) == dest  # the hash check quotes it too
    device.pull(weird, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == b"payload"
    assert not probe.exists()


# -- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_timeout_kills_the_remote_group(mode, daemon, adb_port):
    dev = _device(mode, daemon.address, adb_port)
    marker = unique_sleep()
    t0 = time.monotonic()
    # A background child in the same group proves the whole group goes, not just the shell.
    script = f"echo started; echo oops >&2; sleep {marker} & sleep {marker}; wait"
    r = dev.run(["sh", "-c", script], timeout=1.5)
    assert r.timed_out and r.returncode == -9
    assert (r.stdout, r.stderr) == ("started\n", "oops\n")  # stderr comes back from its file
    assert 1.5 <= r.seconds < 8 and time.monotonic() - t0 < 15
    wait_for(lambda: not pgrep(marker), 5, f"no process left with {marker}")
    assert not list(daemon.host_path(WORKDIR).glob(".qbench-*.err"))
    assert dev.run(["echo", "next"], timeout=10).stdout == "next\n"
    dev.close()


@pytest.mark.parametrize("mode", MODES)
def test_device_lost_mid_command_then_reconnect(mode, fresh_daemon, adb_port):
    dev = _device(mode, fresh_daemon.address, adb_port)
    assert dev.run(["echo", "up"], timeout=10).stdout == "up\n"
    marker = unique_sleep()
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(dev.run(["sh", "-c", f"echo working; sleep {marker}"], timeout=60))
        except DeviceError as e:
            outcome.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    wait_for(lambda: pgrep(marker), 10, "the command to start")
    t0 = time.monotonic()
    fresh_daemon.kill_connections()  # the phone vanished
    worker.join(15)
    assert not worker.is_alive() and time.monotonic() - t0 < 10
    assert isinstance(outcome[0], DeviceError), outcome
    assert "phone" in str(outcome[0]) and "lost" in str(outcome[0])

    fresh_daemon.stop()  # ... and comes back after a reboot, on the same port
    fresh_daemon.start()
    dev.reconnect()
    assert dev.run(["echo", "back"], timeout=10).stdout == "back\n"
    dev.close()


def test_wrong_serial_names_it_and_lists_devices(daemon, adb_port):
    dev = AdbDevice("phone", serial="no-such-serial", server_port=adb_port, connect_timeout=5)
    _device("server", daemon.address, adb_port).run(["true"], timeout=10)  # so the list is not empty
    with pytest.raises(DeviceError) as e:
        dev.run(["true"], timeout=10)
    text = str(e.value)
    assert "phone" in text and "no-such-serial" in text and f"{daemon.address} device" in text
    listed = {d["serial"]: d for d in list_adb_devices(ADB, adb_port)}
    assert listed[daemon.address]["state"] == "device" and listed[daemon.address]["model"] == "Pixel_8"


@pytest.mark.parametrize("mode", MODES)
def test_unauthorized_key_says_what_to_do(mode, tmp_path, adb_port):
    from adb_shell.auth.keygen import keygen

    other = tmp_path / "other-key"
    keygen(str(other))
    with AdbDaemon(tmp_path / "locked", authorized_keys=[Path(f"{other}.pub").read_text()]) as locked:
        dev = _device(mode, locked.address, adb_port, connect_timeout=1.5)
        t0 = time.monotonic()
        with pytest.raises(DeviceError) as e:
            dev.run(["true"], timeout=10)
        assert time.monotonic() - t0 < 10
        text = str(e.value)
        assert "phone" in text and "unauthorized" in text and "RSA prompt" in text and "adbkey" in text
        if mode == "direct-tcp":  # the key the daemon trusts works
            ok = _device(mode, locked.address, adb_port, adbkey=other)
            assert ok.run(["echo", "in"], timeout=10).stdout == "in\n"
            ok.close()
    subprocess.run([ADB, "-P", str(adb_port), "disconnect", locked.address], capture_output=True, timeout=30)


@pytest.mark.parametrize("mode", MODES)
def test_unreachable_address(mode, adb_port):
    closed = f"127.0.0.1:{free_port()}"
    dev = _device(mode, closed, adb_port, connect_timeout=2)
    t0 = time.monotonic()
    with pytest.raises(DeviceError) as e:
        dev.info()
    assert time.monotonic() - t0 < 10
    assert "phone" in str(e.value) and closed in str(e.value) and "refused" in str(e.value).lower()


def test_direct_mode_creates_a_private_key(tmp_path, daemon):
    key = tmp_path / "keys" / "adbkey"
    dev = AdbDevice("phone", address=daemon.address, mode="direct-tcp", adbkey=key, connect_timeout=5)
    assert dev.run(["true"], timeout=10).returncode == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert Path(f"{key}.pub").read_text().strip()
    dev.close()


def test_cleanup_removes_workdir_and_refuses_shared_dirs(daemon, adb_port, tmp_path):
    dev = _device("server", daemon.address, adb_port, workdir=f"{WORKDIR}-cleanup")
    (tmp_path / "f").write_bytes(b"x")
    dev.push(tmp_path / "f", "f")
    assert daemon.host_path(f"{WORKDIR}-cleanup/f").exists()
    dev.cleanup()
    assert not daemon.host_path(f"{WORKDIR}-cleanup").exists()
    for wd in ("/data/local/tmp", "/sdcard", "/data"):
        with pytest.raises(DeviceError, match="refusing"):
            _device("server", daemon.address, adb_port, workdir=wd).cleanup()


def test_no_serial_uses_the_one_attached_device_like_adb_does(tmp_path):
    """A profile without `serial:` (pixel8's default) picks the single attached phone; none or several
    is one clear line naming them."""
    port = free_port()
    env = {"HOME": str(tmp_path)}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        subprocess.run([ADB, "-P", str(port), "start-server"], capture_output=True, timeout=30, check=True)
        try:
            with pytest.raises(DeviceError, match=r"no serial in the profile and 0 devices attached \(none\)"):
                AdbDevice("phone", server_port=port, connect_timeout=5)
            with AdbDaemon(tmp_path / "phone", properties=PROPS) as d:
                subprocess.run([ADB, "-P", str(port), "connect", d.address], capture_output=True, timeout=30)
                dev = AdbDevice("phone", server_port=port, connect_timeout=5)
                assert dev.run(["echo", "picked"], timeout=10).stdout == "picked\n"
                dev.close()
        finally:
            subprocess.run([ADB, "-P", str(port), "kill-server"], capture_output=True, timeout=30)
