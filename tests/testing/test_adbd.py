"""The loopback adbd against real clients: Debian's `adb` (its own server on a free port) and adb-shell."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from qbench.testing.adbd import A_CNXN, A_OPEN, HEADER, AdbDaemon, parse_adb_public_key
from tests.helpers import free_port

ADB = shutil.which("adb")
needs_adb = pytest.mark.skipif(ADB is None, reason="Debian's adb client is not installed (apt-get install adb)")


def _wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class AdbClient:
    """Debian's adb with a private server (own port, own HOME and key), so tests clash with nothing."""

    def __init__(self, home: Path):
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if k not in ("ADB_VENDOR_KEYS", "ANDROID_SERIAL")}
        self.env.update(HOME=str(home), TMPDIR=str(home), ANDROID_ADB_SERVER_PORT=str(free_port()))

    def __call__(self, *args: str, timeout: float = 15, check: bool = True, input: str | None = None):
        r = subprocess.run(
            [ADB, *args], env=self.env, capture_output=True, text=True, timeout=timeout, input=input,
            stdin=subprocess.DEVNULL if input is None else None,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"adb {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [ADB, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )

    @property
    def public_key(self) -> str:
        return (self.home / ".android" / "adbkey.pub").read_text()

    def connect(self, address: str) -> None:
        out = self("connect", address).stdout
        assert f"connected to {address}" in out, out
        self("-s", address, "wait-for-device", timeout=10)

    def state(self, address: str) -> str | None:
        for line in self("devices").stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == address:
                return parts[1]
        return None


@pytest.fixture(scope="module")
def adb(tmp_path_factory) -> AdbClient:
    if ADB is None:
        pytest.skip("Debian's adb client is not installed (apt-get install adb)")
    client = AdbClient(tmp_path_factory.mktemp("adb-home"))
    client("start-server")  # also writes HOME/.android/adbkey(.pub)
    yield client
    client("kill-server", check=False)


@pytest.fixture(scope="module")
def device(adb, tmp_path_factory, py_key) -> AdbDaemon:
    """A daemon that trusts exactly the adb client's and adb-shell's keys, so real signatures get verified."""
    daemon = AdbDaemon(
        tmp_path_factory.mktemp("device"), properties={"ro.soc.model": "SM8650"},
        authorized_keys=[adb.public_key, py_key[1]],
    )
    with daemon:
        adb.connect(daemon.address)
        yield daemon
        adb("disconnect", daemon.address, check=False)


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory):
    from adb_shell.auth.keygen import keygen
    from adb_shell.auth.sign_pythonrsa import PythonRSASigner

    def make(name: str):
        path = tmp_path_factory.mktemp("keys") / name
        keygen(str(path))
        return PythonRSASigner.FromRSAKeyPath(str(path)), Path(f"{path}.pub").read_text()

    return make


@pytest.fixture(scope="module")
def py_key(rsa_key):
    return rsa_key("adbkey")


def _py_device(daemon: AdbDaemon, signer, auth_timeout_s: float = 2):
    from adb_shell.adb_device import AdbDeviceTcp

    dev = AdbDeviceTcp("127.0.0.1", daemon.port, default_transport_timeout_s=5)
    dev.connect(rsa_keys=[signer] if signer else None, auth_timeout_s=auth_timeout_s)
    return dev


# --------------------------------------------------------------------------------------------
# Debian's adb


@needs_adb
def test_real_client_connects_and_sees_a_device(adb, device):
    assert adb.state(device.address) == "device"
    listing = adb("devices", "-l").stdout
    assert "model:qbench_virtual" in listing and "product:qbench_virtual" in listing


@needs_adb
def test_real_client_shell_echo(adb, device):
    assert adb("-s", device.address, "shell", "echo", "hello").stdout == "hello\n"
    assert adb("-s", device.address, "exec-out", "printf 'a\\nb'").stdout == "a\nb"  # exec: service


@needs_adb
def test_real_client_shell_v2_exit_status_and_stderr(adb, device):
    r = adb("-s", device.address, "shell", "echo out; echo err >&2; exit 3", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")


@needs_adb
def test_real_client_shell_v2_stdin(adb, device):
    """stdin packets reach the command, and closing stdin (CLOSE_STDIN) lets `wc` finish."""
    data = "x" * 300_000
    assert adb("-s", device.address, "shell", "wc -c", input=data).stdout.strip() == "300000"
    # a command that never reads its stdin still ends (the input is dropped, as adbd does)
    assert adb("-s", device.address, "shell", "sleep 0.2; echo done", input=data * 10).stdout == "done\n"


@needs_adb
def test_real_client_big_output(adb, device):
    out = adb("-s", device.address, "shell", "head -c 2000000 /dev/zero | tr '\\0' a").stdout
    assert out == "a" * 2_000_000


@needs_adb
def test_real_client_device_paths_land_in_sandbox(adb, device):
    r = adb("-s", device.address, "shell", "echo hi > /data/local/tmp/f && cat /data/local/tmp/f")
    assert r.stdout == "hi\n"
    assert (device.sandbox / "data/local/tmp/f").read_text() == "hi\n"
    assert not Path("/data/local/tmp/f").exists() or Path("/data/local/tmp/f").read_text() != "hi\n"


@needs_adb
def test_real_client_getprop(adb, device):
    out = adb("-s", device.address, "shell", "getprop ro.product.model; getprop ro.soc.model;"
              " getprop ro.product.cpu.abi; getprop no.such.prop; getprop no.such.prop fallback").stdout
    assert out.splitlines() == ["qbench_virtual", "SM8650", "arm64-v8a", "", "fallback"]
    device.set_property("ro.build.version.release", "15")
    assert adb("-s", device.address, "shell", "getprop ro.build.version.release").stdout == "15\n"
    assert "[ro.product.cpu.abi]: [arm64-v8a]" in adb("-s", device.address, "shell", "getprop").stdout


@needs_adb
def test_real_client_push_pull_roundtrip(adb, device, tmp_path):
    src = tmp_path / "model.pte"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    os.utime(src, (1_700_000_000, 1_700_000_000))
    adb("-s", device.address, "push", str(src), "/data/local/tmp/qbench/model.pte")
    landed = device.sandbox / "data/local/tmp/qbench/model.pte"
    assert landed.read_bytes() == src.read_bytes()
    assert int(landed.stat().st_mtime) == 1_700_000_000  # DONE carries the mtime
    back = tmp_path / "back.pte"
    adb("-s", device.address, "pull", "/data/local/tmp/qbench/model.pte", str(back))
    assert back.read_bytes() == src.read_bytes()
    assert "model.pte" in adb("-s", device.address, "ls", "/data/local/tmp/qbench").stdout
    # whole directories too (LIS2 on the way back)
    (tmp_path / "tree/sub").mkdir(parents=True)
    (tmp_path / "tree/sub/x.txt").write_text("x")
    adb("-s", device.address, "push", str(tmp_path / "tree"), "/data/local/tmp/qbench/")
    assert (device.sandbox / "data/local/tmp/qbench/tree/sub/x.txt").read_text() == "x"
    adb("-s", device.address, "pull", "/data/local/tmp/qbench/tree", str(tmp_path / "tree-back"))
    assert (tmp_path / "tree-back/sub/x.txt").read_text() == "x"


@needs_adb
def test_real_client_pull_of_missing_file_fails(adb, device, tmp_path):
    r = adb("-s", device.address, "pull", "/data/local/tmp/nope.bin", str(tmp_path / "x"), check=False)
    assert r.returncode != 0
    assert "No such file" in r.stderr + r.stdout


@needs_adb
def test_streams_and_connections_run_concurrently(adb, device, py_key):
    """A waits for a file that B writes: serialized streams would deadlock until the timeout."""
    device.host_path("/data/local/tmp/go").unlink(missing_ok=True)
    waiter = adb.popen("-s", device.address, "shell",
                       "while [ ! -e /data/local/tmp/go ]; do sleep 0.05; done; echo A")
    try:
        time.sleep(0.2)
        adb("-s", device.address, "shell", "touch /data/local/tmp/go.1")  # same connection, second stream
        dev = _py_device(device, py_key[0])  # a second connection alongside
        try:
            dev.shell("mv /data/local/tmp/go.1 /data/local/tmp/go", read_timeout_s=5)
        finally:
            dev.close()
        out, _ = waiter.communicate(timeout=10)
        assert out == b"A\n"
    finally:
        waiter.kill()
        waiter.wait(timeout=5)


@needs_adb
def test_legacy_client_path_without_features(adb, tmp_path):
    """No features advertised: the client falls back to `shell:` (no exit code) and STAT v1."""
    with AdbDaemon(tmp_path / "legacy", features=(), require_auth=False) as legacy:
        adb.connect(legacy.address)
        try:
            r = adb("-s", legacy.address, "shell", "echo out; echo err >&2; exit 3", check=False)
            assert r.returncode == 0  # the legacy shell protocol carries no exit status
            assert sorted(r.stdout.splitlines()) == ["err", "out"]  # stderr is merged into stdout
            rc = adb("-s", legacy.address, "shell", 'false; echo "__rc=$?"').stdout
            assert rc.strip() == "__rc=1"
            src = tmp_path / "small.bin"
            src.write_bytes(os.urandom(100_000))
            adb("-s", legacy.address, "push", str(src), "/data/local/tmp/small.bin")
            adb("-s", legacy.address, "pull", "/data/local/tmp/small.bin", str(tmp_path / "back.bin"))
            assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
        finally:
            adb("disconnect", legacy.address, check=False)


@needs_adb
def test_real_client_with_unknown_key_stays_unauthorized(adb, tmp_path, py_key):
    with AdbDaemon(tmp_path / "locked", authorized_keys=[py_key[1]]) as locked:
        try:
            # adb 29 says so at once, and lists the device as unauthorized (as for a phone nobody answers)
            assert "failed to authenticate" in adb("connect", locked.address).stdout
            _wait_until(lambda: adb.state(locked.address) == "unauthorized", what="unauthorized state")
            r = adb("-s", locked.address, "shell", "echo should-not-run", check=False)
            assert r.returncode != 0 and "unauthorized" in r.stderr and "should-not-run" not in r.stdout
        finally:
            adb("disconnect", locked.address, check=False)


@needs_adb
def test_kill_connections_mid_stream(adb, tmp_path):
    """The phone vanishes mid-command: the client errors out, the command dies, the daemon lives on."""
    with AdbDaemon(tmp_path / "flaky", require_auth=False) as flaky:
        adb.connect(flaky.address)
        try:
            proc = adb.popen("-s", flaky.address, "shell",
                             "echo $$ > /data/local/tmp/pid; echo started; sleep 30; echo finished")
            try:
                assert proc.stdout.readline() == b"started\n"
                pid = int(flaky.host_path("/data/local/tmp/pid").read_text())
                assert flaky.kill_connections() == 1
                out, _ = proc.communicate(timeout=10)
                # adb 29 exits 0 when the device vanishes (no exit packet came): only the output tells
                assert b"finished" not in out
            finally:
                proc.kill()
                proc.wait(timeout=5)
            _wait_until(lambda: not _alive(pid), timeout=5, what="the shell to die")
            # adb's server reconnects by itself, and the daemon serves it again
            adb("-s", flaky.address, "wait-for-device", timeout=15)
            assert adb("-s", flaky.address, "shell", "echo back").stdout == "back\n"
            # a reboot: gone for a while, then back on the same address
            address = flaky.address
            flaky.stop()
            _wait_until(lambda: adb.state(address) != "device", what="the device to drop")
            flaky.start()
            assert flaky.address == address
            adb("-s", address, "wait-for-device", timeout=15)
            assert adb("-s", address, "shell", "echo rebooted").stdout == "rebooted\n"
        finally:
            adb("disconnect", flaky.address, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# adb-shell (protocol version 0x01000000: checksums on)


@pytest.fixture(scope="module")
def py_device(tmp_path_factory, py_key):
    with AdbDaemon(tmp_path_factory.mktemp("pydevice"), authorized_keys=[py_key[1]]) as daemon:
        dev = _py_device(daemon, py_key[0])
        yield daemon, dev
        dev.close()


def test_adb_shell_shell_and_exec(py_device):
    daemon, dev = py_device
    assert dev.shell("echo hello; getprop ro.product.cpu.abi") == "hello\narm64-v8a\n"
    assert dev.exec_out("printf 'a\\000b'", decode=False) == b"a\x00b"
    assert dev.shell("echo x > /sdcard/y; cat /sdcard/y") == "x\n"
    assert (daemon.sandbox / "sdcard/y").read_text() == "x\n"


def test_adb_shell_push_pull_stat_list(py_device):
    daemon, dev = py_device
    data = os.urandom(3 * 1024 * 1024)
    dev.push(io.BytesIO(data), "/data/local/tmp/qbench/blob.bin", mtime=1_600_000_000)
    assert daemon.host_path("/data/local/tmp/qbench/blob.bin").read_bytes() == data
    mode, size, mtime = dev.stat("/data/local/tmp/qbench/blob.bin")
    assert (size, mtime) == (len(data), 1_600_000_000) and mode & 0o170000 == 0o100000
    assert dev.stat("/data/local/tmp/missing") == (0, 0, 0)
    out = io.BytesIO()
    dev.pull("/data/local/tmp/qbench/blob.bin", out)
    assert out.getvalue() == data
    names = {bytes(f.filename) for f in dev.list("/data/local/tmp/qbench")}
    assert b"blob.bin" in names


def test_adb_shell_pull_missing_raises(py_device):
    from adb_shell.exceptions import AdbCommandFailureException

    _, dev = py_device
    with pytest.raises(AdbCommandFailureException):
        dev.pull("/data/local/tmp/does-not-exist", io.BytesIO())
    assert dev.shell("echo still-fine") == "still-fine\n"


def test_adb_shell_wrong_key_is_rejected(py_device, rsa_key):
    from adb_shell.exceptions import TcpTimeoutException

    daemon, dev = py_device
    stranger, _ = rsa_key("stranger")
    with pytest.raises(TcpTimeoutException):  # the device never says CNXN to an unknown key
        _py_device(daemon, stranger, auth_timeout_s=1)
    assert dev.shell("echo still-fine") == "still-fine\n"


def test_adb_shell_sees_the_connection_drop(tmp_path):
    with AdbDaemon(tmp_path / "drop", require_auth=False) as daemon:
        dev = _py_device(daemon, None)
        errors: list[BaseException] = []

        def stream():
            try:
                # adb-shell does not notice EOF; it times out after read_timeout_s
                for _ in dev.streaming_shell("echo started; sleep 30", read_timeout_s=2):
                    pass
            except BaseException as e:  # noqa: BLE001 - any error is what we want to see
                errors.append(e)

        t = threading.Thread(target=stream, daemon=True)
        t.start()
        _wait_until(lambda: daemon.connection_count == 1, what="the connection")
        time.sleep(0.3)
        daemon.kill_connections()
        t.join(timeout=10)
        assert not t.is_alive() and errors
        assert _py_device(daemon, None).shell("echo back") == "back\n"


# --------------------------------------------------------------------------------------------
# Robustness and the raw protocol


def _raw(daemon: AdbDaemon) -> socket.socket:
    return socket.create_connection(("127.0.0.1", daemon.port), timeout=5)


def _closed_by_peer(s: socket.socket) -> bool:
    try:
        while s.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True


def _message(command: int, arg0: int, arg1: int, data: bytes, checksum: int | None = None) -> bytes:
    crc = sum(data) if checksum is None else checksum
    return HEADER.pack(command, arg0, arg1, len(data), crc, command ^ 0xFFFFFFFF) + data


@pytest.mark.parametrize(
    "payload",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4,  # garbage: bad magic
        HEADER.pack(A_CNXN, 0x01000001, 4096, 1 << 30, 0, A_CNXN ^ 0xFFFFFFFF),  # absurd length
        _message(A_CNXN, 0x01000000, 4096, b"host::\0", checksum=1),  # bad checksum (v1)
        _message(A_CNXN, 0x00000001, 4096, b"host::\0"),  # unknown version
    ],
    ids=["garbage", "oversize", "bad-checksum", "old-version"],
)
def test_bad_input_closes_only_that_connection(tmp_path, payload):
    with AdbDaemon(tmp_path / "d", require_auth=False) as daemon:
        with _raw(daemon) as s:
            s.sendall(payload)
            assert _closed_by_peer(s)
        assert _py_device(daemon, None).shell("echo alive") == "alive\n"


def test_raw_handshake_ignores_messages_before_cnxn(tmp_path):
    with AdbDaemon(tmp_path / "d", require_auth=False, features=("shell_v2",)) as daemon:
        with _raw(daemon) as s:
            s.sendall(_message(A_OPEN, 1, 0, b"shell:echo early\0"))  # ignored: not connected yet
            s.sendall(_message(A_CNXN, 0x01000001, 256 * 1024, b"host::\0", checksum=0))
            command, version, maxdata, length, _, _ = HEADER.unpack(s.recv(24, socket.MSG_WAITALL))
            banner = s.recv(length, socket.MSG_WAITALL)
        assert (command, version, maxdata) == (A_CNXN, 0x01000001, 256 * 1024)
        assert banner.startswith(b"device::ro.product.name=qbench_virtual;")
        assert banner.endswith(b";features=shell_v2")


def test_host_path_and_command_rewriting(tmp_path):
    daemon = AdbDaemon(tmp_path / "sb")
    root = daemon.sandbox
    assert daemon.host_path("/data/local/tmp/qbench/x.pte") == root / "data/local/tmp/qbench/x.pte"
    assert daemon.host_path("/data/local/tmp/../../../../etc/passwd") == root / "etc/passwd"
    assert daemon.host_path("relative/x") == root / "relative/x"
    tmp = root / "data/local/tmp"
    assert daemon.rewrite_command("cd /data/local/tmp && ./r '/data/local/tmp/m.pte'") == (
        f"cd {tmp} && ./r '{tmp}/m.pte'"
    )
    untouched = "ls /x/data/local/tmp /data/local/tmpfoo /proc/cpuinfo"
    assert daemon.rewrite_command(untouched) == untouched


def test_constructor_guards(tmp_path):
    with pytest.raises(ValueError):
        AdbDaemon(tmp_path, host="0.0.0.0")  # never off loopback
    with pytest.raises(ValueError):
        AdbDaemon(tmp_path, features=("sendrecv_v2",))  # not implemented, so never advertised
    with pytest.raises(ValueError):
        parse_adb_public_key("not-base64!")


def test_command_line_entry_point(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qbench.testing.adbd", "--sandbox", str(tmp_path / "cli"), "--port", str(port),
         "--no-auth", "--prop", "ro.product.model=Pixel 8"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    try:
        line = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in line, line + proc.stderr.read()
        daemon = type("D", (), {"port": port})()
        dev = _py_device(daemon, None)
        assert dev.shell("getprop ro.product.model") == "Pixel 8\n"
        dev.close()
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait(timeout=5)
