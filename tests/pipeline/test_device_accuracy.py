"""Accuracy from the device's own outputs: the eval split of a dataset goes through the cell's runner
(one process, --input-sets) and is scored beside the host's figure (here the device is the host, so
the two must agree)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import REPO, qbench, write_suite

pytestmark = pytest.mark.slow

SUITE = f"""
name: digits-device
datasets:
  - {{name: digits, kind: sklearn, load: digits, splits: {{train: 0.6, calibration: 0.1, eval: 0.3}}, seed: 0}}
models:
  - name: cnn
    source: python:{REPO / 'examples/digits/model.py'}:digits_cnn
    inputs: [{{shape: [1, 1, 8, 8], dtype: float32}}]
    dataset: digits
recipes:
  - {{name: fp32, kind: fp32}}
  - {{name: int8-ptq, kind: ptq}}
devices: [host]
numerics: {{samples: 4}}
benchmark: {{warmup: 1, warmup_seconds: 0, iterations: 3, min_seconds: 0, trials: 1, threads: 1}}
"""


def test_eval_split_accuracy_on_the_device(tmp_path):
    suite = write_suite(tmp_path, SUITE)
    proc = qbench("run", suite, "--db", "d.db", "--json", cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for c in json.loads(proc.stdout)["cells"]:
        dn = c["device_numerics"]
        assert dn["accuracy_samples"] == 539 and dn["samples"] == 4, dn
        assert abs(dn["accuracy"] - c["accuracy_top1"]) <= 1 / 539 + 1e-9, (dn, c["accuracy_top1"])
        assert dn["agrees_with_host"] is True and dn["top1_agreement"] is not None
