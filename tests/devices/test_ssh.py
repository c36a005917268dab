"""SshDevice against a real OpenSSH server on 127.0.0.1 (qbench.testing.sshd), no mocks.

Server and client are the same machine, so "remote" files and processes are checked directly on
the local filesystem and with pgrep.
"""

from __future__ import annotations

import glob
import logging
import os
import platform
import secrets
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from qbench.devices.ssh import _RUN_WRAPPER, SshDevice
from qbench.errors import DeviceError
from qbench.testing.sshd import SSHD, SshServer, make_keypair
from tests.helpers import pgrep, unique_sleep, wait_for

pytestmark = pytest.mark.skipif(not SSHD.exists(), reason="openssh-server not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with SshServer(tmp_path_factory.mktemp("sshd")) as srv:
        yield srv


@pytest.fixture(scope="module")
def device(server, tmp_path_factory):
    """Shared (one master connection for the module): tests use distinct file names."""
    dev = SshDevice("pi", server.alias, ssh_config=server.ssh_config_path,
                    workdir=str(tmp_path_factory.mktemp("work")))
    yield dev
    dev.close()


@pytest.fixture
def fresh_device(server, tmp_path):
    """For tests that remove the workdir, close the device or kill its master."""
    dev = SshDevice("pi", server.alias, ssh_config=server.ssh_config_path, workdir=str(tmp_path / "work"))
    yield dev
    dev.close()


# -- run ----------------------------------------------------------------------------------------


def test_run_stdout_stderr_exit_codes(device):
    r = device.run(["echo", "hello", "world"], timeout=10)
    assert (r.returncode, r.stdout, r.stderr, r.timed_out) == (0, "hello world\n", "", False)
    assert r.seconds > 0

    r = device.run(["sh", "-c", "echo out; echo err >&2; printf partial >&2; exit 3"], timeout=10)
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\npartial")
    assert r.last_error_line() == "partial"

    # A command's own 255 is a result, not mistaken for ssh failing.
    assert device.run(["sh", "-c", "exit 255"], timeout=10).returncode == 255
    assert device.run(["no-such-program-qbench"], timeout=10).returncode == 127


def test_run_in_workdir_with_env(device):
    r = device.run(["sh", "-c", 'pwd; printf "%s|%s" "$QB_A" "$QB_B"'], timeout=10,
                   env={"QB_A": "x y", "QB_B": "$(id) `id` 'q' \"d\" ;|&"})
    assert r.stdout == f"{device.workdir}\nx y|$(id) `id` 'q' \"d\" ;|&"
    with pytest.raises(ValueError):
        device.run(["true"], timeout=10, env={"A B": "1"})
    with pytest.raises(ValueError):
        device.run(["true"], timeout=10, env={"A;touch x": "1"})


# -- push / pull --------------------------------------------------------------------------------


def test_push_copies_then_skips_identical(device, tmp_path):
    src = tmp_path / "model.pte"
    src.write_bytes(os.urandom(200_000))
    dest = Path(device.push(src, "model.pte"))
    assert dest == Path(device.workdir) / "model.pte" and dest.read_bytes() == src.read_bytes()

    # Mark the remote copy: a second push that rewrote it would reset mtime and change the inode.
    os.utime(dest, ns=(1_000_000_000, 1_000_000_000))
    before = dest.stat()
    assert device.push(src, "model.pte") == str(dest)
    after = dest.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, 1_000_000_000)

    src.write_bytes(b"changed")
    device.push(src, "model.pte")
    assert dest.read_bytes() == b"changed" and dest.stat().st_mtime_ns != 1_000_000_000
    assert not list(dest.parent.glob("*.qbench-part"))


def test_push_keeps_exec_bit_and_makes_subdirs(device, tmp_path):
    runner = tmp_path / "runner"
    runner.write_text("#!/bin/sh\necho ran \"$@\"\n")
    runner.chmod(0o755)
    dest = device.push(runner, "bin/qbench-runner")
    assert os.access(dest, os.X_OK)
    assert device.run(["./bin/qbench-runner", "a b"], timeout=10).stdout == "ran a b\n"
    for bad in ("../escape", "/abs/path", "", "a//b", "./x"):
        with pytest.raises(ValueError):
            device.push(runner, bad)


def test_pull_identical_bytes(device, tmp_path):
    data = bytes(range(256)) * 4000 + os.urandom(50_000)  # every byte value, incl. NUL and \r\n
    src = tmp_path / "results.bin"
    src.write_bytes(data)
    device.push(src, "out/results.bin")
    device.pull("out/results.bin", tmp_path / "back" / "r.bin")  # relative to the workdir
    assert (tmp_path / "back" / "r.bin").read_bytes() == data
    device.pull(str(src), tmp_path / "abs.bin")  # absolute path on the device
    assert (tmp_path / "abs.bin").read_bytes() == data
    with pytest.raises(DeviceError, match="cannot pull .*missing.bin"):
        device.pull("missing.bin", tmp_path / "nope.bin")
    assert not (tmp_path / "nope.bin").exists() and not (tmp_path / "nope.bin.part").exists()


# -- info / thermal / cleanup -------------------------------------------------------------------


def test_info_and_thermal(device):
    info = device.info()
    assert info.name == "pi" and info.transport == "ssh"
    assert info.cores and info.cores >= 1
    assert info.os and info.abi == platform.machine()
    assert info.ram_bytes and info.ram_bytes > 100 * 2**20
    assert info.extra["host"] == "qbench-test-pi"
    thermal = device.thermal()
    assert isinstance(thermal, dict) and all(isinstance(v, float) for v in thermal.values())


def test_cleanup_removes_workdir_only(server, fresh_device, tmp_path):
    device = fresh_device
    f = tmp_path / "f.txt"
    f.write_text("x")
    device.push(f, "f.txt")
    assert Path(device.workdir).is_dir()
    device.cleanup()
    assert not Path(device.workdir).exists() and f.exists()
    risky = SshDevice("pi", server.alias, ssh_config=server.ssh_config_path, workdir="/tmp")
    with pytest.raises(DeviceError, match="refusing"):
        risky.cleanup()
    risky.close()


def test_home_relative_workdir(server):
    dev = SshDevice("pi", server.alias, ssh_config=server.ssh_config_path, workdir="~/qbench-test-wd")
    try:
        assert dev.workdir == str(Path.home() / "qbench-test-wd")
    finally:
        dev.close()


def test_close_is_idempotent_and_device_reusable(fresh_device):
    device = fresh_device
    assert device.run(["true"], timeout=10).returncode == 0
    device.close()
    device.close()
    assert device.run(["echo", "again"], timeout=10).stdout == "again\n"


# -- quoting / injection ------------------------------------------------------------------------


def test_nothing_is_ever_executed_by_the_remote_shell(server, tmp_path):
    marker = Path(f"/tmp/p_{secrets.token_hex(6)}")
    payloads = [
        f"x; touch {marker}",
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"'; touch {marker}; '",
        f'"; touch {marker}; "',
        f"a\nb && touch {marker}",
        "-rf",
    ]
    workdir = tmp_path / f"work dir 'q' \"dq\" $(touch {marker})"
    dev = SshDevice(f"x; touch {marker}", server.alias, ssh_config=server.ssh_config_path,
                    workdir=str(workdir))
    try:
        r = dev.run(["printf", "%s|", *payloads], timeout=10, env={"QB": f"$(touch {marker})"})
        assert r.stdout == "".join(p + "|" for p in payloads)

        src = tmp_path / "payload.bin"
        src.write_bytes(b"exact bytes")
        names = ["a b'c\"d;$(touch M) `touch M`.bin".replace("M", str(marker)), "-rf x.bin",
                 f"x; touch {marker}"]
        for name in names:
            dest = dev.push(src, name)
            assert dest == f"{workdir}/{name}"
            assert (workdir / name).read_bytes() == b"exact bytes"  # landed under that exact name
        assert dev.push(src, names[0]) == f"{workdir}/{names[0]}"  # the hash check quotes it too
        dev.pull(names[0], tmp_path / "pulled.bin")
        assert (tmp_path / "pulled.bin").read_bytes() == b"exact bytes"
        dev.cleanup()
        assert not workdir.exists()
    finally:
        dev.close()
    assert not marker.exists()
    with pytest.raises(ValueError):  # would be parsed by ssh as an option (-oProxyCommand=...)
        SshDevice("pi", f"-oProxyCommand=touch {marker}")
    assert not marker.exists()


# -- faults -------------------------------------------------------------------------------------


def test_explicit_host_port_user_key_without_config(server):
    dev = SshDevice("pi", "127.0.0.1", port=server.port, user=server.user,
                    identity_file=server.user_key, known_hosts=server.known_hosts)
    try:
        assert dev.run(["echo", "ok"], timeout=10).stdout == "ok\n"
    finally:
        dev.close()


def test_wrong_user_key(server, tmp_path):
    wrong = make_keypair(tmp_path / "wrong_key")
    dev = SshDevice("pi", "127.0.0.1", port=server.port, user=server.user,
                    identity_file=wrong, known_hosts=server.known_hosts)
    try:
        with pytest.raises(DeviceError, match=r"authentication failed for .*127\.0\.0\.1.*wrong_key") as e:
            dev.run(["true"], timeout=10)
        assert "Permission denied" in str(e.value)
        with pytest.raises(DeviceError, match="authentication failed"):
            dev.push(wrong, "k")
    finally:
        dev.close()


def test_unknown_host_key_strict_then_relaxed(server, tmp_path, caplog):
    known = tmp_path / "known_hosts"  # does not exist yet: the host is unknown
    strict = SshDevice("pi", server.alias, ssh_config=server.ssh_config_path, known_hosts=known)
    with pytest.raises(DeviceError, match="host key verification failed for qbench-test-pi: .*known_hosts.*"
                                          "strict_host_key_checking: false"):
        strict.run(["true"], timeout=10)
    strict.close()

    with caplog.at_level(logging.WARNING, logger="qbench.devices.ssh"):
        relaxed = SshDevice("pi", server.alias, ssh_config=server.ssh_config_path, known_hosts=known,
                            strict_host_key_checking=False)
    assert "strict host key checking is OFF" in caplog.text
    try:
        assert relaxed.run(["echo", "ok"], timeout=10).stdout == "ok\n"
    finally:
        relaxed.close()
    assert f"[127.0.0.1]:{server.port}" in known.read_text()  # recorded: strict works from now on
    again = SshDevice("pi", server.alias, ssh_config=server.ssh_config_path, known_hosts=known)
    try:
        assert again.run(["true"], timeout=10).returncode == 0
    finally:
        again.close()


def test_changed_host_key_is_refused_even_when_relaxed(server, tmp_path):
    other = make_keypair(tmp_path / "other_host_key")
    kind, blob = other.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{server.port} {kind} {blob}\n")
    for strict in (True, False):
        dev = SshDevice("pi", server.alias, ssh_config=server.ssh_config_path, known_hosts=known,
                        strict_host_key_checking=strict)
        try:
            with pytest.raises(DeviceError, match="host key of qbench-test-pi has CHANGED"):
                dev.run(["true"], timeout=10)
        finally:
            dev.close()


def test_hung_command_is_killed_with_its_children(device, tmp_path):
    dur = unique_sleep()
    started = tmp_path / "started"
    t0 = time.monotonic()
    r = device.run(["sh", "-c", f"touch '{started}'; sleep {dur} & sleep {dur}; wait"], timeout=1.5)
    elapsed = time.monotonic() - t0
    assert r.timed_out and r.returncode != 0
    assert started.exists()  # it really ran
    assert 1.5 <= elapsed < 8
    wait_for(lambda: not pgrep(f"sleep {dur}"), 5, "the remote sleeps to die")
    assert device.run(["echo", "still usable"], timeout=10).stdout == "still usable\n"


def test_remote_watchdog_kills_group_when_nobody_else_can(tmp_path):
    """The backstop for a lost connection: the wrapper alone kills its group at its deadline.

    Run here under setsid, as sshd runs a session, with a 1 s limit and no ssh at all.
    """
    dur = unique_sleep()
    t0 = time.monotonic()
    p = subprocess.run(
        ["sh", "-c", _RUN_WRAPPER, "qbench", str(tmp_path), "1", "0", "sh", "-c",
         f"sleep {dur} & sleep {dur}; wait"],
        capture_output=True, timeout=20, start_new_session=True,
    )
    assert p.returncode == -signal.SIGKILL
    assert time.monotonic() - t0 < 8
    wait_for(lambda: not pgrep(f"sleep {dur}"), 5, "the sleeps to die")

    # A normal finish leaves no watchdog behind either.
    p = subprocess.run(["sh", "-c", _RUN_WRAPPER, "qbench", str(tmp_path), f"{dur}", "0", "true"],
                       capture_output=True, timeout=20, start_new_session=True)
    assert p.returncode == 0 and b"qbench-exit 0" in p.stderr
    wait_for(lambda: not pgrep(f"sleep {dur}"), 5, "the watchdog to go")


def test_board_disappears_mid_command_then_comes_back(tmp_path):
    with SshServer(tmp_path / "srv", alias="qbench-flaky-pi") as srv:
        dev = SshDevice("flaky", srv.alias, ssh_config=srv.ssh_config_path, workdir=str(tmp_path / "w"))
        try:
            assert dev.run(["true"], timeout=10).returncode == 0  # master connection is up
            started, dur = tmp_path / "started", unique_sleep()
            with ThreadPoolExecutor(1) as pool:
                fut = pool.submit(dev.run, ["sh", "-c", f"touch '{started}'; sleep {dur}"], 30)
                wait_for(started.exists, 10, "the remote command to start")
                t0 = time.monotonic()
                srv.kill()
                # Documented behaviour: a DeviceError, not a RunResult.
                with pytest.raises(DeviceError, match="connection to qbench-flaky-pi lost"):
                    fut.result(timeout=20)
                assert time.monotonic() - t0 < 10
            assert not pgrep(f"sleep {dur}")

            with pytest.raises(DeviceError, match="connection refused by qbench-flaky-pi"):
                dev.run(["true"], timeout=10)

            port = srv.port
            srv.start()
            assert srv.port == port
            assert dev.run(["echo", "back"], timeout=10).stdout == "back\n"
        finally:
            dev.close()


def test_hung_board_is_a_bounded_device_error(tmp_path):
    with SshServer(tmp_path / "srv", alias="qbench-frozen-pi") as srv:
        dev = SshDevice("frozen", srv.alias, ssh_config=srv.ssh_config_path, workdir=str(tmp_path / "w"))
        try:
            assert dev.run(["true"], timeout=10).returncode == 0  # a master connection is up
            srv.freeze()  # the master's peer stops answering, new TCP connects hang in handshake
            t0 = time.monotonic()
            with pytest.raises(DeviceError, match="no response from qbench-frozen-pi within 1s; "
                                                  "the command did not start"):
                dev.run(["true"], timeout=1)
            assert time.monotonic() - t0 < 5
            srv.thaw()
            assert dev.run(["echo", "awake"], timeout=10).stdout == "awake\n"
        finally:
            srv.thaw()
            dev.close()


def test_stale_control_socket_is_survived(fresh_device):
    device = fresh_device
    assert device.run(["true"], timeout=10).returncode == 0
    masters = pgrep(device._control_dir)  # the persisted master carries its ControlPath
    sockets = glob.glob(f"{device._control_dir}/*")
    assert masters and sockets
    for pid in masters:
        os.kill(int(pid), signal.SIGKILL)  # dies without removing its socket file
    wait_for(lambda: not pgrep(device._control_dir), 5, "the master to die")
    assert glob.glob(f"{device._control_dir}/*") == sockets  # stale socket still there
    assert device.run(["echo", "ok"], timeout=10).stdout == "ok\n"
