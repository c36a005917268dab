"""Sweep lists in a suite (`threads`, `affinity`, `batch`): each bad list is one line naming file:line
and key; a good one multiplies the cells; a single value (or a list of one) changes nothing."""

from __future__ import annotations

from qbench.cli import main
from qbench.pipeline import grid
from qbench.pipeline.check import check_suite
from qbench.pipeline.thread_count import host_cores
from qbench.suite.loader import load_suite
from tests.helpers import write_suite

HEAD = """
name: s
models:
  - name: tiny_mlp
    source: python:models/tiny.py:tiny_mlp
    inputs: [{shape: [1, 64]}]
recipes: [{name: fp32, kind: fp32}, {name: dyn, kind: dynamic}]
"""


def _check(capsys, path) -> tuple[int, str, str]:
    code = main(["run", str(path), "--check"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_bad_lists_name_the_line_the_key_and_the_rule(suite_dir, capsys):
    path = write_suite(suite_dir, HEAD + """
benchmark:
  threads: [1, 2, 2]
  batch: []
  affinity: [big, [0, -1]]
""")
    code, _, err = _check(capsys, path)
    assert code == 2
    assert f"{path}:9: benchmark.threads: 2 is listed twice; a sweep lists each value once" in err
    assert f"{path}:10: benchmark.batch: a sweep list needs at least one value (a positive integer)" in err
    assert (f"{path}:11: benchmark.affinity: each value of the sweep should be a core list like [0, 1] or a "
            "cluster name (little, mid, big, prime), got [0, -1]") in err


def test_bad_values_in_and_out_of_lists(suite_dir, capsys):
    path = write_suite(suite_dir, HEAD + """
benchmark: {threads: [0, auto], batch: 0, affinity: huge}
""")
    code, _, err = _check(capsys, path)
    assert code == 2
    assert f"{path}:8: benchmark.threads: each value of the sweep should be a positive integer or `auto`, got 0" in err
    assert f"{path}:8: benchmark.batch: should be a positive integer, or a list of them (a sweep) (got 0)" in err
    assert (f"{path}:8: benchmark.affinity: should be a core list like [0, 1] or a cluster name (little, mid, big, "
            "prime), or a list of them (a sweep) (got 'huge')") in err
    assert "Traceback" not in err


def test_a_sweep_multiplies_the_cells_and_names_its_points(suite_dir, capsys):
    path = write_suite(suite_dir, HEAD + """
benchmark: {threads: [1, 2], batch: [1, 3], affinity: [0, 1]}
""")
    code, out, err = _check(capsys, path)
    assert code == 0 and "1 models × 2 recipes × 1 devices × 4 sweep points" in out + err
    checked = check_suite(load_suite(path), preflight=False)
    cells = grid.cells(checked)
    assert [c.sweep for c in cells[:4]] == ["threads=1 batch=1", "threads=1 batch=3", "threads=2 batch=1",
                                             "threads=2 batch=3"]
    assert len(cells) == 8 and len(set(cells)) == 8
    # a batch is a program of its own; the core list [0, 1] is one affinity, not a sweep
    shapes = {(v.label, tuple(v.model.inputs[0].shape)) for v in grid.variants(checked)}
    assert shapes == {("tiny_mlp/fp32 [batch=1]", (1, 64)), ("tiny_mlp/fp32 [batch=3]", (3, 64)),
                      ("tiny_mlp/dyn [batch=1]", (1, 64)), ("tiny_mlp/dyn [batch=3]", (3, 64))}
    assert {c.affinity for c in cells} == {None}


def test_a_piped_check_line_is_one_line_whatever_the_columns(suite_dir, capsys, monkeypatch):
    """Piped output has no width: rich's 80-column default (or a narrow $COLUMNS) never folds a line."""
    path = write_suite(suite_dir, HEAD + """
benchmark: {threads: [1, 2], batch: [1, 3]}
""")
    for columns in ("30", None):
        if columns:
            monkeypatch.setenv("COLUMNS", columns)
        else:
            monkeypatch.delenv("COLUMNS", raising=False)
        code, out, err = _check(capsys, path)
        assert code == 0
        assert f"{path}: ok — 1 models × 2 recipes × 1 devices × 4 sweep points\n" in out + err


def test_single_values_keep_the_cells_they_always_had(suite_dir):
    plain = write_suite(suite_dir, HEAD + "benchmark: {threads: 2}\n", "plain.yaml")
    one = write_suite(suite_dir, HEAD + "benchmark: {threads: [2], affinity: [big], batch: [1]}\n", "one.yaml")
    for path in (plain, one):
        cells = grid.cells(check_suite(load_suite(path), preflight=False))
        assert [(c.label, c.sweep, c.threads) for c in cells] == [("tiny_mlp/fp32@host", "", None),
                                                                   ("tiny_mlp/dyn@host", "", None)]


def test_a_thread_sweep_warns_only_for_the_counts_above_the_cores(suite_dir, capsys):
    too_many = host_cores() * 4
    path = write_suite(suite_dir, HEAD + f"benchmark: {{threads: [1, {too_many}]}}\n")
    code, _, err = _check(capsys, path)
    assert code == 0
    assert err.count("warning: threads:") == 1 and f"threads: {too_many} on host is more than" in err
