"""`--input-sets N` (device numerics): both runners write the outputs of every input set, in order,
equal to the runtime's output for each set; a file of the wrong size is one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qbench.runners.native_build import build_runner
from tests.runners.test_native_runner import python_runtime, quick, shared_cache

SCRIPT = Path(__file__).resolve().parents[2] / "qbench" / "runners" / "python_runner.py"


@pytest.fixture(scope="module")
def commands(tmp_path_factory):
    return {"native": [str(build_runner("host", cache_dir=shared_cache(tmp_path_factory)))],
            "python": [sys.executable, str(SCRIPT)]}


@pytest.mark.parametrize("runner", ["native", "python"])
def test_every_set_gets_its_outputs(commands, models, runner, tmp_path):
    xs = np.random.default_rng(5).standard_normal((3, 1, 3, 16, 16)).astype(np.float32)
    (tmp_path / "in.bin").write_bytes(xs.tobytes())
    proc = subprocess.run([*commands[runner], "--model", models["int8"], "--inputs", tmp_path / "in.bin",
                           "--input-sets", "3", "--outputs", tmp_path / "out.bin", "--json",
                           *map(str, quick("--iterations", 1))], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype=np.float32).reshape(3, 1, 5)
    for k in range(3):
        np.testing.assert_allclose(got[k], python_runtime(models["int8"], xs[k]), rtol=0, atol=1e-6)

    (tmp_path / "short.bin").write_bytes(xs[:2].tobytes())
    bad = subprocess.run([*commands[runner], "--model", models["int8"], "--inputs", tmp_path / "short.bin",
                          "--input-sets", "3", "--json", *map(str, quick())], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1].startswith("qbench-runner: ")
    assert "x 3 sets" in bad.stderr
