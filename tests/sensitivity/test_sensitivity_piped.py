"""`qbench sensitivity` piped into a log (no terminal, no COLUMNS): a line per step, and the layer
table in plain aligned columns with every value whole (rich cut it at 80 columns before)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import qbench, write_suite
from tests.sensitivity.test_sensitivity_cli import SUITE

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


def test_piped_sensitivity_logs_each_step_and_prints_the_table_uncut(tmp_path):
    shutil.copy(HERE / "bad_layer_model.py", tmp_path / "bad_layer_model.py")
    suite = write_suite(tmp_path, SUITE)
    proc = qbench("sensitivity", suite, "--model", "badnet", "--recipe", "int8", "--target", "sqnr>=30",
                  "--db", tmp_path / "q.db", "--reports-dir", tmp_path / "reports", timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    err = proc.stderr.splitlines()
    steps = [line for line in err if line.startswith("[sensitivity] badnet/int8: ")]
    assert any("build model" in s for s in steps) and any(re.search(r"layer \d+/\d+", s) for s in steps)
    head = next(i for i, line in enumerate(err) if line.split()[:3] == ["#", "module", "op"])
    table = err[head + 1: head + 7]
    assert "…" not in proc.stderr and max(map(len, err[head: head + 7])) > 80  # not cut at 80 columns
    assert [line.split()[1] for line in table] == ["stem", "spiky.up", "spiky", "spiky.down", "mid", "head"]
    assert all(re.search(r"\d+\.\d{4}", line) for line in table)  # the cosine with its four decimals
