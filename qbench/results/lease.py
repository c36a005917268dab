"""One writer per run: a `qbench run` (or `--resume`) holds its run's lease until it ends, and a second
one is refused in one line naming the holder (host, pid, since when).

The lease is a lock that dies with its holder, so a killed process or a lost host never blocks a run:
- a SQLite store: an OS file lock (flock) on `<store>.leases/<run_id>.lock`, beside the file; the
  kernel drops it when the holder's process ends, however it ends. The holder's host, pid and start
  time are written into that file for the refusal to read.
- a PostgreSQL store: a session advisory lock on a connection of its own; the server drops it when
  that connection ends (a killed process closes it at once; a lost host is noticed by TCP keepalives
  within about a minute). The holder is named in the connection's application_name, which the
  refusal reads from pg_stat_activity. An outage ends that session too: when the run's store has
  reconnected, `renew` takes the lock back (or stops the run if another qbench took it meanwhile).
No table holds a lease, so the store's schema is untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

from qbench.errors import UsageError
from qbench.results.urls import is_url, redact, scrub

# a lost host's connection is dropped by the server after about idle + interval * count seconds
_KEEPALIVE = {"tcp_keepalives_idle": 20, "tcp_keepalives_interval": 5, "tcp_keepalives_count": 4}
_DEAD_HOLDER_WAIT_S = 10.0  # a holder on this host that died: how long its server session may linger


class RunHeld(UsageError):
    """Another qbench is writing this run."""


class Holder:
    """Who holds a run's lease, as the refusal names it."""

    def __init__(self, host: str | None = None, pid: int | None = None, since: str | None = None):
        self.host, self.pid, self.since = host, pid, since

    def describe(self) -> str:
        if self.pid is None:
            return "another qbench (it has not said who yet)"
        return f"pid {self.pid} on host {self.host or '?'}, since {self.since or '?'}"

    def dead_here(self) -> bool:
        """On this host, and that process is gone (its lock is about to be released)."""
        # application_name is cut at 63 characters: the name may be a prefix of this host's
        if self.pid is None or not self.host or not socket.gethostname().startswith(self.host):
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


_held: dict[tuple, object] = {}  # this process's leases, kept alive until released or the process ends


def hold(target: str | Path, run_id: str):
    """The run's lease for this process (released by .release(), or when the process ends).
    Raises RunHeld naming the holder when another process has it."""
    lease = _PgLease(str(target), run_id) if is_url(target) else _FileLease(Path(target), run_id)
    lease.acquire()
    _held[lease.key] = lease
    return lease


def renew(target: str | Path) -> None:
    """After the store reconnected (a database outage): take back this process's leases on that
    database whose session the outage ended. RunHeld when another qbench took a run meanwhile."""
    for lease in [held for held in _held.values() if isinstance(held, _PgLease) and held.url == str(target)]:
        lease.renew()


def holding(target: str | Path, run_id: str) -> bool:
    """Whether this process holds the run's lease already."""
    key = (str(target), run_id) if is_url(target) else _FileLease(Path(target), run_id).key
    return key in _held


def _refusal(run_id: str, holder: Holder) -> RunHeld:
    return RunHeld(f"run {run_id} is being written by another qbench ({holder.describe()}): one run or "
                   f"--resume of a run at a time; wait for it to end, or stop it (a killed holder "
                   f"frees the run at once)")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _FileLease:
    """flock on a file beside the SQLite store; its content names the holder."""

    def __init__(self, db: Path, run_id: str):
        safe = run_id if re.fullmatch(r"[\w.-]{1,100}", run_id) else hashlib.sha256(run_id.encode()).hexdigest()[:32]
        db = db.resolve()  # `q.db`, `./q.db` and a symlink to it are one store, one lease
        self.run_id, self.path, self.fd = run_id, db.parent / f"{db.name}.leases" / f"{safe}.lock", None
        self.key = (str(self.path), run_id)

    def acquire(self) -> None:
        import fcntl

        while True:
            fd = self._open()
            if fd is None:  # the folder was removed by a holder releasing just now
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _refusal(self.run_id, self._holder()) from None
            if self._same_file(fd):  # not a file a releasing holder just unlinked
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": _now()}).encode())
        self.fd = fd

    def _open(self) -> int | None:
        try:
            self.path.parent.mkdir(exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UsageError(f"cannot write {self.path} (the run's lease, beside the store): "
                             f"{exc.strerror or exc}") from None

    def _same_file(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def _holder(self) -> Holder:
        for _ in range(5):  # the holder writes its name right after locking
            try:
                info = json.loads(self.path.read_text() or "null")
            except (OSError, ValueError):
                info = None
            if isinstance(info, dict):
                return Holder(info.get("host"), info.get("pid"), info.get("since"))
            time.sleep(0.1)
        return Holder()

    def release(self) -> None:
        if self.fd is None:
            return
        _held.pop(self.key, None)
        try:
            os.unlink(self.path)  # while still locked: a waiting opener then sees another inode and retries
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None
        try:
            self.path.parent.rmdir()  # only when no other run is held
        except OSError:
            pass


def _key(run_id: str) -> int:
    """The run's advisory-lock key: 64 bits of its id's hash (signed, as PostgreSQL's bigint)."""
    return int.from_bytes(hashlib.blake2b(b"qbench-run:" + run_id.encode(), digest_size=8).digest(), "big", signed=True)


class _PgLease:
    """A session advisory lock on a connection of its own; application_name names the holder."""

    def __init__(self, url: str, run_id: str):
        self.url, self.run_id, self.conn = url, run_id, None
        self.key = (url, run_id)

    def acquire(self) -> None:
        import psycopg

        name = f"qbench {_now().replace('-', '').replace(':', '')} {os.getpid()}@{socket.gethostname()}"[:63]
        try:
            conn = psycopg.connect(self.url, autocommit=True, application_name=name,
                                   connect_timeout=int(os.environ.get("QBENCH_DB_TIMEOUT", "10")))
            for setting, value in _KEEPALIVE.items():
                conn.execute(f"SET {setting} = {int(value)}")
            deadline = time.monotonic() + _DEAD_HOLDER_WAIT_S
            while not conn.execute("SELECT pg_try_advisory_lock(%s)", (_key(self.run_id),)).fetchone()[0]:
                holder = self._holder(conn)
                if not holder.dead_here() or time.monotonic() > deadline:
                    conn.close()
                    raise _refusal(self.run_id, holder)
                time.sleep(0.5)
        except psycopg.Error as exc:
            raise UsageError(f"cannot take run {self.run_id}'s lease in {redact(self.url)}: "
                             f"{scrub(str(exc), self.url)}") from None
        self.conn = conn

    def renew(self) -> None:
        """Take the lock again if its session is gone (the server restarted, or cut the connection)."""
        import psycopg

        if self.conn is not None:
            try:
                self.conn.execute("SELECT 1")
                return  # the session, and its lock, lived through
            except psycopg.Error:
                pass
            try:
                self.conn.close()
            except psycopg.Error:
                pass
            self.conn = None
        self.acquire()

    def _holder(self, conn) -> Holder:
        key = _key(self.run_id) & 0xFFFFFFFFFFFFFFFF
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s", (key >> 32, key & 0xFFFFFFFF)).fetchone()
        found = re.fullmatch(r"qbench (\d{8}T\d{6}Z) (\d+)@(.*)", row[0] or "") if row else None
        if not found:
            return Holder()
        stamp = datetime.strptime(found[1], "%Y%m%dT%H%M%SZ").strftime("%Y-%m-%dT%H:%M:%SZ")
        return Holder(found[3], int(found[2]), stamp)

    def release(self) -> None:
        _held.pop(self.key, None)
        if self.conn is not None:
            try:
                self.conn.close()  # the server drops the session's lock with it
            except Exception:  # noqa: BLE001 - already gone: so is the lock
                pass
            self.conn = None
