"""The two ways AdbDevice reaches a phone: the `adb` binary (server mode) or adb-shell (direct mode).

Both offer the same small surface to `qbench.devices.adb`: run one shell command line and get its raw
output back, push a file, pull a file, (re)connect. Neither knows about qbench's markers or scripts;
deciding what a cut-short output means is the device's business.

Server mode (`ServerTransport`): on farm hosts the adb server owns the USB devices, so we drive the
`adb` client with argv lists (`adb [-P port] -s SERIAL shell|push|pull ...`). The server is found the
way adb finds it (`-P`, else ANDROID_ADB_SERVER_PORT / ADB_SERVER_SOCKET from the environment).

Direct mode (`DirectTransport`): adb-shell talks the wire protocol itself, to `host:port` (a phone in
`adb tcpip` / wireless-debugging mode) or over libusb. Two gaps in adb-shell's TcpTransport are
closed by `_TcpTransport`: it returns b"" forever once the peer closed the socket (adb-shell then
spins until its read timeout instead of noticing the device is gone), and it ignores partial
`send()`s on its non-blocking socket. USB uses adb-shell's UsbTransport as is (needs
`adb-shell[usb]`/libusb1; not testable without a phone).
"""

from __future__ import annotations

import logging
import os
import re
import select
import socket
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from qbench.errors import DeviceError

log = logging.getLogger(__name__)

_FINISH_GRACE = 5.0  # seconds a killed command's stream gets to end before we cut it locally
_BIG = 10.0 * 365 * 24 * 3600  # "no limit" for adb-shell's own read_timeout_s (we bound waits ourselves)


@dataclass
class ShellOutput:
    """Raw result of one shell command line. `failure` is the transport's own complaint, if any."""

    out: bytes
    err: bytes = b""
    timed_out: bool = False
    failure: str | None = None


OnTimeout = Callable[[bytes], None]  # called with the output so far, while the command still runs


def _last_line(data: bytes | str) -> str:
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


# ---------------------------------------------------------------------------------------------
# Keys


def load_signer(path: Path):
    """A PythonRSASigner for the adb key at `path`, created (0600, `.pub` beside it) if absent."""
    from adb_shell.auth.keygen import keygen, write_public_keyfile
    from adb_shell.auth.sign_pythonrsa import PythonRSASigner

    path = Path(path).expanduser()
    pub = path.with_name(path.name + ".pub")
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:  # create it 0600 first: keygen's open() keeps the mode, so the key is never world-readable
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            keygen(str(path))
            log.info("created adb key %s (the phone must authorize it once)", path)
        except FileExistsError:
            pass  # another process made it meanwhile
        os.chmod(path, 0o600)
    if not pub.exists():
        write_public_keyfile(str(path), str(pub))
    return PythonRSASigner(pub.read_text(), path.read_text())


# ---------------------------------------------------------------------------------------------
# Server mode


def _adb_base(adb_binary: str, server_port: int | None) -> list[str]:
    return [adb_binary, *(["-P", str(int(server_port))] if server_port else [])]


def parse_adb_devices(text: str) -> list[dict[str, str]]:
    """`adb devices -l` output -> [{serial, state, model, product, device, transport_id, ...}]."""
    devices = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(("List of devices", "*", "adb ")):
            continue
        serial, _, rest = line.strip().partition(" ") if "\t" not in line else line.strip().partition("\t")
        rest = rest.strip()
        if rest.startswith("no permissions"):  # "no permissions (user ... udev rules ...); see [url]"
            entry = {"serial": serial, "state": "no permissions", "detail": rest}
        else:
            words = rest.split()
            entry = {"serial": serial, "state": words[0] if words else "unknown"}
            for word in words[1:]:
                key, sep, value = word.partition(":")
                if sep:
                    entry[key] = value
        devices.append(entry)
    return devices


def list_adb_devices(adb_binary: str = "adb", server_port: int | None = None,
                     *, env: dict[str, str] | None = None, timeout: float = 15.0) -> list[dict[str, str]]:
    """Devices the adb server knows (`adb devices -l`); starts the server if needed, like adb does."""
    argv = [*_adb_base(adb_binary, server_port), "devices", "-l"]
    try:
        r = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout, env=env)
    except FileNotFoundError:
        raise DeviceError("adb", f"adb binary {adb_binary!r} not found "
                                 f"(install Android platform-tools)") from None
    except subprocess.TimeoutExpired:
        raise DeviceError("adb", f"`adb devices` did not answer within {timeout:g}s") from None
    if r.returncode != 0:
        raise DeviceError("adb", f"`adb devices` failed: {_last_line(r.stderr) or r.returncode}")
    return parse_adb_devices(r.stdout.decode(errors="replace"))


def _format_listing(devices: list[dict[str, str]]) -> str:
    if not devices:
        return "(no devices)"
    return "; ".join(f"{d['serial']} {d['state']}" + (f" model:{d['model']}" if d.get("model") else "")
                     for d in devices)


class ServerTransport:
    mode = "server"

    def _only_device(self, adb_binary: str, server_port: int | None) -> str:
        """No serial in the profile: like `adb` itself, use the one attached device, if exactly one."""
        ready = [d["serial"] for d in list_adb_devices(adb_binary, server_port) if d["state"] == "device"]
        if len(ready) != 1:
            raise DeviceError(self.name, f"no serial in the profile and {len(ready)} devices attached "
                                         f"({', '.join(ready) or 'none'}): set `serial:` or `address:`")
        return ready[0]

    def __init__(self, name: str, *, serial: str | None, address: str | None, adb_binary: str,
                 server_port: int | None, connect_timeout: float, adbkey: Path | None):
        self.name = name
        self.address = _normalize_address(address) if address else None
        self.serial = serial or self.address or self._only_device(adb_binary, server_port)
        self.adb_binary = adb_binary
        self.server_port = server_port
        self.connect_timeout = connect_timeout
        self.env = dict(os.environ)
        if adbkey:  # only used if our call is the one that starts the server
            self.env["ADB_VENDOR_KEYS"] = str(Path(adbkey).expanduser())
        self._online = False

    def describe(self) -> str:
        return self.serial

    # -- adb plumbing
    def _argv(self, *args: str, select_device: bool = True) -> list[str]:
        base = _adb_base(self.adb_binary, self.server_port)
        return [*base, *(["-s", self.serial] if select_device else []), *args]

    def _adb(self, *args: str, timeout: float, select_device: bool = True) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(self._argv(*args, select_device=select_device), capture_output=True,
                                  stdin=subprocess.DEVNULL, timeout=timeout, env=self.env)
        except FileNotFoundError:
            raise DeviceError(self.name, f"adb binary {self.adb_binary!r} not found "
                                         f"(install Android platform-tools or set adb_binary)") from None
        except subprocess.TimeoutExpired:
            raise DeviceError(self.name, f"`adb {' '.join(args[:2])}` did not finish within {timeout:g}s "
                                         f"(adb server or device {self.serial} stuck?)") from None

    def devices(self) -> list[dict[str, str]]:
        return list_adb_devices(self.adb_binary, self.server_port, env=self.env,
                                timeout=self.connect_timeout + 5)

    # -- connection
    def connect(self) -> None:
        if self.address:
            self._adb_connect()
        self._wait_online()

    def reconnect(self) -> None:
        self._online = False
        if self.address:  # a restarted adbd: the server may still hold the dead transport as "offline"
            self._adb("disconnect", self.address, timeout=self.connect_timeout + 5, select_device=False)
        self.connect()

    def ensure(self) -> None:
        if not self._online:
            self.connect()

    def mark_lost(self) -> None:
        self._online = False

    def close(self) -> None:
        self._online = False  # the adb server owns the connection; other users may share it

    def _adb_connect(self) -> None:
        r = self._adb("connect", self.address, timeout=self.connect_timeout + 5, select_device=False)
        text = (r.stdout + r.stderr).decode(errors="replace")
        # adb exits 0 even when it could not connect: the words are what counts.
        if re.search(r"\b(already )?connected to\b|failed to authenticate", text):
            return
        raise DeviceError(self.name, f"cannot reach {self.address}: {_last_line(text) or 'adb connect failed'} "
                                     f"(phone off the network, wrong port, or wireless debugging / "
                                     f"`adb tcpip` not enabled?)")

    def _wait_online(self) -> None:
        deadline = time.monotonic() + self.connect_timeout
        start, redialed = time.monotonic(), False
        while True:
            devices = self.devices()
            state = next((d["state"] for d in devices if d["serial"] == self.serial), None)
            if state == "device":
                self._online = True
                return
            if state is None and not self.address:
                break  # a USB serial that is not listed will not appear by waiting (wrong serial)
            if time.monotonic() >= deadline:
                break
            if self.address and state in (None, "offline") and not redialed and time.monotonic() - start > 1:
                # The server retries a dropped TCP device only with back-off; dial again once ourselves.
                self._adb("disconnect", self.address, timeout=self.connect_timeout + 5, select_device=False)
                self._adb_connect()
                redialed = True
            time.sleep(0.1)
        raise self.state_error(state, devices)

    def state_error(self, state: str | None, devices: list[dict[str, str]]) -> DeviceError:
        s = self.serial
        if state is None:
            return DeviceError(self.name, f"no device with serial {s!r} is known to the adb server "
                                          f"(`adb devices`: {_format_listing(devices)})")
        if state == "unauthorized":
            return DeviceError(self.name, _unauthorized_text(s, "the adb server's key (~/.android/adbkey "
                                                                "or ADB_VENDOR_KEYS)"))
        if state == "offline":
            return DeviceError(self.name, f"device {s} is offline (unplugged, rebooting, or adbd restarted; "
                                          f"replug the cable or re-enable USB debugging)")
        if state == "no permissions":
            return DeviceError(self.name, f"no permission to open USB device {s}: add a udev rule for it "
                                          f"or put your user in the plugdev group")
        return DeviceError(self.name, f"device {s} is in state {state!r}, not 'device' "
                                      f"(`adb devices`: {_format_listing(devices)})")

    def explain(self, failure: str) -> DeviceError:
        """An adb error before the command could start -> a DeviceError that says what to do."""
        self._online = False
        try:
            devices = self.devices()
        except DeviceError:
            devices = None
        if devices is not None:
            state = next((d["state"] for d in devices if d["serial"] == self.serial), None)
            if state != "device":
                return self.state_error(state, devices)
        return DeviceError(self.name, f"adb failed on {self.serial}: {failure or 'no output'}")

    # -- operations
    def shell(self, command: str, timeout: float, on_timeout: OnTimeout | None = None) -> ShellOutput:
        # stdin=DEVNULL and no -t: no pty, so bytes come back unchanged and stderr stays separate.
        try:
            proc = subprocess.Popen(self._argv("shell", command), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)
        except FileNotFoundError:
            raise DeviceError(self.name, f"adb binary {self.adb_binary!r} not found") from None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as e:
            if on_timeout is not None:
                on_timeout(e.stdout or b"")
            out, err = _finish(proc, _FINISH_GRACE if on_timeout else 0.0)
            return ShellOutput(out, err, timed_out=True)
        finally:
            if proc.poll() is None:  # Ctrl-C or an error above: never leave an adb client behind
                proc.kill()
                proc.wait()
        # adb exits with the command's status (shell_v2) or 0, also when the device vanished:
        # whether the output is complete is decided by the caller's end marker, not by this code.
        failure = _last_line(err) if proc.returncode != 0 else None
        return ShellOutput(out, err, failure=failure)

    def shell_aside(self, command: str, timeout: float) -> ShellOutput:
        return self.shell(command, timeout)

    def push(self, local: Path, remote: str, timeout: float) -> None:
        r = self._adb("push", str(local), remote, timeout=timeout)
        if r.returncode != 0:
            raise TransferError(_adb_error(r))

    def pull(self, remote: str, local: Path, timeout: float) -> None:
        r = self._adb("pull", remote, str(local), timeout=timeout)
        if r.returncode != 0:
            raise TransferError(_adb_error(r))


def _adb_error(r: subprocess.CompletedProcess) -> str:
    """adb 29 prints push/pull errors on stdout, followed by a summary line: find the error."""
    lines = [ln.strip() for ln in (r.stdout + r.stderr).decode(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or [f"adb exited {r.returncode}"])[-1]


class TransferError(Exception):
    """push/pull reached the device, which refused (full disk, permission): not a lost connection."""


def _finish(proc: subprocess.Popen, grace: float) -> tuple[bytes, bytes]:
    """Let a local adb client exit within `grace` seconds, else kill it; returns all its output."""
    try:
        return proc.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
    try:
        return proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a grandchild holds the pipes: stop waiting
        return b"", b""


def _unauthorized_text(who: str, key: str) -> str:
    return (f"device {who} is unauthorized: accept the 'Allow USB debugging?' RSA prompt on the phone "
            f"(tick 'Always allow'), or check that {key} is the key the phone trusts")


def _normalize_address(address: str) -> str:
    """'host' -> 'host:5555' (what adb itself uses as the serial of a TCP device)."""
    if not address or address.startswith("-") or any(c.isspace() for c in address):
        raise ValueError(f"invalid adb address {address!r}")
    if address.startswith("["):
        return address if "]:" in address else address + ":5555"
    return address if address.count(":") == 1 else f"{address}:5555"


def split_address(address: str) -> tuple[str, int]:
    host, _, port = _normalize_address(address).rpartition(":")
    return host.strip("[]"), int(port)


# ---------------------------------------------------------------------------------------------
# Direct mode (adb-shell)


class _Deadline(Exception):
    """Our own deadline passed while waiting for the device."""


def _tcp_transport_class():
    from adb_shell.exceptions import TcpTimeoutException
    from adb_shell.transport.tcp_transport import TcpTransport

    class _TcpTransport(TcpTransport):
        """adb-shell's TCP transport, plus EOF detection, complete writes and an optional deadline."""

        deadline: float | None = None  # time.monotonic() value; bounds every wait when set

        def _wait(self, transport_timeout_s: float | None, write: bool) -> None:
            sock = self._connection
            if sock is None:
                raise ConnectionResetError("connection closed")
            limit = transport_timeout_s
            if self.deadline is not None:
                left = max(0.0, self.deadline - time.monotonic())
                limit = left if limit is None else min(limit, left)
            r, w, _ = select.select([] if write else [sock], [sock] if write else [], [], limit)
            if not (r or w):
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    raise _Deadline()
                raise TcpTimeoutException(f"no data from {self._host}:{self._port} within {limit}s")

        def bulk_read(self, numbytes, transport_timeout_s):
            self._wait(transport_timeout_s, write=False)
            data = self._connection.recv(numbytes)
            if not data:  # the stock transport returns b"" here and adb-shell spins until its timeout
                raise ConnectionResetError(f"{self._host}:{self._port} closed the connection")
            return data

        def bulk_write(self, data, transport_timeout_s):
            view = memoryview(data)
            while view:  # the socket is non-blocking: one send() may take only part of it
                self._wait(transport_timeout_s, write=True)
                try:
                    view = view[self._connection.send(view):]
                except BlockingIOError:
                    continue
            return len(data)

    return _TcpTransport


def _adb_shell_errors() -> tuple[type[BaseException], ...]:
    from adb_shell import exceptions as x

    return (OSError, _Deadline, x.AdbConnectionError, x.AdbTimeoutError, x.TcpTimeoutException,
            x.InvalidResponseError, x.InvalidCommandError, x.InvalidChecksumError,
            x.UsbReadFailedError, x.UsbWriteFailedError)


class DirectTransport:
    """adb-shell over TCP (`direct-tcp`) or libusb (`direct-usb`); one connection, used serially."""

    def __init__(self, name: str, *, mode: str, address: str | None, serial: str | None,
                 adbkey: Path, connect_timeout: float, read_timeout: float):
        self.name = name
        self.mode = mode
        if mode == "direct-tcp":
            if not address:
                raise ValueError("direct-tcp mode needs an address (host:port)")
            self.host, self.port = split_address(address)
        self.serial = serial
        self.adbkey = Path(adbkey).expanduser()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._dev = None
        self._tcp = None  # our _TcpTransport, for deadlines
        self._signer = None
        self._lock = threading.RLock()

    def describe(self) -> str:
        if self.mode == "direct-tcp":
            return f"{self.host}:{self.port}"
        return f"USB {self.serial or '(first device)'}"

    # -- connection
    def _open(self):
        """A new, connected adb-shell AdbDevice (raises DeviceError)."""
        from adb_shell.adb_device import AdbDevice

        if self._signer is None:
            self._signer = load_signer(self.adbkey)
        if self.mode == "direct-tcp":
            tcp = _tcp_transport_class()(self.host, self.port)
            dev = AdbDevice(tcp, default_transport_timeout_s=None)
        else:
            tcp = None
            try:
                from adb_shell.adb_device import AdbDeviceUsb

                dev = AdbDeviceUsb(serial=self.serial, default_transport_timeout_s=self.read_timeout)
            except ImportError as e:
                raise DeviceError(self.name, f"direct-usb needs `pip install adb-shell[usb]` "
                                             f"(libusb1): {e}") from None
            except Exception as e:  # UsbDeviceNotFoundError, InvalidTransportError, libusb errors
                raise DeviceError(self.name, f"cannot open USB device {self.serial or ''}: {e} "
                                             f"(is an adb server holding it? use mode: server)") from None
        asked = []  # adb-shell calls this when no signature was accepted and it offers the public key
        try:
            dev.connect(rsa_keys=[self._signer], transport_timeout_s=self.connect_timeout,
                        auth_timeout_s=self.connect_timeout, read_timeout_s=self.connect_timeout,
                        auth_callback=lambda _m: asked.append(True))
        except ConnectionRefusedError:
            dev.close()
            raise DeviceError(self.name, f"connection refused by {self.describe()}: adbd is not listening "
                                         f"there (wireless debugging / `adb tcpip` off, or wrong port)") from None
        except _adb_shell_errors() as e:
            dev.close()
            if asked:
                raise DeviceError(self.name, _unauthorized_text(self.describe(), str(self.adbkey))) from None
            if isinstance(e, (socket.timeout, TimeoutError)):
                raise DeviceError(self.name, f"cannot reach {self.describe()}: no answer within "
                                             f"{self.connect_timeout:g}s") from None
            raise DeviceError(self.name, f"cannot connect to {self.describe()}: "
                                         f"{e or type(e).__name__}") from None
        return dev, tcp

    def connect(self) -> None:
        with self._lock:
            self.close()
            self._dev, self._tcp = self._open()

    def reconnect(self) -> None:
        self.connect()

    def ensure(self) -> None:
        with self._lock:
            if self._dev is None:
                self._dev, self._tcp = self._open()

    def mark_lost(self) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            dev, self._dev, self._tcp = self._dev, None, None
            if dev is not None:
                try:
                    dev.close()
                except Exception:  # closing a dead socket must not hide the real error
                    pass

    def explain(self, failure: str) -> DeviceError:
        self.close()
        return DeviceError(self.name, f"connection to {self.describe()} failed: {failure}")

    # -- operations
    def shell(self, command: str, timeout: float, on_timeout: OnTimeout | None = None) -> ShellOutput:
        """Run a command line (legacy `shell:` service: one output stream, no exit code).

        A reader thread collects the output while we wait; at the timeout `on_timeout` kills the
        remote command (over a second connection, see shell_aside), so the stream ends by itself and
        nothing already written is lost. A wedged stream is cut by closing the connection.
        """
        with self._lock:
            self.ensure()
            dev = self._dev
            chunks: list[bytes] = []
            error: list[BaseException] = []

            # TCP reads wait for data or EOF without limit (we time the run here); a libusb read
            # needs a finite limit, set past our deadline so a quiet command is not cut short.
            per_read = None if self._tcp is not None else timeout + _FINISH_GRACE + 5

            def pump() -> None:
                try:
                    for chunk in dev.streaming_shell(command, transport_timeout_s=per_read,
                                                     read_timeout_s=_BIG, decode=False):
                        chunks.append(chunk)
                except BaseException as e:  # reported to the caller below
                    error.append(e)

            reader = threading.Thread(target=pump, name=f"adb-shell-{self.name}", daemon=True)
            reader.start()
            reader.join(timeout)
            timed_out = reader.is_alive()
            if timed_out:
                if on_timeout is not None:
                    on_timeout(b"".join(chunks))
                    reader.join(_FINISH_GRACE)
                if reader.is_alive():
                    self.close()  # EOF wakes the reader; the device-side watchdog does the rest
                    reader.join(5)
            out = b"".join(chunks)
            if timed_out:
                if error:
                    self.close()
                return ShellOutput(out, timed_out=True)
            if error:
                self.close()  # the connection is in an unknown state: the next call reconnects
                e = error[0]
                return ShellOutput(out, failure=f"{type(e).__name__}: {e}".rstrip(": "))
            return ShellOutput(out)

    def shell_aside(self, command: str, timeout: float) -> ShellOutput:
        """A short command while `shell` is still running: over TCP a second connection (adbd
        accepts several); USB has one interface, so the running stream is cut first."""
        if self.mode != "direct-tcp":
            self.close()
            return self.shell(command, timeout)
        try:
            dev, tcp = self._open()
        except DeviceError as e:
            return ShellOutput(b"", failure=str(e))
        try:
            tcp.deadline = time.monotonic() + timeout
            return ShellOutput(dev.shell(command, transport_timeout_s=None, read_timeout_s=_BIG, decode=False))
        except _adb_shell_errors() as e:
            return ShellOutput(b"", failure=f"{type(e).__name__}: {e}")
        finally:
            dev.close()

    def _transfer(self, timeout: float, fn) -> None:
        from adb_shell.exceptions import AdbCommandFailureException, PushFailedError

        with self._lock:
            self.ensure()
            if self._tcp is not None:
                self._tcp.deadline = time.monotonic() + timeout
            try:
                fn(self._dev)
            except (PushFailedError, AdbCommandFailureException) as e:
                raise TransferError(_sync_message(e)) from None
            except _adb_shell_errors() as e:
                self.close()
                if isinstance(e, _Deadline):
                    raise ConnectionError(f"no progress within {timeout:.0f}s") from None
                raise ConnectionError(f"{type(e).__name__}: {e}") from None
            finally:
                if self._tcp is not None:
                    self._tcp.deadline = None

    def push(self, local: Path, remote: str, timeout: float) -> None:
        st = os.stat(local)
        mode = stat.S_IFREG | stat.S_IMODE(st.st_mode)

        def send(dev) -> None:
            dev.push(str(local), remote, st_mode=mode, mtime=int(st.st_mtime),
                     transport_timeout_s=self.read_timeout, read_timeout_s=self.read_timeout)

        self._transfer(timeout, send)

    def pull(self, remote: str, local: Path, timeout: float) -> None:
        def receive(dev) -> None:
            dev.pull(remote, str(local), transport_timeout_s=self.read_timeout, read_timeout_s=self.read_timeout)

        self._transfer(timeout, receive)


def _sync_message(e: BaseException) -> str:
    """adb-shell wraps the device's FAIL text in bytes/tuples; dig the words out."""
    text = " ".join(a.decode(errors="replace") if isinstance(a, (bytes, bytearray)) else str(a)
                    for a in e.args)
    return text.strip() or type(e).__name__
