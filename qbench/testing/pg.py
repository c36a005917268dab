"""A real PostgreSQL server for the tests: QBENCH_TEST_PG_URL when CI started one
(scripts/pg_test_server.sh), else started here through the same script, else a skip with the reason.

Each test gets a fresh database on that server (CREATE DATABASE is cheap), so tests never see
each other's rows.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pg_test_server.sh"


class PgServer:
    def __init__(self, url: str, folder: str | None = None):
        self.url, self.folder = url, folder  # folder set = we started it, we stop it

    @classmethod
    def start(cls) -> "PgServer":
        """The CI server, or one started now. Raises RuntimeError(reason) when neither is possible."""
        url = os.environ.get("QBENCH_TEST_PG_URL")
        if url:
            return cls(url)
        if not SCRIPT.is_file() or not shutil.which("bash"):
            raise RuntimeError(f"{SCRIPT} not found")
        import tempfile

        folder = tempfile.mkdtemp(prefix="qbench-pg.")
        proc = subprocess.run(["bash", str(SCRIPT), "start", folder], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"PostgreSQL could not be started: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
        return cls(proc.stdout.strip().splitlines()[-1], folder)

    def new_database(self) -> str:
        """A fresh, empty database on the server; its URL."""
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name

    def halt(self) -> None:
        """A database outage: the server stops at once (its data stays)."""
        subprocess.run(["bash", str(SCRIPT), "halt", self.folder], check=True, capture_output=True, timeout=60)

    def restart(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "restart", self.folder], check=True, capture_output=True, timeout=60)

    @classmethod
    def start_own(cls) -> "PgServer":
        """A server of its own (for a test that stops it), whatever CI started."""
        saved = os.environ.pop("QBENCH_TEST_PG_URL", None)
        try:
            return cls.start()
        finally:
            if saved is not None:
                os.environ["QBENCH_TEST_PG_URL"] = saved

    def stop(self) -> None:
        if self.folder:
            subprocess.run(["bash", str(SCRIPT), "stop", self.folder], capture_output=True, timeout=60)
