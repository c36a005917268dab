"""A device-side ADB endpoint ("adbd") on loopback, so tests can drive real ADB clients without a phone.

`AdbDaemon(sandbox)` listens on 127.0.0.1 and speaks the ADB wire protocol over TCP, the transport
that `adb connect HOST:PORT` uses. Debian's `adb` (29.x) and the Python `adb-shell` library both talk
to it as to a phone:

    with AdbDaemon(tmp_path / "device") as dev:
        subprocess.run(["adb", "connect", dev.address])
        ...                                  # adb -s dev.address shell/push/pull

What it implements (and so what its CNXN banner advertises, nothing more):
  * messages CNXN, AUTH, OPEN, OKAY, WRTE, CLSE; versions 0x01000000 (checksums sent and checked)
    and 0x01000001 (checksums skipped); the peer's max payload is respected, ours is 1 MiB;
  * auth: AUTH TOKEN, then a SIGNATURE is checked against `authorized_keys` (RSA PKCS#1 v1.5 over
    the token, as adb signs it); with `authorized_keys=None` any signature or public key is
    accepted (a user who always taps "allow"). An unknown RSAPUBLICKEY leaves the connection
    unauthorized, as on a phone whose user never answers; `require_auth=False` skips AUTH;
  * `shell:CMD`, `shell,v2,...:CMD` (feature shell_v2: separate stderr and the exit code), `exec:CMD`.
    CMD runs as `/bin/sh -c CMD` on this host, cwd = sandbox, on pipes (a `pty` request gets pipes
    too); an empty CMD runs `/bin/sh` on stdin. Killed by a signal, the exit code is 0x80|signal.
    Closing the stream hangs the command up (SIGHUP to its process group, SIGKILL 2 s later);
  * `sync:` with STAT, STA2, LST2 (stat_v2), LIST, LIS2 (ls_v2), SEND (parents are created:
    fixed_push_mkdir), RECV, QUIT. Not SND2/RCV2 or compression (never advertised), nor symlinks;
  * `getprop [NAME [DEFAULT]]`: a shell shim on PATH prints the configured `properties`.

Sandbox path mapping. Device paths never touch the host's real /data or /sdcard:
  * sync paths (push/pull/stat/ls): the longest `path_map` prefix wins (default `/data/local/tmp`
    -> SANDBOX/data/local/tmp and `/sdcard` -> SANDBOX/sdcard); any other absolute path P maps to
    SANDBOX/P. `host_path()` tells where a device path lands;
  * shell commands: every occurrence of a `path_map` prefix that stands as a whole path component
    (`/data/local/tmp/x`, `'/data/local/tmp'`, not `/x/data/local/tmp`) is rewritten textually to
    its host folder before the command runs. Only those prefixes are rewritten: `/proc`, `/sys` and
    the rest are the host's. Output is not rewritten back (`pwd` shows host paths), and a prefix
    built at run time (`d=/data; cd $d/local/tmp`) is missed. `QBENCH_DEVICE_ROOT` (the sandbox) and
    `TMPDIR` (the mapped /data/local/tmp, as on Android) are exported to commands.
The sandbox is where files land, not a security boundary: commands run as this user on this host.
That is why the daemon only listens on a loopback address.

For failure tests: `kill_connections()` drops every connection abruptly and SIGKILLs the commands
they ran (a phone that vanished); the daemon keeps listening, and adb's server reconnects by itself.
`stop()` also closes the listener; `start()` again comes back on the same port (a phone that rebooted).

What the clients do when the device vanishes mid-command (seen in the tests): adb 29 exits 0 with
the output cut short (no exit packet came), so callers need an end marker such as `; echo __rc=$?`;
adb-shell does not notice the EOF and raises only when its read_timeout_s runs out.

Run by hand or from CI: `python -m qbench.testing.adbd --sandbox DIR --port N` (see `--help`).
"""

from __future__ import annotations

import argparse
import base64
import hmac
import ipaddress
import logging
import os
import posixpath
import re
import secrets
import select
import selectors
import shlex
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Iterable

log = logging.getLogger(__name__)


def _id(name: bytes) -> int:
    return struct.unpack("<I", name)[0]


A_SYNC, A_CNXN, A_AUTH, A_OPEN = _id(b"SYNC"), _id(b"CNXN"), _id(b"AUTH"), _id(b"OPEN")
A_OKAY, A_CLSE, A_WRTE, A_STLS = _id(b"OKAY"), _id(b"CLSE"), _id(b"WRTE"), _id(b"STLS")
_KNOWN_COMMANDS = {A_SYNC, A_CNXN, A_AUTH, A_OPEN, A_OKAY, A_CLSE, A_WRTE, A_STLS}

A_VERSION_MIN = 0x01000000
A_VERSION_SKIP_CHECKSUM = 0x01000001  # from this version on neither side sends checksums
A_VERSION = A_VERSION_SKIP_CHECKSUM
MAX_PAYLOAD = 1024 * 1024  # what we accept and advertise (modern adbd's value)
MIN_PEER_PAYLOAD = 4096  # the oldest clients' hard-coded maxdata
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
TOKEN_SIZE = 20  # adb refuses to sign tokens of any other size
HEADER = struct.Struct("<6I")

SUPPORTED_FEATURES = ("shell_v2", "stat_v2", "ls_v2", "fixed_push_mkdir")

MAX_CONNECTIONS = 32
MAX_STREAMS = 128  # per connection
MAX_INBOX = 8  # unacknowledged WRTEs per stream; the protocol allows one, we tolerate a few
MAX_AUTH_MESSAGES = 32
SYNC_DATA_MAX = 64 * 1024
SYNC_PATH_MAX = 1024
HANGUP_GRACE_S = 2.0

DEFAULT_PROPERTIES = {
    "ro.product.manufacturer": "qbench",
    "ro.product.brand": "qbench",
    "ro.product.model": "qbench_virtual",
    "ro.product.name": "qbench_virtual",
    "ro.product.device": "qbench_virtual",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.product.cpu.abilist": "arm64-v8a,armeabi-v7a,armeabi",
    "ro.soc.manufacturer": "qbench",
    "ro.soc.model": "virtual",
    "ro.hardware": "qbench",
    "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
    "ro.build.type": "userdebug",
}

_INSTANCE_VAR = "QBENCH_ADBD_INSTANCE"
_SHELL_SAFE_PATH = re.compile(r"[A-Za-z0-9_./+@%,:=-]+")
# ASN.1 DigestInfo prefix for SHA-1: adb signs the 20-byte token as if it were a SHA-1 digest.
_SHA1_DIGEST_INFO = bytes.fromhex("3021300906052b0e03021a05000414")


class _ProtocolError(Exception):
    """The peer broke the protocol: the whole connection is closed."""


class _StreamClosed(Exception):
    """The stream (or its connection) went away while a worker was using it."""


# ---------------------------------------------------------------------------------------------
# Keys


def parse_adb_public_key(text: str | bytes) -> tuple[int, int]:
    """(modulus, exponent) of an adbkey.pub line: base64 of Android's RSAPublicKey struct, then a comment."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    blob = base64.b64decode(text.strip().strip("\0").split()[0], validate=True)
    (words,) = struct.unpack_from("<I", blob, 0)
    size = 4 * words
    if words == 0 or len(blob) < 8 + 2 * size + 4:
        raise ValueError("not an adb public key")
    modulus = int.from_bytes(blob[8 : 8 + size], "little")  # after len and n0inv
    (exponent,) = struct.unpack_from("<I", blob, 8 + 2 * size)  # after modulus and rr
    return modulus, exponent


def _signature_ok(key: tuple[int, int], token: bytes, signature: bytes) -> bool:
    n, e = key
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    suffix = _SHA1_DIGEST_INFO + token
    expected = b"\x00\x01" + b"\xff" * (k - 3 - len(suffix)) + b"\x00" + suffix
    return hmac.compare_digest(em, expected)


def _load_keys(keys: Iterable[str] | str | Path) -> list[tuple[int, int]]:
    if isinstance(keys, (str, Path)) and Path(keys).is_file():
        keys = Path(keys).read_text().splitlines()
    elif isinstance(keys, (str, Path)):
        raise ValueError(f"authorized_keys file not found: {keys}")
    return [parse_adb_public_key(line) for line in keys if line.strip()]


# ---------------------------------------------------------------------------------------------
# Streams


class _Stream:
    """One ADB stream. The connection's reader thread feeds it; a worker thread of its own runs it.

    Flow control, both ways: we send OKAY for a peer's WRTE only once the worker has taken it, and
    we send our next WRTE only after the peer's OKAY (an OPEN counts as the first OKAY).
    """

    def __init__(self, conn: _Connection, local_id: int, remote_id: int, service: str):
        self.conn, self.local_id, self.remote_id, self.service = conn, local_id, remote_id, service
        self._cond = threading.Condition()
        self._can_write = True
        self._closed = False
        self._inbox: deque[bytes] = deque()

    # -- called by the connection's reader thread
    def on_okay(self) -> None:
        with self._cond:
            self._can_write = True
            self._cond.notify_all()

    def on_write(self, data: bytes) -> None:
        with self._cond:
            if len(self._inbox) >= MAX_INBOX:
                raise _ProtocolError(f"stream {self.local_id}: WRTE without waiting for OKAY")
            self._inbox.append(data)
            self._cond.notify_all()

    def on_close(self, abrupt: bool) -> None:
        """The peer closed the stream (abrupt=False) or the connection died (abrupt=True)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- called by the worker
    def start(self) -> None:
        threading.Thread(target=self._run, name=f"adbd-stream-{self.service[:20]}", daemon=True).start()

    def _run(self) -> None:
        try:
            self.run()
        except (_StreamClosed, OSError) as e:
            log.debug("stream %d (%s) ended: %s", self.local_id, self.service, e)
        except Exception:  # a bug here must not take the daemon down
            log.exception("stream %d (%s) failed", self.local_id, self.service)
        finally:
            self.finish()

    def run(self) -> None:
        raise NotImplementedError

    def recv(self) -> bytes | None:
        """The next payload the peer wrote, or None once the stream is closed."""
        with self._cond:
            while not self._inbox and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            data = self._inbox.popleft()
        self.conn.send(A_OKAY, self.local_id, self.remote_id)
        return data

    def write(self, data: bytes) -> None:
        """Send data in WRTEs no larger than the peer accepts, one OKAY round trip each."""
        view = memoryview(data)
        step = self.conn.max_out
        for i in range(0, len(view), step):
            with self._cond:
                while not self._can_write and not self._closed:
                    self._cond.wait()
                if self._closed:
                    raise _StreamClosed("closed while writing")
                self._can_write = False
            self.conn.send(A_WRTE, self.local_id, self.remote_id, bytes(view[i : i + step]))

    def finish(self) -> None:
        """We are done: tell the peer (once), unless it closed the stream first."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self.conn.forget_stream(self):
            try:
                self.conn.send(A_CLSE, self.local_id, self.remote_id)
            except OSError:
                pass


class _ShellStream(_Stream):
    """shell:/exec: — a /bin/sh process; with `v2`, output goes in shell-protocol packets."""

    STDIN, STDOUT, STDERR, EXIT, CLOSE_STDIN, WINDOW_SIZE = 0, 1, 2, 3, 4, 5
    PACKET = struct.Struct("<BI")

    def __init__(self, conn: _Connection, local_id: int, remote_id: int, service: str, command: str, v2: bool):
        super().__init__(conn, local_id, remote_id, service)
        self.command, self.v2 = command, v2
        self.proc: subprocess.Popen | None = None
        self._stdin_lock = threading.Lock()
        self._stdin_abandoned = False

    def on_close(self, abrupt: bool) -> None:
        super().on_close(abrupt)
        # A hung-up stream sends SIGHUP like adbd does; a vanished device takes everything with it.
        self._signal(signal.SIGKILL if abrupt else signal.SIGHUP)

    def _signal(self, sig: int) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return  # once reaped, its group id may belong to someone else
        try:
            os.killpg(proc.pid, sig)  # the whole group: `sh -c` children too
        except (ProcessLookupError, PermissionError):
            pass

    def run(self) -> None:
        daemon = self.conn.daemon
        argv = ["/bin/sh", "-c", daemon.rewrite_command(self.command)] if self.command else ["/bin/sh"]
        try:
            self.proc = subprocess.Popen(
                argv, cwd=daemon.sandbox, env=daemon.shell_env(), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE if self.v2 else subprocess.STDOUT,
                bufsize=0, start_new_session=True,
            )
        except OSError as e:
            self._output(self.STDERR, f"/bin/sh: {e}\n".encode())
            if self.v2:
                self._packet(self.EXIT, bytes([126]))
            return
        if self._closed:  # closed while we were starting it
            self._signal(signal.SIGKILL)
        threading.Thread(target=self._feed_stdin, name="adbd-stdin", daemon=True).start()
        try:
            self._pump_output()
            code = self._wait()
            if code is not None and self.v2:
                self._packet(self.EXIT, bytes([code]))
        finally:
            self._reap()

    def _pump_output(self) -> None:
        assert self.proc is not None
        hdr = self.PACKET.size if self.v2 else 0
        chunk = max(1, min(self.conn.max_out - hdr, 64 * 1024))
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ, self.STDOUT)
        if self.proc.stderr is not None:
            sel.register(self.proc.stderr, selectors.EVENT_READ, self.STDERR)
        try:
            while sel.get_map():
                if self._closed:
                    return
                for key, _ in sel.select(timeout=0.2):
                    data = os.read(key.fd, chunk)
                    if data:
                        self._output(key.data, data)
                    else:
                        sel.unregister(key.fileobj)
        finally:
            sel.close()

    def _wait(self) -> int | None:
        """The exit status as adbd reports it (0x80|signal when killed), or None if hung up."""
        assert self.proc is not None
        while not self._closed:
            try:
                rc = self.proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            return (0x80 | -rc) if rc < 0 else rc & 0xFF
        return None

    def _reap(self) -> None:
        """After a normal exit this returns at once; a hung-up command gets SIGKILL after a grace."""
        assert self.proc is not None
        try:
            self.proc.wait(timeout=HANGUP_GRACE_S)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.warning("shell pid %d did not die", self.proc.pid)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()
        self._stdin_abandoned = True
        self._close_stdin()

    def _output(self, kind: int, data: bytes) -> None:
        if self.v2:
            self._packet(kind, data)
        else:
            self.write(data)

    def _packet(self, kind: int, data: bytes) -> None:
        self.write(self.PACKET.pack(kind, len(data)) + data)

    def _feed_stdin(self) -> None:
        kind, left, header = None, 0, bytearray()
        while (data := self.recv()) is not None:
            if not self.v2:
                self._to_stdin(data)
                continue
            # shell protocol: [id:1][len:4][data], packets split across WRTEs as the client likes
            pos = 0
            while pos < len(data):
                if kind is None:
                    take = self.PACKET.size - len(header)
                    header += data[pos : pos + take]
                    pos += take
                    if len(header) < self.PACKET.size:
                        break
                    kind, left = self.PACKET.unpack(header)
                    header.clear()
                else:
                    piece = data[pos : pos + left]
                    pos += len(piece)
                    left -= len(piece)
                    if kind == self.STDIN:
                        self._to_stdin(piece)
                if kind is not None and left == 0:
                    if kind == self.CLOSE_STDIN:
                        self._close_stdin()
                    kind = None  # window-size changes and unknown ids are ignored
        self._close_stdin()

    def _to_stdin(self, data: bytes) -> None:
        with self._stdin_lock:
            pipe = self.proc.stdin if self.proc else None
            if pipe is None or pipe.closed:
                return
            fd, view = pipe.fileno(), memoryview(data)
            os.set_blocking(fd, False)  # a command that never reads stdin must not wedge _reap
            while view and not self._stdin_abandoned:
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    select.select([], [fd], [], 0.2)
                except OSError:  # the command closed its stdin or died: drop the input like adbd
                    return

    def _close_stdin(self) -> None:
        with self._stdin_lock:
            if self.proc and self.proc.stdin and not self.proc.stdin.closed:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass


class _SyncStream(_Stream):
    """sync: — the file service behind push/pull/stat/ls (SYNC.TXT)."""

    def __init__(self, conn: _Connection, local_id: int, remote_id: int, service: str):
        super().__init__(conn, local_id, remote_id, service)
        self._pending = bytearray()
        self._out = bytearray()

    def run(self) -> None:
        while self._request():
            self._flush()
        self._flush()

    # -- byte-stream helpers over WRTE payloads (sync messages ignore WRTE boundaries)
    def _read(self, n: int) -> bytes:
        while len(self._pending) < n:
            data = self.recv()
            if data is None:
                raise _StreamClosed("sync stream closed")
            self._pending += data
        out = bytes(self._pending[:n])
        del self._pending[:n]
        return out

    def _emit(self, data: bytes) -> None:
        self._out += data
        if len(self._out) >= self.conn.max_out:
            self._flush()

    def _flush(self) -> None:
        if self._out:
            data, self._out = bytes(self._out), bytearray()
            self.write(data)

    def _fail(self, message: str) -> None:
        msg = message.encode("utf-8", "replace")
        self._emit(struct.pack("<4sI", b"FAIL", len(msg)) + msg)
        self._flush()

    # -- requests
    def _request(self) -> bool:
        rid, length = struct.unpack("<4sI", self._read(8))
        if length > SYNC_PATH_MAX:
            self._fail("path too long")
            return False
        name = self._read(length).decode("utf-8", "surrogateescape")
        log.debug("sync %s %r", rid, name)
        if rid == b"QUIT":
            return False
        if rid == b"SEND":
            return self._send(name)
        if rid == b"RECV":
            return self._recv(name)
        host = self.conn.daemon.host_path(name)
        if rid == b"STAT":
            st = _stat(host, follow=False)
            mode, size, mtime = (st.st_mode, st.st_size, int(st.st_mtime)) if st else (0, 0, 0)
            self._emit(struct.pack("<4sIII", b"STAT", mode, size & 0xFFFFFFFF, mtime & 0xFFFFFFFF))
        elif rid in (b"STA2", b"LST2"):
            self._emit(_stat_v2(rid, host, follow=rid == b"STA2"))
        elif rid in (b"LIST", b"LIS2"):
            self._list(host, v2=rid == b"LIS2")
        else:
            self._fail(f"unknown command {rid!r}")
            return False
        return True

    def _list(self, host: Path, v2: bool) -> None:
        names = [".", ".."]
        try:
            names += sorted(os.listdir(host))
        except OSError:
            names = []  # adbd answers a missing directory with DONE alone
        for name in names:
            path = os.path.join(host, name)
            raw = os.fsencode(name)
            if v2:
                self._emit(_stat_v2(b"DNT2", Path(path), follow=False) + struct.pack("<I", len(raw)) + raw)
                continue
            st = _stat(Path(path), follow=False)
            if st is None:
                continue
            size, mtime = st.st_size & 0xFFFFFFFF, int(st.st_mtime) & 0xFFFFFFFF
            self._emit(struct.pack("<4sIIII", b"DENT", st.st_mode, size, mtime, len(raw)) + raw)
        # DONE has the size of a directory entry (without name), as the client reads that many bytes
        self._emit(b"DONE" + bytes(_DNT2_SIZE - 4 if v2 else 16))

    def _send(self, spec: str) -> bool:
        path, comma, mode_text = spec.rpartition(",")
        try:
            if not comma:
                raise ValueError
            mode = _parse_mode(mode_text)
        except ValueError:
            self._fail("missing , in ID_SEND_V1" if not comma else "bad mode")
            return False
        if stat.S_ISLNK(mode):
            return self._send_failed(None, "symlinks are not supported by this test adbd")
        host = self.conn.daemon.host_path(path)
        perm = mode & 0o777
        perm |= (perm >> 3) & 0o070  # adbd copies the user bits to group and other
        perm |= (perm >> 3) & 0o007
        try:
            host.parent.mkdir(parents=True, exist_ok=True)
            if host.is_symlink() or host.is_file():
                host.unlink()  # adbd replaces regular files rather than writing through them
            fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, perm)
        except OSError as e:
            return self._send_failed(None, f"couldn't create file: {e.strerror}")
        try:
            with os.fdopen(fd, "wb", buffering=0) as f:
                while True:
                    rid, size = struct.unpack("<4sI", self._read(8))
                    if rid == b"DONE":
                        mtime = size  # DONE carries the mtime in its length field
                        break
                    if rid != b"DATA" or size > SYNC_DATA_MAX:
                        self._fail("invalid data message" if rid != b"DATA" else "oversize data message")
                        host.unlink(missing_ok=True)
                        return False
                    data = memoryview(self._read(size))
                    try:
                        while data:
                            data = data[f.write(data) :]
                    except OSError as e:
                        return self._send_failed(host, f"write failed: {e.strerror}")
            os.chmod(host, perm)  # the umask trimmed what os.open set
            os.utime(host, (mtime, mtime))
        except _StreamClosed:
            host.unlink(missing_ok=True)  # a half-pushed file must not look complete
            raise
        except OSError as e:
            self._fail(f"couldn't finish file: {e.strerror}")
            return False
        self._emit(struct.pack("<4sI", b"OKAY", 0))
        return True

    def _send_failed(self, host: Path | None, message: str) -> bool:
        """Report FAIL, then swallow the rest of the upload like adbd (old clients keep writing)."""
        self._fail(message)
        while True:
            rid, size = struct.unpack("<4sI", self._read(8))
            if rid == b"DONE":
                break
            if rid != b"DATA" or size > SYNC_DATA_MAX:
                break
            self._read(size)
        if host is not None:
            host.unlink(missing_ok=True)
        return False

    def _recv(self, name: str) -> bool:
        host = self.conn.daemon.host_path(name)
        try:
            f = open(host, "rb")
        except OSError as e:
            self._fail(f"open failed: {e.strerror}")
            return False
        with f:
            while True:
                try:
                    data = f.read(SYNC_DATA_MAX)
                except OSError as e:
                    self._fail(f"read failed: {e.strerror}")
                    return False
                if not data:
                    break
                self._emit(struct.pack("<4sI", b"DATA", len(data)) + data)
        self._emit(struct.pack("<4sI", b"DONE", 0))
        return True


_STAT_V2 = struct.Struct("<4sIQQIIIIQqqq")
_DNT2_SIZE = _STAT_V2.size + 4  # sync_dent_v2 = stat_v2 + namelen


def _stat(path: Path, follow: bool) -> os.stat_result | None:
    try:
        return os.stat(path) if follow else os.lstat(path)
    except OSError:
        return None


def _stat_v2(rid: bytes, path: Path, follow: bool) -> bytes:
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError as e:
        return _STAT_V2.pack(rid, e.errno or 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    return _STAT_V2.pack(
        rid, 0, st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_uid, st.st_gid, st.st_size,
        int(st.st_atime), int(st.st_mtime), int(st.st_ctime),
    )


def _parse_mode(text: str) -> int:
    """strtoul(text, 0): 0x.. hex, 0.. octal, else decimal (clients send decimal)."""
    text = text.strip()
    if text.lower().startswith("0x"):
        return int(text[2:], 16)
    if text.startswith("0") and len(text) > 1:
        return int(text[1:], 8)
    return int(text, 10)


# ---------------------------------------------------------------------------------------------
# Connections


class _Connection:
    """One TCP connection from an ADB host: handshake, then streams multiplexed over it."""

    def __init__(self, daemon: AdbDaemon, sock: socket.socket, peer: str):
        self.daemon, self.sock, self.peer = daemon, sock, peer
        self.state = "cnxn"  # -> "auth" -> "online"
        self.version = A_VERSION_MIN
        self.max_out = MIN_PEER_PAYLOAD  # the peer's maxdata, once its CNXN says
        self._token = b""
        self._auth_messages = 0
        self._send_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self._streams_lock = threading.Lock()
        self._next_id = 1
        self._closed = False

    # -- I/O
    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        checksum = sum(data) & 0xFFFFFFFF if data and self.version < A_VERSION_SKIP_CHECKSUM else 0
        header = HEADER.pack(command, arg0, arg1, len(data), checksum, command ^ 0xFFFFFFFF)
        with self._send_lock:
            if self._closed:
                raise _StreamClosed("connection closed")
            self.sock.sendall(header + data)

    def _read_exact(self, n: int) -> bytes:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if k == 0:
                raise ConnectionError("peer closed the connection")
            got += k
        return bytes(buf)

    def _read_message(self) -> tuple[int, int, int, bytes]:
        command, arg0, arg1, length, checksum, magic = HEADER.unpack(self._read_exact(HEADER.size))
        if command not in _KNOWN_COMMANDS or magic != command ^ 0xFFFFFFFF:
            raise _ProtocolError(f"bad header (command {command:#x}, magic {magic:#x})")
        if length > MAX_PAYLOAD:
            raise _ProtocolError(f"payload of {length} bytes exceeds {MAX_PAYLOAD}")
        data = self._read_exact(length) if length else b""
        version = arg0 if command == A_CNXN else self.version
        if data and version < A_VERSION_SKIP_CHECKSUM and sum(data) & 0xFFFFFFFF != checksum:
            raise _ProtocolError("bad checksum")
        return command, arg0, arg1, data

    # -- lifecycle
    def serve(self) -> None:
        try:
            self.sock.settimeout(self.daemon.handshake_timeout)  # until online
            while True:
                self._handle(*self._read_message())
        except (_ProtocolError, _StreamClosed, OSError) as e:
            log.debug("connection %s closed: %s", self.peer, e)
        except Exception:
            log.exception("connection %s failed", self.peer)
        finally:
            self.close()

    def close(self) -> None:
        """Drop the connection at once: no CLSEs, commands SIGKILLed (the device vanished)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes our reader and any sendall in flight
        except OSError:
            pass
        with self._send_lock:
            self.sock.close()
        with self._streams_lock:
            streams, self._streams = list(self._streams.values()), {}
        for s in streams:
            s.on_close(abrupt=True)
        self.daemon._forget(self)

    def forget_stream(self, stream: _Stream) -> bool:
        with self._streams_lock:
            return self._streams.pop(stream.local_id, None) is stream

    # -- messages
    def _handle(self, command: int, arg0: int, arg1: int, data: bytes) -> None:
        if command == A_CNXN:
            return self._on_cnxn(arg0, arg1, data)
        if command == A_AUTH:
            return self._on_auth(arg0, data)
        if self.state != "online":
            return  # protocol.txt: anything before the CONNECT is ignored
        if command == A_OPEN:
            return self._on_open(arg0, data)
        if command in (A_OKAY, A_WRTE, A_CLSE):
            with self._streams_lock:
                stream = self._streams.get(arg1)
                if stream is None or stream.remote_id != arg0:
                    return  # stale: the stream was closed while this was in flight
                if command == A_CLSE:
                    del self._streams[arg1]
            if command == A_OKAY:
                stream.on_okay()
            elif command == A_WRTE:
                stream.on_write(data)
            else:
                stream.on_close(abrupt=False)
                # adbd answers a CLSE with its own (adb-shell waits for it)
                self.send(A_CLSE, stream.local_id, stream.remote_id)
            return
        raise _ProtocolError(f"unexpected command {struct.pack('<I', command)!r}")

    def _on_cnxn(self, version: int, maxdata: int, banner: bytes) -> None:
        if version < A_VERSION_MIN or maxdata < MIN_PEER_PAYLOAD:
            raise _ProtocolError(f"unsupported CNXN version {version:#x} maxdata {maxdata}")
        if self.state == "online":  # a reconnect on the same socket: start over
            with self._streams_lock:
                streams, self._streams = list(self._streams.values()), {}
            for s in streams:
                s.on_close(abrupt=True)
        self.version = min(version, A_VERSION)
        self.max_out = min(maxdata, MAX_PAYLOAD)
        log.debug("CNXN from %s: version %#x maxdata %d banner %r", self.peer, version, maxdata, banner)
        if self.daemon.require_auth:
            self.state = "auth"
            self.sock.settimeout(self.daemon.handshake_timeout)
            self._send_token()
        else:
            self._go_online()

    def _send_token(self) -> None:
        self._token = secrets.token_bytes(TOKEN_SIZE)
        self.send(A_AUTH, AUTH_TOKEN, 0, self._token)

    def _on_auth(self, kind: int, data: bytes) -> None:
        if self.state != "auth":
            return
        self._auth_messages += 1
        if self._auth_messages > MAX_AUTH_MESSAGES:
            raise _ProtocolError("too many AUTH messages")
        keys = self.daemon.authorized_keys
        if kind == AUTH_SIGNATURE:
            if keys is None or any(_signature_ok(k, self._token, data) for k in keys):
                return self._go_online()
            log.info("adbd %s: signature from %s matches no authorized key", self.daemon.address, self.peer)
            self._send_token()  # let the client try its next key
        elif kind == AUTH_RSAPUBLICKEY:
            if keys is None:
                return self._go_online()  # the user who always taps "allow"
            # A phone would ask its user now; nobody is there, so the device stays unauthorized.
            log.info("adbd %s: unknown public key from %s left unauthorized", self.daemon.address, self.peer)

    def _go_online(self) -> None:
        self.state = "online"
        self.sock.settimeout(None)
        self.send(A_CNXN, self.version, self.max_out, self.daemon.banner())

    def _on_open(self, remote_id: int, data: bytes) -> None:
        service = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
        if remote_id == 0:
            raise _ProtocolError("OPEN with local-id 0")
        with self._streams_lock:
            local_id = self._next_id
            self._next_id = self._next_id % 0xFFFFFFFF + 1
            stream = None
            if len(self._streams) < MAX_STREAMS:
                stream = self.daemon._make_stream(self, local_id, remote_id, service)
            if stream is not None:
                self._streams[local_id] = stream
        log.debug("OPEN %r from %s -> %s", service, self.peer, "ok" if stream else "refused")
        if stream is None:
            self.send(A_CLSE, 0, remote_id)
            return
        self.send(A_OKAY, local_id, remote_id)
        stream.start()


# ---------------------------------------------------------------------------------------------
# The daemon


class AdbDaemon:
    """An adbd on loopback that serves a sandbox folder as a phone's file system (see module doc)."""

    def __init__(
        self,
        sandbox: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        serial: str = "qbench-virtual",
        properties: dict[str, str] | None = None,
        *,
        require_auth: bool = True,
        authorized_keys: Iterable[str] | str | Path | None = None,
        path_map: dict[str, Path | str] | None = None,
        features: Iterable[str] | None = None,
        handshake_timeout: float = 30.0,
    ):
        """
        sandbox: host folder that stands for the device's file system (created if missing).
        host/port: where to listen; only loopback addresses, port 0 = any free port.
        serial: reported as ro.serialno.
        properties: added to / overriding DEFAULT_PROPERTIES for getprop and the CNXN banner.
        require_auth: run the AUTH exchange (adb clients expect it); False answers CNXN at once.
        authorized_keys: adbkey.pub lines, or a file of them; None accepts any key.
        path_map: device path prefix -> host folder (default /data/local/tmp and /sdcard in the sandbox).
        features: what the banner advertises; a subset of SUPPORTED_FEATURES (default: all of it).
            `features=()` makes clients fall back to the legacy shell (no exit codes) and STAT v1.
        handshake_timeout: seconds a connection may take to get online before it is dropped.
        """
        if not _is_loopback(host):
            raise ValueError(f"AdbDaemon runs commands for anyone who connects; listen on loopback, not {host!r}")
        self.sandbox = Path(sandbox).resolve()
        self.host, self._requested_port = host, port
        self.serial = serial
        self.require_auth = require_auth
        self.authorized_keys = None if authorized_keys is None else _load_keys(authorized_keys)
        self.handshake_timeout = handshake_timeout
        self.features = tuple(SUPPORTED_FEATURES if features is None else features)
        unknown = set(self.features) - set(SUPPORTED_FEATURES)
        if unknown:
            raise ValueError(f"features not implemented here: {sorted(unknown)}")
        self.properties = {**DEFAULT_PROPERTIES, "ro.serialno": serial, **(properties or {})}
        for name, value in self.properties.items():
            _check_property(name, value)
        self._map_paths(path_map)
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: dict[_Connection, threading.Thread] = {}
        self._instance = secrets.token_hex(8)  # marks the commands we start, see _kill_leftovers
        self._bin_dir: Path | None = None
        self.port = 0

    def _map_paths(self, path_map: dict[str, Path | str] | None) -> None:
        """Device path prefix -> host folder, and the pattern that finds those prefixes in a command."""
        if path_map is None:
            path_map = {"/data/local/tmp": self.sandbox / "data/local/tmp", "/sdcard": self.sandbox / "sdcard"}
        self.path_map: dict[str, Path] = {}
        for prefix, target in path_map.items():
            norm = posixpath.normpath("/" + prefix.strip("/"))
            real = Path(target).resolve()
            if norm == "/" or not _SHELL_SAFE_PATH.fullmatch(str(real)):
                raise ValueError(f"path_map {prefix!r} -> {str(real)!r}: want a non-root prefix, a shell-safe folder")
            self.path_map[norm] = real
        prefixes = sorted(self.path_map, key=len, reverse=True)
        self._prefix_re = re.compile(
            r"(?<![\w./-])(" + "|".join(re.escape(p) for p in prefixes) + r")(?![\w.-])"
        )

    # -- lifecycle
    def start(self) -> AdbDaemon:
        if self._listener is not None:
            raise RuntimeError("already started")
        self.sandbox.mkdir(parents=True, exist_ok=True)
        for target in self.path_map.values():
            target.mkdir(parents=True, exist_ok=True)
        self._bin_dir = Path(tempfile.mkdtemp(prefix="qbench-adbd-bin-"))
        self._write_getprop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port or self._requested_port))  # a restart keeps its port
            sock.listen(16)
        except OSError:
            sock.close()
            shutil.rmtree(self._bin_dir, ignore_errors=True)
            raise
        sock.settimeout(0.2)  # accept() polls so stop() needs no tricks to wake it
        self._listener = sock
        self.port = sock.getsockname()[1]
        self._stopping.clear()
        self._accept_thread = threading.Thread(target=self._accept_loop, name="adbd-accept", daemon=True)
        self._accept_thread.start()
        log.info("adbd listening on %s, sandbox %s", self.address, self.sandbox)
        return self

    def stop(self) -> None:
        """Stop listening, drop every connection, kill every command (background ones too), remove the shim."""
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.kill_connections()
        with self._lock:
            threads = list(self._connections.values())
        for t in threads:
            t.join(timeout=5)
        self._kill_leftovers()
        if self._bin_dir is not None:
            shutil.rmtree(self._bin_dir, ignore_errors=True)
            self._bin_dir = None

    def kill_connections(self) -> int:
        """Drop every connection abruptly (as if the phone were unplugged); returns how many."""
        with self._lock:
            conns = list(self._connections)
        for c in conns:
            c.close()
        return len(conns)

    def __enter__(self) -> AdbDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)

    # -- what clients see
    def banner(self) -> bytes:
        p = self.properties
        props = "".join(f"{k}={p[k]};" for k in ("ro.product.name", "ro.product.model", "ro.product.device"))
        return f"device::{props}features={','.join(self.features)}".encode()

    def set_property(self, name: str, value: str) -> None:
        """Change what getprop prints from now on (the banner is only sent at connect)."""
        _check_property(name, value)
        self.properties[name] = value
        if self._bin_dir is not None:
            self._write_getprop()

    def host_path(self, device_path: str) -> Path:
        """Where a device path lives on this host: the longest path_map prefix, else SANDBOX/path."""
        norm = posixpath.normpath("/" + device_path.lstrip("/"))  # ".." cannot climb above "/"
        for prefix in sorted(self.path_map, key=len, reverse=True):
            if norm == prefix or norm.startswith(prefix + "/"):
                return self.path_map[prefix].joinpath(norm[len(prefix) :].lstrip("/"))
        return self.sandbox.joinpath(norm.lstrip("/"))

    def rewrite_command(self, command: str) -> str:
        """Shell command with mapped device prefixes replaced by their host folders."""
        return self._prefix_re.sub(lambda m: str(self.path_map[m.group(1)]), command)

    def shell_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self._bin_dir}{os.pathsep}{env.get('PATH', os.defpath)}"
        env["QBENCH_DEVICE_ROOT"] = str(self.sandbox)
        env["TMPDIR"] = str(self.host_path("/data/local/tmp"))
        env[_INSTANCE_VAR] = self._instance
        return env

    # -- internals
    def _write_getprop(self) -> None:
        assert self._bin_dir is not None
        props = self._bin_dir / "props"
        tmp = props.with_suffix(".tmp")
        tmp.write_text("".join(f"{k}={v}\n" for k, v in sorted(self.properties.items())))
        tmp.replace(props)  # atomic, so a running getprop never reads half a file
        script = self._bin_dir / "getprop"
        if not script.exists():
            script.write_text(_GETPROP_SH.replace("@PROPS@", shlex.quote(str(props))))
            script.chmod(0o755)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, addr = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self._lock:
                full = len(self._connections) >= MAX_CONNECTIONS
            if full or self._stopping.is_set():
                sock.close()
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, sock, f"{addr[0]}:{addr[1]}")
            thread = threading.Thread(target=conn.serve, name=f"adbd-conn-{addr[1]}", daemon=True)
            with self._lock:
                self._connections[conn] = thread
            thread.start()

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            self._connections.pop(conn, None)

    def _kill_leftovers(self) -> None:
        """SIGKILL what our commands left running (`nohup x &`), found by the marker in their environment."""
        marker = f"{_INSTANCE_VAR}={self._instance}".encode()
        try:
            entries = [e for e in os.scandir("/proc") if e.name.isdigit()]
        except OSError:
            return  # no procfs: running commands were still killed with their connections
        for entry in entries:
            try:
                if marker in Path(entry.path, "environ").read_bytes().split(b"\0"):
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                pass

    def _make_stream(self, conn: _Connection, local_id: int, remote_id: int, service: str) -> _Stream | None:
        if service.startswith("shell:") or service.startswith("shell,"):
            args, sep, command = service[len("shell") :].partition(":")
            if not sep:
                return None
            v2 = "v2" in args.split(",")
            return _ShellStream(conn, local_id, remote_id, service, command, v2)
        if service.startswith("exec:"):
            return _ShellStream(conn, local_id, remote_id, service, service[len("exec:") :], v2=False)
        if service == "sync:":
            return _SyncStream(conn, local_id, remote_id, service)
        return None


_GETPROP_SH = """#!/bin/sh
# getprop of qbench's test adbd: prints the daemon's configured properties.
props=@PROPS@
if [ $# -eq 0 ]; then
    while IFS= read -r line; do
        printf '[%s]: [%s]\\n' "${line%%=*}" "${line#*=}"
    done < "$props"
    exit 0
fi
while IFS= read -r line; do
    if [ "${line%%=*}" = "$1" ]; then
        printf '%s\\n' "${line#*=}"
        exit 0
    fi
done < "$props"
printf '%s\\n' "${2-}"
"""


def _check_property(name: str, value: str) -> None:
    if not name or any(c in name for c in "=\n\r\0") or any(c in str(value) for c in "\n\r\0"):
        raise ValueError(f"bad property {name!r}={value!r}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m qbench.testing.adbd",
        description="A loopback ADB daemon that serves a sandbox folder as a phone (for tests and CI).",
    )
    parser.add_argument("--sandbox", required=True, type=Path, help="host folder that stands for the device")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free port)")
    parser.add_argument("--serial", default="qbench-virtual")
    parser.add_argument("--prop", action="append", default=[], metavar="NAME=VALUE", help="a getprop property")
    parser.add_argument("--no-auth", action="store_true", help="skip the AUTH exchange")
    parser.add_argument("--authorized-keys", type=Path, help="file of adbkey.pub lines; others are refused")
    parser.add_argument("--legacy", action="store_true", help="advertise no features (legacy shell, STAT v1)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    props: dict[str, str] = {}
    for item in args.prop:
        name, eq, value = item.partition("=")
        if not eq:
            parser.error(f"--prop wants NAME=VALUE, got {item!r}")
        props[name] = value
    daemon = AdbDaemon(
        args.sandbox, host=args.host, port=args.port, serial=args.serial, properties=props,
        require_auth=not args.no_auth, authorized_keys=args.authorized_keys,
        features=() if args.legacy else None,
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with daemon:
        print(f"adbd listening on {daemon.address} (sandbox {daemon.sandbox})", flush=True)
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
