"""Nothing lost, nothing wrong (issue 10, items 1-3, 8-9), with real runs in subprocesses:

- a cache folder that is a plain file, or read-only: refused before any run exists (exit 2);
- a full disk under the store: the run is `failed` with the cause, one line, the resume command;
  the next nightly gate does not take it as a baseline and fails saying why;
- SIGTERM: like Ctrl-C, run `interrupted`, resume line, exit 143;
- a cached .pte overwritten after it was built: a miss, rebuilt, the entry healed.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO, qbench, qbench_popen, write_suite
from tests.mounts import can_mount, read_only_folder, small_disk

pytestmark = pytest.mark.slow

# tiny_mlp fp32 exactly as tests/pipeline/test_end_to_end.py builds it: the artifact is shared
SUITE = """
name: lost
models:
  - name: tiny_mlp
    source: python:models/tiny.py:tiny_mlp
    inputs: [{shape: [1, 64], dtype: float32}]
recipes:
  - {name: fp32, kind: fp32}
calibration: {kind: random, samples: 8, seed: 0}
numerics: {samples: 4}
devices: [host]
benchmark: {warmup: 2, warmup_seconds: 0, iterations: 5, min_seconds: MIN_SECONDS, max_iterations: 200000, trials: TRIALS, threads: 1}
"""


def suite(folder, *, min_seconds=0, trials=1):
    shutil.copytree(REPO / "suites" / "models", folder / "models", dirs_exist_ok=True)
    return write_suite(folder, SUITE.replace("MIN_SECONDS", str(min_seconds)).replace("TRIALS", str(trials)))


def no_traceback(proc) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


def test_a_cache_folder_that_is_a_file_or_read_only_is_refused_before_the_run(tmp_path):
    s = suite(tmp_path)
    (tmp_path / "afile").write_text("")
    proc = qbench("run", s, "--db", tmp_path / "q.db", "--cache-dir", tmp_path / "afile", cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 2 and "--cache-dir" in proc.stderr and "is a file, not a folder" in proc.stderr
    assert not (tmp_path / "q.db").exists()  # no run was started, so none can be mistaken for complete
    with read_only_folder(tmp_path / "ro") as ro:
        proc = qbench("run", s, "--db", tmp_path / "q.db", "--cache-dir", ro, cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 2 and "--cache-dir" in proc.stderr and "cannot write" in proc.stderr
    proc = qbench("run", s, "--db", tmp_path / "q.db", "--fail-on-regression", "abc", cwd=tmp_path)
    assert proc.returncode == 2 and "threshold 'abc'" in proc.stderr and not (tmp_path / "q.db").exists()


# Where no tmpfs can be mounted: the same SQLITE_FULL from SQLite itself, by capping the store's pages.
CAPPED_STORE = """
import sys
from qbench.results import store
init = store.ResultsStore.__init__
def capped(self, *args, **kwargs):
    init(self, *args, **kwargs)
    if not self.readonly:
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        self.db.execute(f"PRAGMA max_page_count={pages + 40}")
store.ResultsStore.__init__ = capped
from qbench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _fill_the_store_disk(tmp_path, s):
    """A run whose store sits on a 300 KiB disk: the first trial's samples (~1 s of a tiny model, tens
    of thousands of rows) do not fit. Returns (process, a copy of the store)."""
    copy = tmp_path / "q.db"
    if not can_mount(tmp_path / "probe"):
        proc = subprocess.run([sys.executable, "-c", CAPPED_STORE, "run", str(s), "--db", str(copy),
                               "--reports-dir", str(tmp_path / "reports")], capture_output=True, text=True,
                              timeout=900, cwd=tmp_path)
        return proc, copy
    with small_disk(tmp_path / "small", "300k") as disk:
        proc = qbench("run", s, "--db", disk / "q.db", "--reports-dir", tmp_path / "reports", cwd=tmp_path)
        src = sqlite3.connect(disk / "q.db")
        dst = sqlite3.connect(copy)
        src.backup(dst)
        src.close(), dst.close()
    return proc, copy


def test_a_full_disk_fails_the_run_with_its_cause_and_the_next_gate_does_not_pass(tmp_path):
    s = suite(tmp_path, min_seconds=1.0)
    proc, db = _fill_the_store_disk(tmp_path, s)
    no_traceback(proc)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "failed: the disk holding" in proc.stderr and "is full" in proc.stderr
    assert "--resume" in proc.stderr
    run_id, status, error = sqlite3.connect(db).execute("SELECT run_id, status, error FROM runs").fetchone()
    assert status == "failed" and "full" in error

    # the next night: the crashed run must not be the baseline, and the gate must not pass
    s2 = suite(tmp_path, min_seconds=0)
    gate = qbench("run", s2, "--db", db, "--reports-dir", tmp_path / "reports", "--baseline", "last",
                  "--fail-on-regression", "5%", "--json", cwd=tmp_path)
    no_traceback(gate)
    assert gate.returncode == 1, gate.stderr[-3000:]
    assert "no earlier complete run of suite 'lost' with measured cells" in gate.stderr
    assert f"{run_id} failed" in gate.stderr
    doc = json.loads(gate.stdout)
    assert doc["baseline"]["run_id"] is None and doc["baseline"]["nothing_compared"]


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    s = suite(tmp_path, min_seconds=1.0, trials=3)
    db = tmp_path / "q.db"
    proc = qbench_popen("run", s, "--db", db, "--reports-dir", tmp_path / "reports", cwd=tmp_path)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # terminate once one trial is stored (the next is in flight)
        time.sleep(0.3)
        try:
            if db.exists() and sqlite3.connect(db).execute("SELECT count(*) FROM trials").fetchone()[0] >= 1:
                break
        except sqlite3.OperationalError:
            continue
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-3000:]
    assert "terminated (SIGTERM)" in err and "--resume" in err and "Traceback" not in err
    con = sqlite3.connect(db)
    assert con.execute("SELECT status FROM runs").fetchone()[0] == "interrupted"
    assert con.execute("SELECT count(*) FROM trials").fetchone()[0] >= 1  # finished work kept


def test_a_cached_program_overwritten_after_it_was_built_is_rebuilt_and_the_entry_heals(tmp_path):
    from qbench.export.cache import ArtifactCache

    s = suite(tmp_path)
    db = tmp_path / "q.db"
    first = qbench("run", s, "--db", db, "--reports-dir", tmp_path / "reports", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    key = sqlite3.connect(db).execute("SELECT artifact_key FROM cells").fetchone()[0]
    cache = ArtifactCache()  # QBENCH_CACHE: the session's cache (tests/conftest.py)
    pte = cache.root / key / "model.pte"
    size = pte.stat().st_size
    with open(pte, "r+b") as f:  # 200 weights become 1e30: same size, another program
        f.seek(size // 2)
        f.write(b"\xca\xf2\x49\x71" * 200)
    again = qbench("run", s, "--db", db, "--reports-dir", tmp_path / "reports", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    [c] = json.loads(again.stdout)["cells"]
    assert c["status"] == "ok" and c["cached_artifact"] is False  # figures from a fresh build, not meta.json
    assert c["pte_bytes"] == pte.stat().st_size
    assert cache.lookup(key) is not None  # healed: the next run hits it again
