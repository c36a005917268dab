"""The tour in the README and on the getting-started page runs end to end, command by command, on a tiny
suite: the suite path and name are swapped for the tiny one, RUN_A/RUN_B for the runs it made."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.helpers import qbench, tiny_suite, write_suite
from tests.docs.doc_commands import REPO

pytestmark = pytest.mark.slow

TOURS = [REPO / "README.md", REPO / "docs" / "getting-started.md"]


def tour(path) -> list[str]:
    """The commands of the fenced block after the `<!-- tour` marker, comments dropped."""
    text = path.read_text()
    block = re.search(r"<!-- tour.*?-->\s*```bash\n(.*?)```", text, re.S)
    assert block, f"{path.name}: no tour block"
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_and_the_getting_started_page_show_the_same_tour():
    assert tour(TOURS[0]) == tour(TOURS[1])


def test_the_tour_runs_end_to_end(suite_dir):
    suite = write_suite(suite_dir, tiny_suite("tour", recipes=("{name: fp32, kind: fp32}", "{name: int8-ptq, kind: ptq}"),
                                              top="calibration: {kind: random, samples: 4}\n"))
    runs: list[str] = []
    for argv in tour(TOURS[0]):
        assert argv[0] == "qbench"
        args = [_swap(a, suite, runs) for a in argv[1:]]
        done = qbench(*args, cwd=suite_dir, timeout=900)
        gate = "--fail-on-regression" in args
        # the gate may find a real regression between two runs on a busy machine: exit 3 is its answer
        assert done.returncode in ((0, 3) if gate else (0,)), f"qbench {' '.join(args)}\n{done.stderr[-3000:]}"
        if args[0] == "run" and "--check" not in args:
            runs.append(re.search(r"run (\d{8}-\d{6}-[0-9a-f]+)", done.stdout + done.stderr).group(1))
        if gate:
            assert (suite_dir / "reports" / runs[-1] / "junit.xml").is_file()
    assert len(runs) == 2
    for made in ("results.csv", "report.html", "trend.html"):
        assert (suite_dir / made).stat().st_size > 0, made


def _swap(arg: str, suite, runs: list[str]) -> str:
    return {"suites/smoke.yaml": str(suite), "smoke": "tour", "RUN_A": runs[0] if runs else arg,
            "RUN_B": runs[1] if len(runs) > 1 else arg}.get(arg, arg)
