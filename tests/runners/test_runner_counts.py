"""Issue 23 item 6: a count too large for the device's memory is named as the cause, not the .pte."""

from __future__ import annotations

import pytest

from tests.runners.test_native_runner import quick, run, runner  # noqa: F401  (the session's host build)

pytestmark = pytest.mark.slow


def test_huge_iterations_blame_the_count_not_the_program(runner, models):  # noqa: F811
    huge = 10**15  # 16 PB of samples: the reservation fails at once, before any measuring
    proc = run(runner, "--model", models["fp32"], "--json",
               *quick("--iterations", huge, "--max-iterations", huge), check=False)
    assert proc.returncode == 1
    last = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1]
    assert last == ("qbench-runner: out of memory while reserving room for --iterations samples — lower "
                    "iterations (every sample is kept)")
    assert "malformed" not in proc.stderr
