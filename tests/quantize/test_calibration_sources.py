"""Calibration data from each source, and held-out inputs that never overlap it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qbench.errors import CellError
from qbench.quantize.calibration import load_input_data
from qbench.suite.schema import InputSpec, NpzCalibration, NumericsSpec, PythonCalibration, RandomCalibration

SPECS = [InputSpec(shape=[1, 4]), InputSpec(shape=[1, 2], dtype="int64", range=(0, 10))]


def test_random_is_seeded_and_held_out_differs():
    a = load_input_data(RandomCalibration(kind="random", samples=5, seed=0), SPECS, NumericsSpec(samples=3))
    b = load_input_data(RandomCalibration(kind="random", samples=5, seed=0), SPECS, NumericsSpec(samples=3))
    assert len(a.calibration) == 5 and len(a.held_out) == 3
    assert all(torch.equal(x, y) for bx, by in zip(a.calibration, b.calibration) for x, y in zip(bx, by))
    assert not torch.equal(a.calibration[0][0], a.held_out[0][0])
    assert a.calibration[0][1].dtype == torch.int64 and int(a.calibration[0][1].max()) < 10


def test_same_seed_for_calibration_and_numerics_is_refused():
    with pytest.raises(CellError, match="held-out data would be seen"):
        load_input_data(RandomCalibration(kind="random", seed=7), SPECS, NumericsSpec(seed=7))


def test_npz_holds_out_its_tail(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the loader resolves suite-relative paths; here: relative to cwd
    np.savez(tmp_path / "c.npz", np.arange(40, dtype=np.float32).reshape(10, 1, 4),
             np.arange(20, dtype=np.int64).reshape(10, 1, 2))
    data = load_input_data(NpzCalibration(kind="npz", path="c.npz"), SPECS, NumericsSpec(samples=2))
    assert len(data.calibration) == 8 and len(data.held_out) == 2
    assert data.held_out[-1][0].tolist() == [[36.0, 37.0, 38.0, 39.0]]


def test_npz_with_wrong_array_count(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "c.npz", np.zeros((4, 1, 4), dtype=np.float32))
    with pytest.raises(CellError, match="has 1 arrays, the model has 2 inputs"):
        load_input_data(NpzCalibration(kind="npz", path="c.npz"), SPECS, NumericsSpec())


def test_python_function_and_shape_check(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.py").write_text(
        "import torch\n"
        "def good():\n    return [(torch.ones(1, 4), torch.zeros(1, 2, dtype=torch.int64)) for _ in range(8)]\n"
        "def bad():\n    return [(torch.ones(1, 5), torch.zeros(1, 2, dtype=torch.int64))] * 4\n")
    data = load_input_data(PythonCalibration(kind="python", fn="data.py:good"), SPECS, NumericsSpec(samples=2))
    assert len(data.calibration) == 6 and len(data.held_out) == 2
    with pytest.raises(CellError, match=r"sample 0 input 0 has shape \[1, 5\], the model declares \[1, 4\]"):
        load_input_data(PythonCalibration(kind="python", fn="data.py:bad"), SPECS, NumericsSpec())
