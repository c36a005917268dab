"""A model is built once per run, shared by the suite check's preflight and every recipe; a rerun
whose variants are all in the artifact cache builds no model at all (structure issue, item 4)."""

from __future__ import annotations

import json

from qbench.cli import main
from tests.helpers import write_suite

COUNTED = """
import os
from models.tiny import tiny_mlp


def counted_mlp():
    with open(os.environ["QBENCH_TEST_BUILDS"], "a") as f:
        f.write("built\\n")
    return tiny_mlp()
"""

SUITE = """
name: once
models:
  - name: mlp
    source: python:counted.py:counted_mlp
    inputs: [{shape: [1, 64]}]
recipes:
  - {name: fp32, kind: fp32}
  - {name: int8-ptq, kind: ptq}
  - {name: int8-dynamic, kind: dynamic}
calibration: {kind: random, samples: 4, seed: 0}
devices: [host]
benchmark: {warmup: 1, warmup_seconds: 0, iterations: 3, min_seconds: 0, trials: 1, threads: 1}
"""


def test_one_build_per_run_and_none_when_every_variant_is_cached(suite_dir, monkeypatch, capsys):
    builds = suite_dir / "builds.log"
    monkeypatch.setenv("QBENCH_TEST_BUILDS", str(builds))
    monkeypatch.setenv("QBENCH_CACHE", str(suite_dir / "cache"))
    monkeypatch.syspath_prepend(str(suite_dir))  # counted.py imports the suite's models package
    monkeypatch.chdir(suite_dir)
    (suite_dir / "counted.py").write_text(COUNTED)
    suite = write_suite(suite_dir, SUITE)
    args = ["run", str(suite), "--db", str(suite_dir / "r.db"), "--json"]

    assert main(args) == 0
    cold = json.loads(capsys.readouterr().out)
    assert [c["status"] for c in cold["cells"]] == ["ok"] * 3
    assert [c["cached_artifact"] for c in cold["cells"]] == [False] * 3
    assert builds.read_text().count("built") == 1  # preflight and three recipes share one build

    assert main(args) == 0
    warm = json.loads(capsys.readouterr().out)
    assert [c["cached_artifact"] for c in warm["cells"]] == [True] * 3
    assert builds.read_text().count("built") == 1  # all three variants cached: nothing built again
