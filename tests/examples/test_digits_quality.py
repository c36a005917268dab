"""Quantization quality on real data, through the real pipeline (`qbench run`): scikit-learn's digits,
a CNN trained by examples/digits/train.py on the suite's own train split, accuracy of each exported
.pte on the eval split. Seeds are fixed, so the numbers asserted here are reproducible.

To keep CI short the CNN gets one epoch (about 90% top-1 instead of the example's 99%). QAT then
fine-tunes it with labels for one more epoch, which is why it can end above PTQ; on the fully trained
example every int8 recipe is within a sample or two of fp32 (docs/quantization-quality.md).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO, qbench, write_suite

pytestmark = pytest.mark.slow

CNN = REPO / "examples" / "digits" / "model.py"

QUALITY = f"""
name: digits-quality
datasets:
  - {{name: digits, kind: sklearn, load: digits, splits: {{train: 0.6, calibration: 64, eval: 0.3}}, seed: 0}}
models:
  - name: cnn
    source: python:{CNN}:digits_cnn
    weights: weights/cnn.pt
    inputs: [{{shape: [1, 1, 8, 8]}}]
    dataset: digits
recipes:
  - {{name: fp32, kind: fp32}}
  - {{name: int8-ptq, kind: ptq, per_channel: true}}
  - {{name: int8-qat, kind: qat, per_channel: true, epochs: 1, batch_size: 32, lr: 1.0e-3,
     freeze_bn_after: 10, freeze_observers_after: 20}}
numerics: {{samples: 4}}
benchmark: {{warmup: 1, warmup_seconds: 0, iterations: 3, min_seconds: 0, trials: 1}}
"""

BAD_MODELS = """
import torch
from torch import nn


def five_classes():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 5))


def ten_classes():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


def broken_metric(outputs, labels):
    return outputs.sum().item() / 0
"""

BAD = """
name: digits-bad-input
datasets:
  - {name: digits, kind: sklearn, load: digits, splits: {train: 0, calibration: 32, eval: 100}}
  - {name: nocal, kind: sklearn, load: digits, splits: {train: 0, calibration: 0, eval: 100}}
models:
  - {name: five, source: "python:bad.py:five_classes", inputs: [{shape: [1, 64]}], dataset: digits}
  - {name: metric, source: "python:bad.py:ten_classes", inputs: [{shape: [1, 64]}], dataset: digits,
     metric: "python:bad.py:broken_metric"}
  - {name: nocal, source: "python:bad.py:ten_classes", inputs: [{shape: [1, 64]}], dataset: nocal}
recipes:
  - {name: fp32, kind: fp32}
  - {name: int8-ptq, kind: ptq}
numerics: {samples: 2}
benchmark: {warmup: 1, warmup_seconds: 0, iterations: 3, min_seconds: 0, trials: 1}
"""


def run_json(folder, text) -> tuple[subprocess.CompletedProcess, dict]:
    suite = write_suite(folder, text)
    proc = qbench("run", suite, "--db", folder / "q.db", "--reports-dir", folder / "reports", "--json")
    return proc, json.loads(proc.stdout or "{}")


def cells(doc) -> dict:
    return {(c["model"], c["recipe"]): c for c in doc["cells"]}


@pytest.fixture(scope="module")
def quality(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    suite = write_suite(root, QUALITY)
    # the example's own training script, on this suite's train split (one epoch: a second or two)
    train = subprocess.run([sys.executable, REPO / "examples" / "digits" / "train.py", "--suite", suite, "--model", "cnn",
                            "--epochs", "1"], capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr[-2000:]
    assert (root / "weights" / "cnn.pt").is_file()
    proc, doc = run_json(root, QUALITY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cells(doc)


def test_fp32_accuracy_of_the_trained_cnn_is_far_above_chance(quality):
    fp32 = quality[("cnn", "fp32")]
    assert fp32["accuracy_top1"] > 0.8, fp32  # chance is 0.10
    assert fp32["accuracy_top5"] > 0.95
    assert fp32["accuracy_top1_delta_vs_fp32"] == 0


def test_ptq_per_channel_stays_within_a_few_points_of_fp32(quality):
    ptq = quality[("cnn", "int8-ptq")]
    assert abs(ptq["accuracy_top1_delta_vs_fp32"]) <= 0.03, ptq
    assert ptq["pte_bytes"] < 0.5 * quality[("cnn", "fp32")]["pte_bytes"]


def test_qat_recovers_at_least_as_much_as_ptq(quality):
    ptq, qat = quality[("cnn", "int8-ptq")], quality[("cnn", "int8-qat")]
    assert qat["accuracy_top1"] >= ptq["accuracy_top1"], (qat["accuracy_top1"], ptq["accuracy_top1"])
    record = qat["qat"]
    assert record["mode"] == "labels" and record["loss"] == "cross_entropy"
    assert record["epochs"] == 1 and record["batch_size"] == 32 and record["train_samples"] == 1078
    assert record["steps"] == 34 and len(record["loss_per_epoch"]) == 1  # 33 full batches + one of 22
    assert record["bn_frozen_at_step"] == 10 and record["observers_frozen_at_step"] == 20
    assert record["loss_first"] > 0 and record["loss_last"] > 0


def test_every_cell_records_the_same_seeded_split(quality):
    records = [c["dataset"] for c in quality.values()]
    assert all(r == records[0] for r in records)
    assert records[0]["sizes"] == {"train": 1078, "calibration": 64, "eval": 539}
    assert records[0]["seed"] == 0 and set(records[0]["indices_sha256"]) == {"train", "calibration", "eval"}


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits-bad")
    (root / "bad.py").write_text(BAD_MODELS)
    proc, doc = run_json(root, BAD)
    return proc, cells(doc), root


def test_runtime_data_problems_fail_their_cells_with_the_cause_and_the_suite_goes_on(bad):
    proc, by, root = bad
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert by[("five", "fp32")]["error"] == ("accuracy: dataset 'digits': labels go from 0 to 9, but model 'five' "
                                             "outputs 5 classes (labels must be 0..4)")
    assert by[("metric", "fp32")]["error"] == (f"accuracy: metric python:{root}/bad.py:broken_metric raised ZeroDivisionError: "
                                               "float division by zero (model 'metric', dataset 'digits')")
    assert by[("nocal", "int8-ptq")]["error"] == ("dataset: dataset 'nocal': split 'calibration' is empty "
                                                  "(train 0, calibration 0, eval 100 of 1797 samples)")
    ok = by[("nocal", "fp32")]
    assert ok["status"] == "ok" and 0 <= ok["accuracy_top1"] <= 1 and ok["latency_ms"]["median"] > 0


def test_the_example_suite_regenerates_its_weights_and_checks():
    """suites/digits.yaml points at weights nobody commits: its training script writes them (git-ignored)."""
    weights = REPO / "examples" / "digits" / "weights" / "digits_cnn.pt"
    train = subprocess.run([sys.executable, REPO / "examples" / "digits" / "train.py"], capture_output=True, text=True,
                           timeout=300)
    assert train.returncode == 0, train.stderr[-2000:]
    top1 = float(train.stdout.split("eval top-1 ")[1].split()[0])
    assert top1 > 0.97 and weights.is_file()  # 10 epochs: the example's figures come from this model
    check = qbench("run", REPO / "suites" / "digits.yaml", "--check")
    assert check.returncode == 0, check.stderr[-2000:]
