"""Issue 23 item 6: suite options a hostile user (or a generator gone wrong) writes are bounded and
answered at the check, each naming its limit: sweep lengths, affinity cores, counts."""

from __future__ import annotations

import pytest

from qbench.cli import main
from qbench.pipeline.thread_count import host_cores
from qbench.suite import sweep
from tests.conftest import write_suite

MODEL = """
name: s
models:
  - name: m
    source: python:models/tiny.py:tiny_mlp
    inputs: [{shape: [1, 64]}]
recipes: [{name: fp32, kind: fp32}]
"""


def check(capsys, folder, benchmark: str) -> tuple[int, str]:
    path = write_suite(folder, MODEL + f"benchmark: {benchmark}\n")
    code = main(["run", str(path), "--check"])
    return code, capsys.readouterr().err


def numbers(n: int) -> str:
    return "[" + ", ".join(str(i) for i in range(1, n + 1)) + "]"


def test_a_threads_list_longer_than_the_limit_is_refused_naming_it(suite_dir, capsys):
    code, err = check(capsys, suite_dir, f"{{threads: {numbers(50_000)}}}")
    assert code == 2, err
    assert f"benchmark.threads: a sweep lists at most {sweep.MAX_VALUES} values, this one has 50000" in err
    assert len(err.splitlines()) == 2 and "Traceback" not in err


def test_a_long_threads_sweep_gets_one_folded_warning(suite_dir, capsys):
    code, err = check(capsys, suite_dir, f"{{threads: {numbers(sweep.MAX_VALUES)}}}")
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    over = sweep.MAX_VALUES - host_cores()
    first = host_cores() + 1
    assert warnings == [
        f"warning: threads: {first}, {first + 1}, {first + 2}, {first + 3}, {first + 4}, …, {sweep.MAX_VALUES} "
        f"({over} values) on host are more than its {host_cores()} core(s): the extra threads time-share cores, so "
        f"latency measures contention rather than the model; use threads <= {host_cores()}"]


def test_the_sweep_points_together_are_bounded(suite_dir, capsys):
    code, err = check(capsys, suite_dir, f"{{threads: {numbers(100)}, batch: {numbers(100)}}}")
    assert code == 2, err
    assert (f"benchmark: the sweep makes 10000 points (100 threads × 100 batch); at most {sweep.MAX_POINTS}"
            in err)


def test_a_value_listed_twice_is_still_found_in_a_long_list():
    class Info:
        field_name = "affinity"

    with pytest.raises(ValueError, match=r"\[0, 1\] is listed twice"):
        sweep.check_sweep([[0, 1], [2], "big", [0, 1]], Info)
