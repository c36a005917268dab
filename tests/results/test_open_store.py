"""Every command opens the results store through `open_store`: a wrong, damaged, foreign or newer
file is one clear line (exit 2) and is never created or changed; a store on a read-only filesystem
is still read."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

import qbench.results
from qbench.cli import main
from qbench.errors import StoreError
from qbench.results.store import SCHEMA_VERSION, open_store
from tests.mounts import read_only_folder
from tests.report.synthetic import BASE, NEW, build_nightly_db


@pytest.fixture(scope="module")
def store_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "q.db"
    build_nightly_db(path)
    con = sqlite3.connect(path)  # one self-contained file: no WAL beside it
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    return path


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_clear_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qbench: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("argv", [
    ["results"], ["results", "--runs"], ["ops", "r1"], ["compare", "a", "b"], ["report", "a"],
])
def test_a_missing_store_is_an_error_and_is_not_created(tmp_path, capsys, argv):
    db = tmp_path / "nowhere.db"
    code, _, err = cli(capsys, *argv, "--db", db)
    assert code == 2 and "no results store at" in one_clear_line(err)
    assert not db.exists()
    with pytest.raises(StoreError, match="no results store"):
        qbench.results.load(db)
    assert not db.exists()


def test_garbage_truncated_foreign_and_folder(tmp_path, capsys, store_file):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00\xffnot sqlite at all" * 500)
    code, _, err = cli(capsys, "results", "--db", garbage)
    assert code == 2 and "is not an SQLite database" in one_clear_line(err)

    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(store_file.read_bytes()[: store_file.stat().st_size // 3])
    code, _, err = cli(capsys, "results", "--db", truncated, "--samples")
    assert code == 2 and "is damaged" in one_clear_line(err)

    scribbled = tmp_path / "scribbled.db"
    data = bytearray(store_file.read_bytes())
    data[4096:12288] = b"\xa5" * 8192  # pages 2-3 overwritten
    scribbled.write_bytes(bytes(data))
    code, _, err = cli(capsys, "results", "--db", scribbled)
    assert code == 2 and "is damaged" in one_clear_line(err)

    foreign = tmp_path / "foreign.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE photos (id INTEGER)")
    con.commit()
    con.close()
    before = foreign.read_bytes()
    for argv in (["results"], ["compare", "a", "b"]):
        code, _, err = cli(capsys, *argv, "--db", foreign)
        assert code == 2 and "not a qbench results store" in one_clear_line(err)
    assert foreign.read_bytes() == before  # no qbench tables were added to somebody else's database

    code, _, err = cli(capsys, "results", "--db", tmp_path)
    assert code == 2 and "is a folder" in one_clear_line(err)


def test_a_store_from_a_newer_qbench_is_refused_in_one_line(tmp_path, capsys, store_file):
    newer = tmp_path / "newer.db"
    shutil.copy(store_file, newer)
    con = sqlite3.connect(newer)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.close()
    for argv in (["results"], ["compare", BASE, NEW], ["ops", NEW]):
        code, _, err = cli(capsys, *argv, "--db", newer)
        assert code == 2 and "written by a newer qbench" in one_clear_line(err)


def test_a_store_on_a_read_only_filesystem_is_read_and_a_run_cannot_write_it(tmp_path, capsys, store_file):
    with read_only_folder(tmp_path / "ro", {"q.db": store_file}) as ro:
        db = ro / "q.db"
        code, out, err = cli(capsys, "results", "--db", db, "--runs")
        assert code == 0 and BASE in out and NEW in out, err
        code, out, err = cli(capsys, "compare", BASE, NEW, "--db", db, "--json")
        assert code == 0 and '"base_run"' in out, err
        assert len(qbench.results.load(db, NEW)) > 0 and len(qbench.results.load_samples(db, NEW)) > 0
        with pytest.raises(StoreError, match="cannot write the results store"):
            open_store(db, create=True)
        code, _, err = cli(capsys, "results", "--db", db, "-o", ro / "out.csv")
        assert code == 2 and "-o" in one_clear_line(err) and "cannot write" in err
        # `qbench run` needs to write: refused before the suite is even read
        code, _, err = cli(capsys, "run", tmp_path / "no-suite.yaml", "--db", db, "--reports-dir", tmp_path / "rep")
        assert code == 2 and "cannot write the results store" in one_clear_line(err)
        code, _, err = cli(capsys, "run", tmp_path / "no-suite.yaml", "--db", tmp_path / "q.db", "--reports-dir", ro)
        assert code == 2 and "--reports-dir" in one_clear_line(err) and not (tmp_path / "q.db").exists()


def test_an_older_store_on_a_read_only_filesystem_reads_with_the_newer_columns_empty(tmp_path):
    """Schema 1 (no accuracy/power columns, no runs.error) cannot be migrated in place: read as NULL."""
    from tests.datasets.test_accuracy_columns import OLD_CELLS

    old = tmp_path / "old.db"
    con = sqlite3.connect(old)
    con.executescript(OLD_CELLS)
    con.close()
    with read_only_folder(tmp_path / "ro", {"old.db": old}) as ro:
        df = qbench.results.load(ro / "old.db")
        assert list(df.model) == ["m"] and df.accuracy_top1.isna().all()
        store = open_store(ro / "old.db", readonly=True)
        assert store.run("r1")["error"] is None
        store.close()


def test_output_paths_that_cannot_be_written_are_one_line(tmp_path, capsys, store_file):
    (tmp_path / "results").mkdir()
    code, _, err = cli(capsys, "results", "--db", store_file, "-o", tmp_path / "results")
    assert code == 2 and "is a folder" in one_clear_line(err)
    code, _, err = cli(capsys, "report", NEW, "--db", store_file, "-o", tmp_path / "results")
    assert code == 2 and "is a folder" in one_clear_line(err)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = cli(capsys, "report", NEW, "--db", store_file, "-o", blocker / "r.html")
    assert code == 2 and "cannot write" in one_clear_line(err)


def test_a_read_only_store_whose_last_changes_are_in_its_wal_says_so(tmp_path, capsys, store_file):
    """On a read-only filesystem SQLite cannot merge the -wal file; reading without it would be silently
    stale, so the user is told to copy both files."""
    import subprocess
    import sys

    live = tmp_path / "live.db"
    shutil.copy(store_file, live)
    # a writer that exits without checkpointing leaves its changes in live.db-wal
    code = ("import sqlite3, os; c = sqlite3.connect(%r); c.execute('PRAGMA journal_mode=WAL'); "
            "c.execute(\"UPDATE runs SET status='failed'\"); c.commit(); os._exit(0)" % str(live))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    wal = tmp_path / "live.db-wal"
    assert wal.stat().st_size > 0
    with read_only_folder(tmp_path / "ro", {"q.db": live, "q.db-wal": wal}) as ro:
        code, _, err = cli(capsys, "results", "--db", ro / "q.db", "--runs")
    assert code == 2 and "q.db-wal" in one_clear_line(err) and "copy both files" in err


def test_a_damaged_sample_blob_is_one_line_naming_cell_and_trial(tmp_path, capsys, store_file):
    """A blob overwritten inside an otherwise healthy SQLite file: the pages read, the samples do not."""
    damaged = tmp_path / "damaged-blob.db"
    shutil.copy(store_file, damaged)
    con = sqlite3.connect(damaged)
    cell, trial = con.execute("SELECT cell_id, trial FROM trial_samples ORDER BY cell_id LIMIT 1").fetchone()
    con.execute("UPDATE trial_samples SET latency_ns=? WHERE cell_id=? AND trial=?", (b"QS\x01\x02" + b"\x00" * 30, cell, trial))
    con.commit()
    con.close()
    code, _, err = cli(capsys, "results", "--db", damaged, "--samples")
    line = one_clear_line(err)
    assert code == 2 and f"cell {cell} trial {trial}" in line and "damaged" in line and "backup" in line
