"""SshDevice: a Linux board (Raspberry Pi, Jetson, any SBC) reached with the system OpenSSH client.

Why the `ssh` binary and not a Python SSH library: `~/.ssh/config` aliases, ProxyJump, keys,
ssh-agent and known_hosts then behave exactly as they do for the user at a terminal.

Connection sharing: every device instance gets its own ControlPath directory, so the first
command opens a master connection and the rest multiplex over it (no handshake per command).
Instances never share a master, so two devices with different keys cannot borrow each other's
authentication. A master whose server vanished either exits on its own (EOF, or 3 missed
keep-alives) or is told to exit after any ssh-level failure; a stale socket file left behind is
unlinked by ssh itself, so the next command simply reconnects.

Quoting: the remote side is a shell, so nothing variable is ever pasted into a script. Each remote
operation is a *constant* sh script, and every path/argument/env value is passed as a positional
parameter, `shlex.quote`d once for the login shell: `exec sh -c '<script>' qbench 'arg1' 'arg 2'`.

Timeouts (see _RUN_WRAPPER): the remote wrapper prints its PID first; sshd starts each session with
setsid(), so that PID is the process group of the command and everything it forks. At the timeout
we kill that group over a second multiplexed ssh (`kill -s KILL -- -PGID`), then the local client.
If the connection is gone and that kill cannot be delivered, a watchdog inside the wrapper kills
the same group `_REMOTE_GRACE` seconds after the deadline, so a hung runner never outlives its
run. Processes that leave the group (setsid, daemonize) are not tracked.

Exit codes: ssh exits 255 for its own failures, but a remote command may exit 255 too. The wrapper
therefore prints the command's exit status in a marker line on stderr (stripped again): with the
marker the status is the command's; without it and exit 255 the failure is ssh's own and becomes a
DeviceError (unreachable, auth, host key; "connection lost" once the command had started).
A start marker on stdout likewise separates the command's output from anything a chatty
~/.bashrc prints first; pulled files are checked against the device's sha256 for the same reason.
"""

from __future__ import annotations

import logging
import math
import os
import posixpath
import re
import shutil
import stat
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

from qbench.devices.base import Device, DeviceInfo, RunResult
from qbench.hashing import file_sha256
from qbench.devices.linux_info import INFO_SCRIPT, THERMAL_SCRIPT, parse_info, parse_thermal
from qbench.devices.remote_shell import HASH_FN, check_landed, env_args, last_line, relative_name, remote_command
from qbench.errors import DeviceError

log = logging.getLogger(__name__)

_REMOTE_GRACE = 10  # seconds the remote watchdog waits past the local timeout
_KILL_TIMEOUT = 10.0  # bound on the extra ssh that kills a timed-out remote group
_PGID_RE = re.compile(rb"\x1eqbench-pgid (\d+)\n")
_START = b"\x1eqbench-start\n"
_SHA_RE = re.compile(rb"\x1eqbench-sha256 (\S+)\n")
_EXIT_RE = re.compile(rb"\x1eqbench-exit (\d+)\n")

# $1 workdir, $2 watchdog seconds, $3 number of KEY=VALUE args, then those, then argv.
# The watchdog is a subshell in the same process group; it sleeps in a child it can kill, so a
# normal finish (TERM from the wrapper) leaves nothing behind. Its stdio is /dev/null so it never
# holds the ssh channel open.
_RUN_WRAPPER = r"""
wd=$1; limit=$2; n=$3; shift 3
while [ "$n" -gt 0 ]; do export "$1"; shift; n=$((n - 1)); done
printf '\036qbench-pgid %s\n' "$$" >&2
printf '\036qbench-start\n'
mkdir -p -- "$wd" && cd -- "$wd" || exit 125
( trap 'kill "$s" 2>/dev/null; exit 0' TERM
  sleep "$limit" & s=$!
  wait "$s" && kill -s KILL -- "-$$" ) </dev/null >/dev/null 2>&1 &
w=$!
"$@"
rc=$?
kill "$w" 2>/dev/null
printf '\036qbench-exit %s\n' "$rc" >&2
exit "$rc"
"""

_KILL_GROUP = r"""kill -s KILL -- "-$1" 2>/dev/null; exit 0"""


# $1 workdir, $2 relative name, $3 expected sha256, $4 mode. Prints same|differ|missing.
_CHECK_SCRIPT = HASH_FN + r"""
f=$1/$2
[ -f "$f" ] || { echo missing; exit 0; }
got=$(h "$f") || exit 1
if [ "${got%% *}" = "$3" ]; then chmod "$4" "$f" && echo same; else echo differ; fi
"""

# $1 workdir, $2 relative name, $3 mode; file bytes on stdin. Writes a .qbench-part file and
# renames it, so an interrupted push never leaves a truncated file under the real name.
# Prints the sha256 of what landed.
_PUT_SCRIPT = HASH_FN + r"""
f=$1/$2; tmp=$f.qbench-part
mkdir -p -- "${f%/*}" || exit 1
cat > "$tmp" && chmod "$3" "$tmp" && mv -f -- "$tmp" "$f" || { rm -f -- "$tmp"; exit 1; }
got=$(h "$f") || exit 1
echo "${got%% *}"
"""

# $1 path. The sha256 goes to stderr first so the bytes that arrive can be verified.
_PULL_SCRIPT = HASH_FN + r"""
[ -r "$1" ] || { cat -- "$1"; exit 1; }
got=$(h "$1") || exit 1
printf '\036qbench-sha256 %s\n' "${got%% *}" >&2
exec cat -- "$1"
"""
_RM_SCRIPT = r"""[ "$1" = "$HOME" ] && { echo "refusing to remove the home directory" >&2; exit 1; }
rm -rf -- "$1" """
_HOME_SCRIPT = r"""printf '%s\n' "$HOME" """


def _ssh_value(path: Path | str) -> str:
    """A path for `-o Key=value`: ssh splits on spaces (so quote) and expands %-tokens (so escape)."""
    text = str(path)
    if '"' in text or "\n" in text:
        raise ValueError(f"unsupported character in path for ssh: {text!r}")
    return '"' + text.replace("%", "%%") + '"'


class SshDevice(Device):
    transport = "ssh"

    def __init__(
        self,
        name: str,
        host: str,
        *,
        user: str | None = None,
        port: int | None = None,
        ssh_config: Path | None = None,
        identity_file: Path | None = None,
        strict_host_key_checking: bool = True,
        known_hosts: Path | None = None,
        workdir: str = "/tmp/qbench",
        connect_timeout: int = 10,
        control_persist: int = 60,
    ):
        # A host starting with "-" would be read as an ssh option (-oProxyCommand=...).
        if not host or host.startswith("-") or any(c.isspace() or ord(c) < 32 for c in host):
            raise ValueError(f"invalid ssh host {host!r}")
        if user is not None and (not user or user.startswith("-") or any(c.isspace() for c in user)):
            raise ValueError(f"invalid ssh user {user!r}")
        if not workdir or "\n" in workdir:
            raise ValueError(f"invalid workdir {workdir!r}")
        self.name = name
        self.host = host
        self.user = user
        self.port = port
        self.ssh_config = Path(ssh_config) if ssh_config else None
        self.identity_file = Path(identity_file) if identity_file else None
        self.strict_host_key_checking = strict_host_key_checking
        self.known_hosts = Path(known_hosts) if known_hosts else None
        self.connect_timeout = connect_timeout
        self._workdir_setting = workdir
        self._workdir: str | None = workdir if workdir.startswith("/") else None
        if not strict_host_key_checking:
            log.warning(
                "%s: strict host key checking is OFF for %s: an unknown host key will be accepted "
                "and recorded (StrictHostKeyChecking=accept-new); a changed key is still refused",
                name, host,
            )
        # Short dir: a unix socket path must fit in ~104 bytes; %C is a 40-char hash.
        self._control_dir = tempfile.mkdtemp(prefix="qb-ssh-", dir="/tmp")
        self._base = self._base_argv(control_persist)
        self._finalizer = weakref.finalize(self, _shutdown_master, list(self._base), host,
                                           self._control_dir)

    # -- ssh plumbing -----------------------------------------------------------------------------

    def _base_argv(self, control_persist: int) -> list[str]:
        argv = ["ssh"]
        if self.ssh_config:
            argv += ["-F", str(self.ssh_config)]
        opts = {
            "BatchMode": "yes",  # never prompt for a password or a host key
            "ConnectTimeout": str(self.connect_timeout),
            "ControlMaster": "auto",
            "ControlPath": f"{self._control_dir}/%C",  # mkdtemp: no spaces, no '%'
            "ControlPersist": str(control_persist),
            "ServerAliveInterval": "5",  # a vanished board is noticed within ~15 s
            "ServerAliveCountMax": "3",
            "LogLevel": "ERROR",  # keep ssh chatter out of the command's stderr, keep errors
            "StrictHostKeyChecking": "yes" if self.strict_host_key_checking else "accept-new",
            "RequestTTY": "no",  # no pty: raw bytes, separate stderr
        }
        if self.known_hosts:
            opts["UserKnownHostsFile"] = _ssh_value(self.known_hosts)
        if self.identity_file:
            opts["IdentityFile"] = _ssh_value(self.identity_file)
            opts["IdentitiesOnly"] = "yes"  # this key only, not whatever the agent holds
        for key, value in opts.items():
            argv += ["-o", f"{key}={value}"]
        if self.user:
            argv += ["-l", self.user]
        if self.port:
            argv += ["-p", str(int(self.port))]
        return argv

    def _ssh(self, command: str, *, timeout: float, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE):
        """Run one remote command line; returns (returncode, stdout bytes, stderr bytes)."""
        proc = self._popen(command, stdin=stdin, stdout=stdout)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._finish(proc, grace=0)
            self._drop_master()
            raise DeviceError(self.name, f"no answer from {self.host} within {timeout:.0f}s") from None
        return proc.returncode, out or b"", err

    def _popen(self, command: str, *, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE) -> subprocess.Popen:
        if not self._finalizer.alive:  # used again after close(): a fresh control directory
            os.makedirs(self._control_dir, mode=0o700, exist_ok=True)
            self._finalizer = weakref.finalize(self, _shutdown_master, list(self._base), self.host,
                                               self._control_dir)
        return subprocess.Popen([*self._base, "--", self.host, command],
                                stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)

    def _call(self, script: str, *args: str, timeout: float = 60.0, what: str, **kw) -> bytes:
        """A helper script that must succeed; any failure is a DeviceError naming `what`."""
        rc, out, err = self._ssh(remote_command(script, *args), timeout=timeout, **kw)
        if rc == 255:
            raise self._ssh_failure(err)
        if rc != 0:
            detail = last_line(err) or f"exit code {rc}"
            raise DeviceError(self.name, f"{what} failed on {self.host}: {detail}")
        return out

    def _ssh_failure(self, stderr: bytes, *, started: bool = False) -> DeviceError:
        """ssh's own exit 255 -> a DeviceError that says what to do about it."""
        self._drop_master()  # never reuse a master that just failed; the next command reconnects
        raw = last_line(stderr)
        text = stderr.decode(errors="replace")
        host, who = self.host, f"{self.user}@{self.host}" if self.user else self.host
        if started:
            msg = (f"connection to {host} lost while the command was running "
                   f"(board rebooted or off the network?)")
        elif "IDENTIFICATION HAS CHANGED" in text or re.search(r"host key for .* has changed", text, re.I):
            msg = (f"the host key of {host} has CHANGED since it was recorded in known_hosts "
                   f"(re-imaged board, or someone in the middle); if expected, remove the old entry "
                   f"with `ssh-keygen -R {host}` and add the new one")
        elif "Host key verification failed" in text or re.search(r"No \S+ host key is known", text):
            msg = (f"host key verification failed for {host}: the host's key is not in known_hosts; "
                   f"add it with ssh-keyscan or set strict_host_key_checking: false")
        elif "Permission denied" in text or "Too many authentication failures" in text:
            key = f" ({self.identity_file})" if self.identity_file else ""
            msg = (f"authentication failed for {who}: the server rejected the offered key{key}; "
                   f"check identity_file / ssh-agent and the board's ~/.ssh/authorized_keys")
        elif "Connection refused" in text:
            msg = f"connection refused by {host}: sshd is not running there, or the port is wrong"
        elif re.search(r"timed out|Operation timed out", text, re.I):
            msg = (f"cannot reach {host}: connection timed out after {self.connect_timeout}s "
                   f"(board off or unreachable)")
        elif "Could not resolve hostname" in text:
            msg = f"unknown host {host}: not an ssh config alias and not resolvable"
        elif re.search(r"No route to host|Network is unreachable", text):
            msg = f"cannot reach {host}: no route to host"
        elif re.search(r"closed by remote host|Connection reset|Connection closed|Broken pipe", text, re.I):
            msg = f"connection to {host} lost"
        else:
            msg = f"ssh to {host} failed"
        return DeviceError(self.name, f"{msg} [ssh: {raw or 'exit code 255'}]")

    def _finish(self, proc: subprocess.Popen, grace: float) -> tuple[bytes, bytes]:
        """Let a local ssh exit within `grace` seconds, else kill it; returns all its output.

        A multiplexed client hands its stdio pipes to the master, so killing the client is not
        enough for EOF when the master is wedged: then the master goes too.
        """
        try:
            return proc.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
        try:
            return proc.communicate(timeout=0.5)
        except subprocess.TimeoutExpired:
            self._drop_master()
        try:
            return proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # something else still holds the pipes: stop waiting
            return b"", b""

    def _drop_master(self) -> None:
        try:
            subprocess.run([*self._base, "-O", "exit", "--", self.host],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass

    # -- Device interface -------------------------------------------------------------------------

    @property
    def workdir(self) -> str:
        if self._workdir is None:  # "~/x" or "x": relative to the login directory, like ssh itself
            home = last_line(self._call(_HOME_SCRIPT, what="reading $HOME"))
            rel = self._workdir_setting.removeprefix("~").lstrip("/")
            self._workdir = posixpath.join(home, rel) if rel else home
        return self._workdir

    def run(self, argv: list[str], timeout: float, env: dict[str, str] | None = None) -> RunResult:
        if not argv:
            raise ValueError("run() needs a command")
        words = env_args(env)
        limit = math.ceil(timeout) + _REMOTE_GRACE
        command = remote_command(_RUN_WRAPPER, self.workdir, str(limit), str(len(words)), *words, *map(str, argv))
        start = time.monotonic()
        proc = self._popen(command)
        timed_out = killed = False
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as e:
            timed_out = True
            pgid = _PGID_RE.search(e.stderr or b"")
            if pgid:
                killed = self._kill_remote_group(pgid.group(1).decode())
            # With the group dead the remote side closes and the local client exits by itself.
            out, err = self._finish(proc, grace=5.0 if killed else 0.0)
        seconds = time.monotonic() - start
        out, err = out or b"", err or b""
        pgid = _PGID_RE.search(err)
        if timed_out and pgid and not killed and not _EXIT_RE.search(err):
            self._kill_remote_group(pgid.group(1).decode())  # its PID arrived only after the deadline

        started = pgid is not None
        exits = list(_EXIT_RE.finditer(err))
        clean_err = _PGID_RE.sub(b"", err, count=1)
        if exits:
            last = exits[-1]
            clean_err = _PGID_RE.sub(b"", err[: last.start()] + err[last.end():], count=1)
        # Anything before the start marker was printed by the login shell's rc files, not argv.
        _, found, rest = out.partition(_START)
        out = rest if found else out
        result = RunResult(
            returncode=int(exits[-1].group(1)) if exits else proc.returncode,
            stdout=out.decode(errors="replace"),
            stderr=clean_err.decode(errors="replace"),
            seconds=seconds,
            timed_out=timed_out,
        )
        if timed_out:
            if not started:  # never got as far as starting the command: a device problem
                self._drop_master()
                raise DeviceError(self.name, f"no response from {self.host} within {timeout:g}s; "
                                             f"the command did not start")
            result.returncode = result.returncode if exits else -9
            return result
        if not exits and proc.returncode == 255:
            raise self._ssh_failure(err, started=started)
        return result

    def _kill_remote_group(self, pgid: str) -> bool:
        try:
            rc, _, err = self._ssh(remote_command(_KILL_GROUP, pgid), timeout=_KILL_TIMEOUT)
        except DeviceError as e:
            rc, err = 255, str(e).encode()
        if rc != 0:  # the wrapper's watchdog will still kill it after _REMOTE_GRACE seconds
            log.warning("%s: could not kill timed-out remote process group %s: %s",
                        self.name, pgid, last_line(err))
        return rc == 0

    def push(self, local: Path, remote_name: str) -> str:
        rel = relative_name(remote_name)
        local = Path(local)
        digest = file_sha256(local)
        mode = format(stat.S_IMODE(local.stat().st_mode) & 0o777, "o")
        wd = self.workdir
        dest = posixpath.join(wd, rel)
        state = last_line(self._call(_CHECK_SCRIPT, wd, rel, digest, mode, what=f"checking {rel}"))
        if state == "same":
            log.debug("%s: %s already on device with sha256 %s, not copied", self.name, rel, digest[:12])
            return dest
        size = local.stat().st_size
        with open(local, "rb") as f:  # at least 1 MB/s, or it is a device problem
            landed = last_line(self._call(_PUT_SCRIPT, wd, rel, mode, stdin=f, timeout=60 + size / 1e6,
                                           what=f"copying {local.name} to {dest}"))
        check_landed(self.name, dest, landed, digest)
        return dest

    def pull(self, remote: str, local: Path) -> None:
        path = posixpath.join(self.workdir, remote)  # an absolute `remote` stays as it is
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        part = local.with_name(local.name + ".part")
        try:
            with open(part, "wb") as f:
                rc, _, err = self._ssh(remote_command(_PULL_SCRIPT, path), timeout=600.0, stdout=f)
            if rc == 255:
                raise self._ssh_failure(err, started=_SHA_RE.search(err) is not None)
            if rc != 0:
                detail = last_line(_SHA_RE.sub(b"", err)) or f"exit code {rc}"
                raise DeviceError(self.name, f"cannot pull {path}: {detail}")
            sent = _SHA_RE.search(err)
            got = file_sha256(part)
            if sent and sent.group(1) != b"none" and sent.group(1).decode() != got:
                raise DeviceError(self.name, f"{path} arrived altered (sha256 {got[:12]}, device has "
                                             f"{sent.group(1).decode()[:12]}); does the login shell print "
                                             f"to stdout (~/.bashrc)?")
            os.replace(part, local)
        finally:
            part.unlink(missing_ok=True)

    def info(self) -> DeviceInfo:
        text = self._call(INFO_SCRIPT, what="reading device info").decode(errors="replace")
        info = parse_info(text, self.name, self.transport)
        info.extra["host"] = self.host
        return info

    def thermal(self) -> dict[str, float]:
        text = self._call(THERMAL_SCRIPT, what="reading thermal zones").decode(errors="replace")
        return parse_thermal(text)

    def cleanup(self) -> None:
        wd = self.workdir
        # Never `rm -rf` something like / or /tmp because of a typo in a device profile.
        if len([p for p in wd.split("/") if p]) < 2:
            raise DeviceError(self.name, f"refusing to remove workdir {wd!r}: "
                                         f"use a dedicated directory like /tmp/qbench")
        self._call(_RM_SCRIPT, wd, what=f"removing {wd}")

    def close(self) -> None:
        self._finalizer()


def _shutdown_master(base: list[str], host: str, control_dir: str) -> None:
    """Close the control master (if any) and remove its socket directory; safe to call twice."""
    if os.path.isdir(control_dir):
        try:
            subprocess.run([*base, "-O", "exit", "--", host], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(control_dir, ignore_errors=True)
