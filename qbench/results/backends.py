"""Where a results store lives: a SQLite file (the default) or a PostgreSQL database a farm shares.

The store writes one portable SQL dialect (`?` placeholders, `ON CONFLICT DO NOTHING`, types
INTEGER/REAL/TEXT/JSON); a backend translates the little that differs and answers the two
questions the migrations ask (schema version, columns of a table). Rows read the same from both:
`row["name"]`, `row[0]`, `row.keys()`, `dict(row)`.

Credentials: a PostgreSQL URL may carry a password, or libpq finds it in PGPASSFILE / PGPASSWORD;
qbench never prints or stores it (`redact` is what messages and run records show).
"""

from __future__ import annotations

import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable

from qbench.errors import UsageError
from qbench.results.urls import URL_SCHEMES, db_target, is_url, redact, scrub  # noqa: F401 - re-exported

DB_HELP = ("results store: a SQLite file or postgresql://user@host/db "
           "(default: $QBENCH_DB or reports/qbench.db; passwords from PGPASSFILE/PGPASSWORD)")


def exists(target: str | Path) -> bool:
    """Whether reading makes sense: a SQLite file must exist; a database server answers on connect."""
    return True if is_url(target) else Path(target).is_file()


def connect(target: str | Path, lock: threading.RLock, *, readonly: bool = False):
    """readonly (SQLite): read the file in place, even on a read-only filesystem; a server needs no such mode."""
    return PostgresBackend(str(target), lock) if is_url(target) else SqliteBackend(Path(target), lock, readonly=readonly)


class SqliteBackend:
    begin = "BEGIN IMMEDIATE"
    run_order = "rowid"  # insertion order of runs

    def __init__(self, path: Path, lock: threading.RLock, *, readonly: bool = False):
        import sqlite3

        if readonly:
            self.conn = _connect_sqlite_readonly(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self.conn.row_factory = sqlite3.Row

    def create_schema(self, ddl: str) -> None:
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(ddl)

    def tables(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def set_schema_version(self, version: int) -> None:
        if self.schema_version() != version:  # a write: every reader's open would otherwise take the lock
            self.conn.execute(f"PRAGMA user_version={int(version)}")

    def columns(self, table: str) -> set[str]:
        return {row[1] for row in self.conn.execute(f"PRAGMA main.table_info({table})")}

    def shadow_columns(self, table: str, missing: dict[str, str]) -> None:
        """A file read in place cannot be migrated: a temporary view with the table's name (found
        before the file's own table) adds the missing columns as NULL."""
        nulls = ", ".join(f"NULL AS {c}" for c in missing)
        self.conn.execute(f"CREATE TEMP VIEW {table} AS SELECT *, {nulls} FROM main.{table}")

    def add_column(self, table: str, name: str, sql_type: str) -> None:
        self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")

    def widen_unique_key(self, table: str, key: tuple[str, ...], ddl: str) -> None:
        """An older table whose UNIQUE key lacks a column of `key`: SQLite cannot alter a constraint, so
        the table is rebuilt from `ddl` (its CREATE TABLE in the current schema) keeping every row and id."""
        sql = self.conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
        if sql is None or re.search(r"UNIQUE\s*\(\s*" + r"\s*,\s*".join(key) + r"\s*\)", sql[0]):
            return
        have = [row[1] for row in self.conn.execute(f"PRAGMA main.table_info({table})")]
        new = f"{table}_rekeyed"
        self.conn.execute("PRAGMA foreign_keys=OFF")  # trials point at cells by id; the ids are kept
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.execute(ddl.replace(f"IF NOT EXISTS {table} (", f"{new} ("))
                made = {row[1] for row in self.conn.execute(f"PRAGMA main.table_info({new})")}
                for name in have:
                    if name not in made:  # added by an earlier migration: same type as in the old table
                        kind = next(r[2] for r in self.conn.execute(f"PRAGMA main.table_info({table})") if r[1] == name)
                        self.conn.execute(f"ALTER TABLE {new} ADD COLUMN {name} {kind}")
                cols = ", ".join(have)
                self.conn.execute(f"INSERT INTO {new} ({cols}) SELECT {cols} FROM {table}")
                self.conn.execute(f"DROP TABLE {table}")
                self.conn.execute(f"ALTER TABLE {new} RENAME TO {table}")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        finally:
            self.conn.execute("PRAGMA foreign_keys=ON")

    @contextmanager
    def migration_lock(self):
        """Each migration step takes SQLite's write lock itself; nothing more is needed."""
        yield

    def vacuum(self) -> str:
        """Rewrite the file without the freed pages (the file shrinks). In WAL mode VACUUM writes the new
        file into the WAL first: fold it back, so the space is free on disk when this returns."""
        self.conn.execute("VACUUM")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return "VACUUM"

    def size_bytes(self, path: Path) -> int:
        """The store's bytes on disk, its WAL folded into the file first."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.is_file())

    def is_transient(self, exc: BaseException) -> bool:
        """Worth retrying: another writer holds the lock, or the disk hiccupped."""
        import sqlite3

        return isinstance(exc, sqlite3.OperationalError) and any(
            w in str(exc) for w in ("locked", "busy", "disk I/O"))

    def reconnect(self) -> None:
        """A file needs no reconnecting."""

    def give_up(self, exc: BaseException) -> None:
        """No more writes will be attempted (the caller reports `exc`)."""

    def close(self) -> None:
        self.conn.close()


def _connect_sqlite_readonly(path: Path):
    """mode=ro reads a store whose folder we can write the WAL index into; on a read-only filesystem
    that fails, and immutable=1 (no locks, no journal files: nobody can be writing it) reads it."""
    import sqlite3
    from urllib.parse import quote

    from qbench.errors import StoreError

    uri = "file:" + quote(str(path.resolve()))
    try:
        db = sqlite3.connect(uri + "?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        wal = path.with_name(path.name + "-wal")
        if wal.is_file() and wal.stat().st_size > 0:  # immutable=1 would silently skip what the WAL holds
            raise StoreError(f"{path} cannot be read where it is: its last changes are still in {wal.name}, which "
                             "SQLite can only merge on a writable filesystem; copy both files somewhere writable") from None
        return sqlite3.connect(uri + "?immutable=1", uri=True, check_same_thread=False, isolation_level=None)


class Row:
    """A result row addressable like sqlite3.Row: by column name, by index, keys(), dict(row)."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: tuple[str, ...], values: tuple):
        self._names, self._values = names, values

    def keys(self) -> list[str]:
        return list(self._names)

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, (int, slice)):
            return self._values[key]
        try:
            return self._values[self._names.index(key)]
        except ValueError:
            raise IndexError(f"no such column: {key}") from None

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._names, self._values))!r})"


class _Cursor:
    def __init__(self, cur):
        self._cur = cur
        self._names = tuple(d.name for d in cur.description) if cur.description else ()

    def fetchone(self) -> Row | None:
        values = self._cur.fetchone()
        return None if values is None else Row(self._names, values)

    def fetchall(self) -> list[Row]:
        return [Row(self._names, v) for v in self._cur.fetchall()]

    def __iter__(self):
        return iter(self.fetchall())

    @property
    def description(self) -> list[tuple[str]]:
        return [(name,) for name in self._names]


def _placeholders(sql: str) -> str:
    """`?` → `%s` outside string literals; a literal `%` is doubled (psycopg's format)."""
    out, quoted = [], False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
        if ch == "%":
            out.append("%%")
        elif ch == "?" and not quoted:
            out.append("%s")
        else:
            out.append(ch)
    return "".join(out)


# SQLite types → PostgreSQL: 64-bit integers (latencies in ns, byte counts), double precision (REAL is
# float4 there), JSON kept as text so both backends return the same strings.
_DDL_TYPES = [
    (r"\bINTEGER PRIMARY KEY\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (r"\bINTEGER\b", "BIGINT"),
    (r"\bREAL\b", "DOUBLE PRECISION"),
    (r"\bJSON\b", "TEXT"),
    (r"\bBLOB\b", "BYTEA"),
    (r"\)\s*WITHOUT ROWID", ")"),
    (r"--[^\n]*", ""),
]


_PLAIN_INSERT = re.compile(r"^\s*INSERT INTO (\w+) \(([\w, ]+)\) VALUES \([?, ]+\)\s*$")


class PostgresBackend:
    """A psycopg 3 connection in autocommit mode; the store's transactions are explicit BEGIN/COMMIT."""

    begin = "BEGIN"
    run_order = "run_seq"  # PostgreSQL has no rowid: runs get an identity column for insertion order

    def __init__(self, url: str, lock: threading.RLock):
        try:
            import psycopg
        except ImportError as exc:
            raise UsageError("a PostgreSQL store needs psycopg, which comes with the farm extra: "
                             "pip install 'qbench[farm]'") from exc
        self.url, self.lock = url, lock
        self.gone: BaseException | None = None  # set when the caller gave up on the server
        try:
            self.pg = self._connect()
        except psycopg.Error as exc:
            raise UsageError(f"cannot open the results database {redact(url)}: {scrub(_first_line(exc), url)}") from None
        self.conn = self  # the store's `db`: execute/executemany with `?` placeholders

    def _connect(self):
        import psycopg

        return psycopg.connect(self.url, autocommit=True, application_name="qbench",
                               connect_timeout=int(os.environ.get("QBENCH_DB_TIMEOUT", "10")))

    def is_transient(self, exc: BaseException) -> bool:
        """The server went away or the connection broke: worth reconnecting and retrying."""
        import psycopg

        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))

    def reconnect(self) -> None:
        with self.lock:
            try:
                self.pg.close()
            except Exception:  # noqa: BLE001 - it is broken already
                pass
            self.pg = self._connect()

    def give_up(self, exc: BaseException) -> None:
        """Every later call raises `exc` at once, instead of each waiting on a dead server."""
        self.gone = exc

    # the subset of sqlite3.Connection the store and its readers use
    def execute(self, sql: str, params: Iterable[Any] = ()) -> _Cursor:
        if self.gone is not None:
            raise self.gone
        with self.lock:
            cur = self.pg.cursor()
            cur.execute(_placeholders(sql), tuple(params) or None)
            return _Cursor(cur)

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        rows = [tuple(r) for r in rows]
        if self.gone is not None:
            raise self.gone
        if not rows:
            return
        plain = _PLAIN_INSERT.match(sql)
        with self.lock, self.pg.cursor() as cur:
            if plain and len(rows) > 100:  # a trial's samples: COPY is ~50x faster than row-by-row inserts
                with cur.copy(f"COPY {plain.group(1)} ({plain.group(2)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cur.executemany(_placeholders(sql), rows)

    def create_schema(self, ddl: str) -> None:
        # DDL takes table locks that would queue behind other writers' transactions: skip it when
        # the tables are there (the usual case for a shared database)
        tables = ("runs", "cells", "trials", "trial_samples", "power_samples", "ops", "layer_sensitivity",
                  "qbench_meta")
        present = self.pg.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema=current_schema() "
                                  "AND table_name = ANY(%s)", (list(tables),)).fetchone()[0]
        if present == len(tables) and "run_seq" in self.columns("runs"):
            return
        for pattern, repl in _DDL_TYPES:
            ddl = re.sub(pattern, repl, ddl)
        with self.lock, self.pg.transaction():
            # orchestrators starting together must not race on CREATE TABLE
            self.pg.execute("SELECT pg_advisory_xact_lock(7243911)")
            for statement in filter(str.strip, ddl.split(";")):
                self.pg.execute(statement)
            self.pg.execute("ALTER TABLE runs ADD COLUMN IF NOT EXISTS run_seq BIGINT GENERATED BY DEFAULT AS IDENTITY")
            self.pg.execute("CREATE TABLE IF NOT EXISTS qbench_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def vacuum(self) -> str:
        """VACUUM FULL of the tables prune empties (rewritten: the files shrink), if their locks come within
        10 s; a farm run writing meanwhile keeps them, and plain VACUUM then makes the space reusable by
        later runs (the database stops growing, its files keep their size). Says which it did."""
        import psycopg

        with self.lock:
            try:
                self.pg.execute("SET lock_timeout = '10s'")
                for table in ("trial_samples", "trials", "cells", "runs", "ops", "power_samples", "layer_sensitivity"):
                    self.pg.execute(f"VACUUM (FULL, ANALYZE) {table}")
                return "VACUUM FULL"
            except psycopg.errors.LockNotAvailable:
                self.pg.execute("VACUUM (ANALYZE)")
                return "VACUUM: another writer held the tables, space reusable, files kept"
            finally:
                self.pg.execute("RESET lock_timeout")

    def size_bytes(self, _path=None) -> int:
        with self.lock:
            return int(self.pg.execute("SELECT pg_database_size(current_database())").fetchone()[0])

    @contextmanager
    def migration_lock(self):
        """Orchestrators opening one old database together migrate it once: the second waits here, then
        finds the migrations recorded."""
        with self.lock:
            self.pg.execute("SELECT pg_advisory_lock(7243912)")
            try:
                yield
            finally:
                self.pg.execute("SELECT pg_advisory_unlock(7243912)")

    def schema_version(self) -> int:
        exists = self.pg.execute("SELECT to_regclass('qbench_meta')").fetchone()[0]
        if exists is None:
            return 0
        row = self.pg.execute("SELECT value FROM qbench_meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def set_schema_version(self, version: int) -> None:
        if self.schema_version() == version:
            return
        self.pg.execute("INSERT INTO qbench_meta (key, value) VALUES ('schema_version', %s) "
                        "ON CONFLICT (key) DO UPDATE SET value=EXCLUDED.value", (str(int(version)),))

    def tables(self) -> set[str]:
        rows = self.pg.execute("SELECT table_name FROM information_schema.tables "
                               "WHERE table_schema=current_schema()").fetchall()
        return {r[0] for r in rows}

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.pg.info.transaction_status != TransactionStatus.IDLE

    def columns(self, table: str) -> set[str]:
        rows = self.pg.execute("SELECT column_name FROM information_schema.columns "
                               "WHERE table_schema=current_schema() AND table_name=%s", (table,)).fetchall()
        return {r[0] for r in rows}

    def widen_unique_key(self, table: str, key: tuple[str, ...], ddl: str) -> None:
        """An older table whose UNIQUE key lacks a column of `key`: swap the constraint (one transaction)."""
        def current():
            rows = self.pg.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype='u' AND "
                "conrelid = to_regclass(%s)", (table,)).fetchall()
            return rows

        wanted = f"UNIQUE ({', '.join(key)})"
        if any(definition == wanted for _, definition in current()):
            return
        with self.lock, self.pg.transaction():
            self.pg.execute("SELECT pg_advisory_xact_lock(7243911)")  # another orchestrator may be migrating
            rows = current()
            if any(definition == wanted for _, definition in rows):
                return
            for name, definition in rows:
                if definition.startswith("UNIQUE (run_id"):
                    self.pg.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            self.pg.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_key UNIQUE ({', '.join(key)})")

    def add_column(self, table: str, name: str, sql_type: str) -> None:
        for pattern, repl in _DDL_TYPES:
            sql_type = re.sub(pattern, repl, sql_type)
        self.pg.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {sql_type}")

    def close(self) -> None:
        self.pg.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
