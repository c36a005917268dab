"""A real OpenSSH server on loopback, for testing SshDevice without mocks.

`SshServer(tmpdir)` generates a throwaway host key and user key, writes its own `sshd_config`
(127.0.0.1 only, key auth only) and a client `ssh_config` whose Host alias points at it, then runs
`/usr/sbin/sshd -D -e` in the foreground. `stop()` / `kill()` end the server *and every session it
spawned* (sshd's per-connection children call setsid(), so a process-group kill would miss them);
`kill()` is the "board lost power" case, `freeze()`/`thaw()` a hung board or a network black hole.
`start()` again brings it back on the same port and keys.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without its privilege-separation dir


def make_keypair(path: Path, comment: str = "qbench-test") -> Path:
    """An unencrypted ed25519 key at `path` (+ `path.pub`); returns `path`."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True, stdin=subprocess.DEVNULL, timeout=30,
    )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and ')'; fields resume after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _freeze_tree(root: int) -> list[int]:
    """SIGSTOP root and all its descendants (so none can fork meanwhile); returns them root-first."""
    frozen: list[int] = []
    todo = [root]
    for _ in range(20):  # repeat: a process may have forked just before it was stopped
        for pid in todo:
            try:
                os.kill(pid, signal.SIGSTOP)
                frozen.append(pid)
            except ProcessLookupError:
                pass
        kids = _children_map()
        todo = [c for p in frozen for c in kids.get(p, []) if c not in frozen]
        if not todo:
            break
    return frozen


class SshServer:
    """A loopback sshd for one test; use as a context manager."""

    def __init__(self, tmpdir: Path, *, alias: str = "qbench-test-pi", port: int | None = None):
        self.dir = Path(tmpdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.alias = alias
        self.user = getpass.getuser()
        self.port = port or 0
        self._fixed_port = port is not None
        self.host_key = self.dir / "ssh_host_ed25519_key"
        self.user_key = self.dir / "id_ed25519"  # the client's IdentityFile
        self.authorized_keys = self.dir / "authorized_keys"
        self.known_hosts = self.dir / "known_hosts"
        self.sshd_config_path = self.dir / "sshd_config"
        self.ssh_config_path = self.dir / "ssh_config"
        self.log_path = self.dir / "sshd.log"
        self._proc: subprocess.Popen | None = None
        self._frozen: list[int] = []

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> "SshServer":
        if self.alive:
            return self
        if not SSHD.exists():
            raise RuntimeError(f"{SSHD} is missing: apt-get install -y openssh-server")
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        if not self.host_key.exists():
            make_keypair(self.host_key, "qbench-test-host")
        if not self.user_key.exists():
            make_keypair(self.user_key, "qbench-test-user")
            self.authorized_keys.write_text(self.user_key.with_suffix(".pub").read_text())
        for attempt in range(5):
            if not self._fixed_port and (attempt or not self.port):
                self.port = free_port()
            self._write_configs()
            if self._launch(timeout):
                return self
            if self._fixed_port or "Address already in use" not in self.log():
                break
        raise RuntimeError(f"sshd did not start on 127.0.0.1:{self.port}:\n{self.log()}")

    def stop(self, timeout: float = 5.0) -> None:
        """End the server and all its sessions (SIGTERM, then SIGKILL what is left)."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL the server and all its sessions: the board disappears mid-whatever."""
        self._end(signal.SIGKILL, 5.0)

    def freeze(self) -> None:
        """SIGSTOP the server and its sessions: a board that hangs, or a network black hole.

        TCP connects still succeed (the kernel accepts them) but nothing ever answers.
        """
        if self.alive:
            self._frozen = _freeze_tree(self._proc.pid)

    def thaw(self) -> None:
        for pid in self._frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self._frozen = []

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.alive else None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> "SshServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------------------

    def _launch(self, timeout: float) -> bool:
        log = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.sshd_config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        self.kill()
        return False

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        self._frozen = []  # _freeze_tree below stops them again; SIGTERM is followed by SIGCONT
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        pids = _freeze_tree(proc.pid)
        for pid in pids:
            try:
                os.kill(pid, sig)
                if sig != signal.SIGKILL:
                    os.kill(pid, signal.SIGCONT)  # a stopped process only sees SIGTERM once resumed
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + timeout
        while any(_exists(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout)

    def _write_configs(self) -> None:
        self.sshd_config_path.write_text(self._sshd_config())
        if self._supports("PerSourcePenalties no"):
            # OpenSSH >= 9.8 would otherwise throttle 127.0.0.1 after the deliberate auth failures.
            self.sshd_config_path.write_text(self._sshd_config() + "PerSourcePenalties no\n")
        host_pub = self.host_key.with_suffix(".pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        self.ssh_config_path.write_text(
            f"Host {self.alias}\n"
            f"  HostName 127.0.0.1\n"
            f"  Port {self.port}\n"
            f"  User {self.user}\n"
            f"  IdentityFile {self.user_key}\n"
            f"  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts}\n"
            f"  GlobalKnownHostsFile /dev/null\n"
            f"  StrictHostKeyChecking yes\n"
            f"  UpdateHostKeys no\n"
        )

    def _sshd_config(self) -> str:
        return (
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.host_key}\n"
            f"AuthorizedKeysFile {self.authorized_keys}\n"
            f"PidFile {self.dir / 'sshd.pid'}\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "StrictModes no\n"  # the tmp dir's owner/modes are whatever pytest made them
            "UsePAM no\n"
            "PrintMotd no\n"
            "X11Forwarding no\n"
            "MaxSessions 64\n"  # multiplexed sessions over one control master
            "MaxStartups 64:30:128\n"
            "Subsystem sftp internal-sftp\n"
            "LogLevel VERBOSE\n"
        )

    def _supports(self, line: str) -> bool:
        probe = self.dir / "sshd_config.probe"
        probe.write_text(self._sshd_config() + line + "\n")
        r = subprocess.run([str(SSHD), "-t", "-f", str(probe)], capture_output=True, timeout=30)
        probe.unlink()
        return r.returncode == 0


def _exists(pid: int) -> bool:
    try:
        # A zombie still "exists" for kill(0) but is harmless; treat it as gone.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
