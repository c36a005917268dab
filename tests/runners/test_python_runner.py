"""The Python runner (python_runner.py): what a device with Python + the executorch wheel runs.
Real .pte files, the real runtime; outputs compared with executorch.runtime in this process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from qbench.runners.python_launch import SCRIPT
from tests.runners.test_native_runner import python_runtime, quick


def run_script(*args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize("kind", ["fp32", "int8"])
def test_outputs_equal_the_runtime_and_json_is_complete(models, kind, tmp_path):
    x = np.random.default_rng(3).standard_normal((1, 3, 16, 16)).astype(np.float32)
    inputs, outputs = tmp_path / "in.bin", tmp_path / "out.bin"
    inputs.write_bytes(x.tobytes())
    proc = run_script("--model", models[kind], "--inputs", inputs, "--outputs", outputs, "--threads", 1, "--json",
                      *quick("--iterations", 3))
    result = json.loads(proc.stdout)
    assert result["runner"] == "python" and len(result["samples_ns"]) == 3 and result["threads"] == 1
    assert result["outputs"] == [{"dtype": "float32", "shape": [1, 5]}] and result["peak_rss_bytes"] > 0
    got = np.frombuffer(outputs.read_bytes(), dtype=np.float32).reshape(1, 5)
    np.testing.assert_array_equal(got, python_runtime(models[kind], x))


def test_interference_fields_match_the_native_runner(models):
    from tests.runners.test_native_runner import assert_interference_fields

    proc = run_script("--model", models["fp32"], "--threads", 1, "--affinity", "0", "--json",
                      *quick("--iterations", 5, "--min-seconds", 0.3))
    assert_interference_fields(json.loads(proc.stdout))


def test_the_runtime_is_imported_without_the_compiler():
    # executorch.exir's package init drags in torch.export/dynamo/inductor (~8 s a trial); the
    # runner only needs the runtime.
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import python_runner; "
            "lib, Runtime = python_runner.import_runtime(); "
            "print(Runtime.__module__, 'executorch.exir.program' in sys.modules, 'executorch.exir' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code, str(SCRIPT.parent)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["executorch.runtime", "False", "False"]


def test_missing_program_is_one_clear_line(tmp_path):
    proc = run_script("--model", tmp_path / "nope.pte", *quick(), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == f"qbench-runner: no such program file: {tmp_path / 'nope.pte'}"
