"""Labeled data sets named in a suite (`datasets:`): loading (sources.py), deterministic splits
(splits.py), fitting samples to a model's declared inputs and batching them (batches.py).

A model with `dataset: NAME` is calibrated on the calibration split, QAT-trained on the train split,
and scored (accuracy, numerics) on the eval split.
"""

from qbench.datasets.base import Dataset  # noqa: F401
from qbench.datasets.sources import check_dataset, dataset_fingerprint, load_dataset  # noqa: F401
from qbench.datasets.splits import Splits, split_dataset  # noqa: F401
