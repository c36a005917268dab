"""Issue 23, items 6-7: inputs a hostile user (or a bad night) gives qbench, each answered in one
clear line before any work, or recorded on its cell with the real cause. Real runs in subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, tiny_suite, write_suite


def qbench(*args, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERM")}
    return subprocess.run([sys.executable, "-m", "qbench", *map(str, args)], capture_output=True, text=True,
                          timeout=900, env=env, **kw)


def one_line(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


@pytest.fixture
def folder(tmp_path):
    shutil.copytree(REPO / "suites" / "models", tmp_path / "models")
    return tmp_path


def test_an_edited_cache_meta_json_is_rebuilt_never_reported(folder):
    s = write_suite(folder, tiny_suite("meta"))
    db = folder / "q.db"
    first = qbench("run", s, "--db", db, "--reports-dir", folder / "reports", "--json", cwd=folder)
    assert first.returncode == 0, first.stderr[-3000:]
    [cell] = json.loads(first.stdout)["cells"]
    key = sqlite3.connect(db).execute("SELECT artifact_key FROM cells").fetchone()[0]
    assert cell["arena_bytes"] and cell["delegated_ops"] is not None
    meta_path = Path(os.environ["QBENCH_CACHE"]) / "artifacts" / key / "meta.json"  # tests/conftest.py
    meta = json.loads(meta_path.read_text())
    meta["arena_bytes"] = 7
    meta["delegation"]["delegated_ops"] = 12345
    meta_path.write_text(json.dumps(meta))
    again = qbench("run", s, "--db", db, "--reports-dir", folder / "reports", "--json", cwd=folder)
    assert again.returncode == 0, again.stderr[-3000:]
    [c] = json.loads(again.stdout)["cells"]
    assert c["cached_artifact"] is False  # rebuilt: the figures are measured again, not read from the edit
    assert c["arena_bytes"] == cell["arena_bytes"] != 7
    assert c["delegated_ops"] == cell["delegated_ops"] != 12345
