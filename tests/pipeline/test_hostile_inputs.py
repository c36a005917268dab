"""Issue 23, items 6-7: inputs a hostile user (or a bad night) gives qbench, each answered in one
clear line before any work, or recorded on its cell with the real cause. Real runs in subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.helpers import REPO, qbench, tiny_suite, write_suite


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


PT2_SUITE = """
name: pt2
models:
  - name: saved
    source: pt2:saved.pt2
    inputs: [{shape: [1, 64]}]
recipes: [{name: fp32, kind: fp32}]
"""


def test_a_broken_pt2_file_is_one_line_without_torchs_traceback(tmp_path):
    import zipfile

    s = write_suite(tmp_path, PT2_SUITE)
    (tmp_path / "saved.pt2").write_bytes(b"")
    proc = qbench("run", s, "--check", cwd=tmp_path)
    assert proc.returncode == 2
    title, line = proc.stderr.strip().splitlines()  # the suite's title line, then one line for the file
    assert "models[0].source:" in line and "saved.pt2: the file is empty (0 bytes), not a torch.export program" in line
    assert "torch.export.save(" in line
    with zipfile.ZipFile(tmp_path / "saved.pt2", "w") as z:  # a zip, but not one torch.export wrote
        z.writestr("x", "y")
    proc = qbench("run", s, "--check", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    title, line = proc.stderr.strip().splitlines()
    assert "saved.pt2: torch.export.load cannot read it (RuntimeError: " in line, line


SORTER = '''
import torch


class Sorter(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)

    def forward(self, x):
        return torch.sort(self.lin(x), dim=-1).values


def sorter():
    return Sorter()
'''


def test_a_program_whose_runtime_lacks_a_kernel_fails_at_load_not_export(tmp_path):
    (tmp_path / "sorter.py").write_text(SORTER)
    s = write_suite(tmp_path, tiny_suite("sorter", source="sorter.py:sorter", shape="1, 8"))
    proc = qbench("run", s, "--db", tmp_path / "q.db", "--reports-dir", tmp_path / "reports", "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    [c] = json.loads(proc.stdout)["cells"]
    assert c["status"] == "failed"
    stage, error = sqlite3.connect(tmp_path / "q.db").execute("SELECT stage, error FROM cells").fetchone()
    assert stage == "load", (stage, error)
    assert error.startswith("the runtime has no kernel for aten::sort") and "cannot load" in error
    assert "\n" not in error
    assert f"load: {error}" in proc.stderr
