"""AdbDevice: an Android phone reached over ADB, through the adb server or directly (adb-shell).

Modes (see adb_transport.py): "server" drives the `adb` binary against the running adb server (the
default: on farm hosts the server owns the USB devices); "direct-tcp" and "direct-usb" speak the
protocol from Python with adb-shell and the key in ~/.android/adbkey (created if absent).

Quoting (remote_shell.py): every remote operation is a *constant* sh script; paths, arguments and env
values travel as positional parameters, each `shlex.quote`d once for the device's shell (mksh):
`exec sh -c '<script>' qbench 'arg1' 'arg 2'`. Nothing variable is ever pasted into a script.

Exit codes and device loss: adb's own status is useless here (the legacy shell protocol and
adb-shell carry no exit code, and adb exits 0 when the device vanishes mid-command), so every
command prints markers carrying a random per-call token: first `TOK-pid <pid>`, then after the
command `TOK-exit <status>`, the command's stderr, and `TOK-end`. The command's stderr goes to a
file in the workdir and is printed after the exit marker, which keeps it apart from stdout even on
the legacy protocol (one merged stream). No end marker means the output was cut short: the device
was lost -> DeviceError (or, with no pid marker either, the command never started: adb's own error).

Timeouts: adbd starts each shell with setsid(), and the wrapper is exec'd in that shell, so its PID
is the process group of the command and everything it forks. At the timeout we kill that group from
a second shell (server: another `adb shell`; direct-tcp: a second connection; direct-usb: after
cutting the first), let the stream end, then kill the local side if it lingers. If the kill cannot
be delivered, a watchdog in the wrapper kills the group `_REMOTE_GRACE` s past the deadline. The
timed-out command's stderr is read back from its file afterwards.
"""

from __future__ import annotations

import logging
import math
import os
import posixpath
import re
import secrets
import shlex
import stat
import time
from pathlib import Path

from qbench.devices.adb_transport import (
    DirectTransport,
    ServerTransport,
    ShellOutput,
    TransferError,
    list_adb_devices,
)
from qbench.devices.base import Device, DeviceInfo, RunResult
from qbench.hashing import file_sha256
from qbench.devices.linux_info import INFO_SCRIPT, THERMAL_SCRIPT, parse_info, parse_thermal, split_sections
from qbench.devices.remote_shell import HASH_FN, check_landed, env_args, last_line, relative_name, remote_command
from qbench.errors import DeviceError

__all__ = ["AdbDevice", "list_adb_devices"]

log = logging.getLogger(__name__)

MODES = ("server", "direct-tcp", "direct-usb")
_REMOTE_GRACE = 10  # seconds the on-device watchdog waits past the local timeout
_KILL_TIMEOUT = 10.0  # bound on the extra shell that kills a timed-out group
_PROTECTED = {"/data", "/data/local", "/data/local/tmp", "/sdcard", "/storage", "/storage/emulated/0"}

# $1 workdir, $2 watchdog seconds, $3 token, $4 number of KEY=VALUE args, then those, then argv.
# The watchdog is a subshell in the same process group with stdio on /dev/null (it never holds the
# stream open); it sleeps in a child it can kill, so a normal finish leaves nothing behind.
_RUN_WRAPPER = r"""
wd=$1 lim=$2 t=$3 n=$4; shift 4
while [ "$n" -gt 0 ]; do export "$1"; shift; n=$((n - 1)); done
echo "$t-pid $$"
e=$wd/.qbench-$t.err
if ! { mkdir -p "$wd" && cd "$wd" && : >"$e"; }; then
  echo "qbench: cannot use workdir $wd" >&2; printf '\n%s-exit 125\n\n%s-end\n' "$t" "$t"; exit 125
fi
( trap 'kill "$s" 2>/dev/null; exit 0' TERM
  sleep "$lim" & s=$!
  wait "$s" && kill -9 -$$ ) </dev/null >/dev/null 2>&1 &
w=$!
"$@" </dev/null 2>"$e"
rc=$?
kill "$w" 2>/dev/null
printf '\n%s-exit %s\n' "$t" "$rc"
cat "$e" 2>/dev/null; rm -f "$e"
printf '\n%s-end\n' "$t"
exit "$rc"
"""

_KILL_GROUP = r"""kill -9 -"$1" 2>/dev/null || kill -9 "$1" 2>/dev/null; exit 0"""
_TAKE_FILE = r"""cat "$1" 2>/dev/null; rm -f "$1"; exit 0"""

# $1 path, $2 expected sha256, $3 mode. Prints same|differ|missing.
_CHECK_SCRIPT = HASH_FN + r"""
[ -f "$1" ] || { echo missing; exit 0; }
got=$(h "$1") || exit 1
if [ "${got%% *}" = "$2" ]; then chmod "$3" "$1" && echo same; else echo differ; fi
"""
# $1 path, $2 mode. Prints the sha256 of what landed.
_VERIFY_SCRIPT = HASH_FN + r"""
chmod "$2" "$1" || exit 1
got=$(h "$1") || exit 1
echo "${got%% *}"
"""
# $1 path. Prints its sha256.
_HASH_SCRIPT = HASH_FN + r"""
[ -f "$1" ] || { echo "no such file" >&2; exit 1; }
got=$(h "$1") || exit 1
echo "${got%% *}"
"""
_RM_SCRIPT = r"""rm -rf "$1" """

_PROPS = (
    "ro.product.manufacturer", "ro.product.model", "ro.product.device", "ro.product.name",
    "ro.soc.manufacturer", "ro.soc.model", "ro.board.platform", "ro.hardware",
    "ro.product.cpu.abi", "ro.product.cpu.abilist", "ro.build.version.release",
    "ro.build.version.sdk", "ro.build.fingerprint", "ro.build.type", "ro.serialno",
)
# Appended to the shared Linux facts script: one round trip for everything info() reports.
_INFO_SCRIPT = INFO_SCRIPT + r"""
printf '\n@@qbench getprop\n'
for p in "$@"; do printf '%s=%s\n' "$p" "$(getprop "$p" 2>/dev/null)"; done
"""


def _helper(script: str, args: tuple[str, ...], tok: str) -> str:
    """A helper script with stderr merged and its exit status in a trailing marker line."""
    body = " ".join(["sh", "-c", shlex.quote(script), "qbench", *map(shlex.quote, args)])
    return f"{body} 2>&1; printf '\\n%s %s\\n' {tok}-rc \"$?\""


def _marker(tok: str, kind: str, value: bool = True) -> re.Pattern[bytes]:
    lead = rb"(?:^|\n)" if kind == "pid" else rb"\r?\n"  # the wrapper prints a newline before the rest
    return re.compile(lead + re.escape(f"{tok}-{kind}".encode()) + (rb" (\d+)" if value else b"") + rb"\r?\n")


class AdbDevice(Device):
    transport = "adb"

    def __init__(
        self,
        name: str,
        *,
        serial: str | None = None,
        address: str | None = None,
        mode: str = "server",
        workdir: str = "/data/local/tmp/qbench",
        adbkey: Path | None = None,
        adb_binary: str = "adb",
        server_port: int | None = None,
        connect_timeout: float = 10,
        read_timeout: float = 60,
    ):
        if mode not in MODES:
            raise ValueError(f"adb mode must be one of {MODES}, got {mode!r}")
        if not workdir.startswith("/") or "\n" in workdir or "\0" in workdir:
            raise ValueError(f"adb workdir must be an absolute device path, got {workdir!r}")
        if serial is not None and (not serial or serial.startswith("-") or any(c.isspace() for c in serial)):
            raise ValueError(f"invalid adb serial {serial!r}")
        self.name = name
        self.mode = mode
        self.serial = serial
        self.address = address
        self.read_timeout = read_timeout
        self._workdir = posixpath.normpath(workdir)
        if mode == "server":  # no serial and no address: the one attached device, as `adb` itself does
            self._t: ServerTransport | DirectTransport = ServerTransport(
                name, serial=serial, address=address, adb_binary=adb_binary, server_port=server_port,
                connect_timeout=connect_timeout, adbkey=adbkey)
        else:
            self._t = DirectTransport(
                name, mode=mode, address=address, serial=serial,
                adbkey=Path(adbkey) if adbkey else Path.home() / ".android" / "adbkey",
                connect_timeout=connect_timeout, read_timeout=read_timeout)

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def workdir(self) -> str:
        return self._workdir

    def _shell(self, command: str, timeout: float, on_timeout=None) -> ShellOutput:
        self._t.ensure()
        return self._t.shell(command, timeout, on_timeout)

    def _call(self, script: str, *args: str, what: str, timeout: float | None = None) -> str:
        """A helper script that must succeed; returns its output (stdout+stderr)."""
        tok = "qb" + secrets.token_hex(8)
        limit = timeout or self.read_timeout
        res = self._shell(_helper(script, args, tok), limit)
        if res.timed_out:
            self._t.mark_lost()
            raise DeviceError(self.name, f"{what}: no answer from {self._t.describe()} within {limit:g}s")
        found = list(_marker(tok, "rc").finditer(res.out))
        if not found:
            raise self._cut_short(res, what)
        rc = int(found[-1].group(1))
        text = res.out[: found[-1].start()].decode(errors="replace")
        if rc != 0:
            raise DeviceError(self.name, f"{what} failed on {self._t.describe()}: "
                                         f"{last_line(text) or f'exit code {rc}'}")
        return text

    def _cut_short(self, res: ShellOutput, what: str, started: bool = False) -> DeviceError:
        """Output without its end marker: adb could not start the command, or the device went away."""
        if not started and not res.out.strip() and res.failure:
            return self._t.explain(res.failure)
        self._t.mark_lost()
        detail = f" [{res.failure}]" if res.failure else ""
        return DeviceError(self.name, f"connection to {self._t.describe()} lost during {what} "
                                      f"(unplugged, rebooted, or adbd restarted?){detail}")

    def _kill_group(self, pid: str) -> bool:
        tok = "qb" + secrets.token_hex(8)
        res = self._t.shell_aside(_helper(_KILL_GROUP, (pid,), tok), _KILL_TIMEOUT)
        ok = bool(_marker(tok, "rc").search(res.out))
        if not ok:  # the wrapper's watchdog still kills it after _REMOTE_GRACE seconds
            log.warning("%s: could not kill timed-out process group %s: %s", self.name, pid,
                        res.failure or last_line(res.out) or "no answer")
        return ok

    # -- Device interface -------------------------------------------------------------------------

    def run(self, argv: list[str], timeout: float, env: dict[str, str] | None = None) -> RunResult:
        if not argv:
            raise ValueError("run() needs a command")
        words = env_args(env)
        tok = "qb" + secrets.token_hex(8)
        pid_re, exit_re, end_re = _marker(tok, "pid"), _marker(tok, "exit"), _marker(tok, "end", value=False)
        limit = math.ceil(timeout) + _REMOTE_GRACE
        command = remote_command(_RUN_WRAPPER, self.workdir, str(limit), tok, str(len(words)), *words, *map(str, argv))
        killed: list[bool] = []

        def on_timeout(partial: bytes) -> None:
            pid = pid_re.search(partial)
            if pid:
                killed.append(self._kill_group(pid.group(1).decode()))

        start = time.monotonic()
        res = self._shell(command, timeout, on_timeout)
        seconds = time.monotonic() - start
        out = res.out
        pid, ex, end = pid_re.search(out), exit_re.search(out), end_re.search(out)

        if res.timed_out:
            if pid is None:  # never got as far as starting the command: a device problem
                self._t.mark_lost()
                raise DeviceError(self.name, f"no response from {self._t.describe()} within {timeout:g}s; "
                                             f"the command did not start")
            if not ex and not killed:
                self._kill_group(pid.group(1).decode())  # its PID arrived only after the deadline
            stdout = out[pid.end(): ex.start() if ex else len(out)]
            if ex:
                stderr = out[ex.end(): end.start() if end else len(out)]
            else:
                stderr = self._take_stderr(tok)
            return RunResult(returncode=int(ex.group(1)) if ex else -9,
                             stdout=stdout.decode(errors="replace"),
                             stderr=(res.err + stderr).decode(errors="replace"),
                             seconds=seconds, timed_out=True)

        if pid is None or ex is None or end is None or end.start() < ex.start():
            raise self._cut_short(res, f"`{' '.join(map(str, argv))[:80]}`", started=pid is not None)
        return RunResult(
            returncode=int(ex.group(1)),
            stdout=out[pid.end(): ex.start()].decode(errors="replace"),
            stderr=(res.err + out[ex.end(): end.start()]).decode(errors="replace"),
            seconds=seconds,
        )

    def _take_stderr(self, tok: str) -> bytes:
        """The stderr file a killed command left behind (best effort: the run already timed out)."""
        try:
            return self._call(_TAKE_FILE, f"{self.workdir}/.qbench-{tok}.err",
                              what="reading the timed-out command's stderr", timeout=_KILL_TIMEOUT).encode()
        except DeviceError as e:
            log.warning("%s: %s", self.name, e)
            return b""

    def push(self, local: Path, remote_name: str) -> str:
        rel = relative_name(remote_name)
        local = Path(local)
        digest = file_sha256(local)
        size = local.stat().st_size
        mode = format(stat.S_IMODE(local.stat().st_mode) & 0o777, "o")
        dest = posixpath.join(self.workdir, rel)
        state = last_line(self._call(_CHECK_SCRIPT, dest, digest, mode, what=f"checking {dest}"))
        if state == "same":
            log.debug("%s: %s already on device with sha256 %s, not copied", self.name, dest, digest[:12])
            return dest
        try:  # at least 1 MB/s, or it is a device problem
            self._t.push(local, dest, timeout=self.read_timeout + size / 1e6)
        except TransferError as e:
            if "No space left on device" in str(e):
                raise DeviceError(self.name, f"the phone's storage is full: No space left on device while "
                                             f"pushing {local.name} ({size} bytes) to {dest}; free space "
                                             f"on the device") from None
            raise DeviceError(self.name, f"pushing {local.name} to {dest} failed: {e}") from None
        except ConnectionError as e:  # direct mode: the link broke mid-transfer
            raise DeviceError(self.name, f"connection to {self._t.describe()} lost while pushing "
                                         f"{local.name}: {e}") from None
        landed = last_line(self._call(_VERIFY_SCRIPT, dest, mode, what=f"verifying {dest}"))
        check_landed(self.name, dest, landed, digest)
        return dest

    def pull(self, remote: str, local: Path) -> None:
        path = posixpath.join(self.workdir, remote)  # an absolute `remote` stays as it is
        local = Path(local)
        digest = last_line(self._call(_HASH_SCRIPT, path, what=f"reading {path}"))
        local.parent.mkdir(parents=True, exist_ok=True)
        part = local.with_name(local.name + ".part")
        try:
            try:
                self._t.pull(path, part, timeout=600.0)
            except TransferError as e:
                raise DeviceError(self.name, f"cannot pull {path}: {e}") from None
            except ConnectionError as e:  # direct mode: the link broke mid-transfer
                raise DeviceError(self.name, f"connection to {self._t.describe()} lost while pulling "
                                             f"{path}: {e}") from None
            got = file_sha256(part)
            if digest != "none" and digest != got:
                raise DeviceError(self.name, f"{path} arrived altered "
                                             f"(sha256 {got[:12]}, device has {digest[:12]})")
            os.replace(part, local)
        finally:
            part.unlink(missing_ok=True)

    def info(self) -> DeviceInfo:
        text = self._call(_INFO_SCRIPT, *_PROPS, what="reading device info")
        info = parse_info(text, self.name, self.transport)
        props = {}
        for line in split_sections(text).get("getprop", "").splitlines():
            key, sep, value = line.partition("=")
            if sep and value.strip():
                props[key] = value.strip()
        release, sdk = props.get("ro.build.version.release"), props.get("ro.build.version.sdk")
        info.extra["arch"] = info.abi  # uname -m; the ABI below is what runner binaries are built for
        info.model = props.get("ro.product.model") or info.model
        info.soc = (props.get("ro.soc.model") or props.get("ro.board.platform")  # ro.soc.* since Android 12
                    or props.get("ro.hardware") or info.soc)
        info.abi = props.get("ro.product.cpu.abi") or info.abi
        if release:
            info.os = f"Android {release}" + (f" (API {sdk})" if sdk else "")
        for key, prop in (("manufacturer", "ro.product.manufacturer"),
                          ("soc_manufacturer", "ro.soc.manufacturer"), ("board_platform", "ro.board.platform"),
                          ("device", "ro.product.device"), ("abilist", "ro.product.cpu.abilist"),
                          ("fingerprint", "ro.build.fingerprint"), ("build_type", "ro.build.type"),
                          ("serial", "ro.serialno")):
            if props.get(prop):
                info.extra[key] = props[prop]
        if sdk and sdk.isdigit():
            info.extra["sdk"] = int(sdk)
        info.extra["adb_mode"] = self.mode
        info.extra["adb_target"] = self._t.describe()
        return info

    def thermal(self) -> dict[str, float]:
        return parse_thermal(self._call(THERMAL_SCRIPT, what="reading thermal zones"))

    def cleanup(self) -> None:
        wd = self.workdir
        # Never `rm -rf` /data/local/tmp itself (or worse) because of a typo in a device profile.
        if wd in _PROTECTED or len([p for p in wd.split("/") if p]) < 2:
            raise DeviceError(self.name, f"refusing to remove workdir {wd!r}: "
                                         f"use a dedicated directory like /data/local/tmp/qbench")
        self._call(_RM_SCRIPT, wd, what=f"removing {wd}")

    def reconnect(self) -> None:
        """Re-establish the link after a DeviceError (the pipeline's retry calls this)."""
        self._t.reconnect()

    def close(self) -> None:
        self._t.close()
