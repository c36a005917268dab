"""The suite file's schema: strict pydantic models (unknown keys are errors).

This module is cheap to import (no torch). Recipe option models come from the recipe registry, so a
recipe added by a plugin is validated exactly like a built-in one.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PositiveInt, StrictInt, WithJsonSchema,
                      field_validator, model_validator)

from qbench.suite.sweep import ClusterName, check_sweep

DType = Literal["float32", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(Strict):
    """One example input of a model: its shape and dtype (batch included)."""

    shape: list[PositiveInt] = Field(min_length=1)
    dtype: DType = "float32"
    # Value range for generated data: integer inputs (token ids) need one; floats default to N(0, 1).
    range: Optional[tuple[float, float]] = None


class RandomCalibration(Strict):
    kind: Literal["random"]
    samples: PositiveInt = 32
    seed: int = 0


class NpzCalibration(Strict):
    """An .npz whose arrays are the model inputs in order (arr_0, arr_1, ... or named), first axis = sample."""

    kind: Literal["npz"]
    path: str
    samples: Optional[PositiveInt] = None  # default: all of them


class PythonCalibration(Strict):
    """`fn: path/to/file.py:function` (or package.module:function), called with no arguments,
    returning an iterable of input tuples."""

    kind: Literal["python"]
    fn: str
    samples: Optional[PositiveInt] = None


CalibrationSpec = Annotated[
    Union[RandomCalibration, NpzCalibration, PythonCalibration], Field(discriminator="kind")
]


class NumericsSpec(Strict):
    """Held-out inputs on which each cell's outputs are compared with the fp32 eager model."""

    samples: PositiveInt = 8
    seed: int = 1234


# An integer is a count, a float a fraction (so `1` is one sample and `1.0` is all of them).
SplitSize = Annotated[Union[StrictInt, float], Field(union_mode="left_to_right")]


class DatasetSplits(Strict):
    """Size of each split: a fraction of all samples (0.2) or a count (200). The samples are shuffled
    once with the dataset's seed and cut in this order, so the splits never overlap."""

    train: SplitSize = 0.7
    calibration: SplitSize = 0.1
    eval: SplitSize = 0.2

    @model_validator(mode="after")
    def _fractions_fit(self):
        sizes = (self.train, self.calibration, self.eval)
        if any(v < 0 for v in sizes):
            raise ValueError("split sizes must be >= 0")
        fractions = [v for v in sizes if isinstance(v, float)]
        if any(v > 1 for v in fractions) or sum(fractions) > 1 + 1e-9:
            raise ValueError("fractions must add up to at most 1.0 (write counts as integers)")
        return self


class _DatasetBase(Strict):
    name: str = Field(min_length=1)
    splits: DatasetSplits = DatasetSplits()
    seed: int = 0


class SklearnDataset(_DatasetBase):
    """A data set shipped inside scikit-learn (no download): `load: digits` is 8×8 handwritten digits,
    given per sample as float32 [1, 8, 8] scaled to [0, 1]; the others are rows of features."""

    kind: Literal["sklearn"]
    load: Literal["digits", "iris", "wine", "breast_cancer"]


class ImageFolderDataset(_DatasetBase):
    """One subfolder per class (sorted names = label 0, 1, ...), images inside."""

    kind: Literal["imagefolder"]
    path: str
    resize: Optional[tuple[PositiveInt, PositiveInt]] = None  # [height, width]
    mode: Literal["RGB", "L"] = "RGB"  # images are converted to this (L = grayscale, one channel)
    mean: Optional[list[float]] = None  # per channel, applied after scaling pixels to [0, 1]
    std: Optional[list[float]] = None

    @model_validator(mode="after")
    def _mean_std_together(self):
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std, or neither")
        return self


class NpzDataset(_DatasetBase):
    """An .npz holding input arrays and a label array; first axis = sample."""

    kind: Literal["npz"]
    path: str
    inputs: Optional[list[str]] = None  # array names, in model input order; default: all but `labels`
    labels: Optional[str] = "labels"  # null: unlabeled (calibration and numerics only)


class PythonDataset(_DatasetBase):
    """`fn: path/to/file.py:function`, called with no arguments, returning `(inputs, labels)`:
    inputs an array/tensor [N, ...] or a list of them (one per model input), labels [N, ...] or None."""

    kind: Literal["python"]
    fn: str


DatasetSpec = Annotated[
    Union[SklearnDataset, ImageFolderDataset, NpzDataset, PythonDataset], Field(discriminator="kind")
]


class ModelSpec(Strict):
    name: str = Field(min_length=1)
    source: str = Field(min_length=3, description="torchvision:NAME, timm:NAME, hf:FOLDER or hf:ORG/NAME, "
                                                   "python:FILE.py:FN, pt2:FILE")
    inputs: list[InputSpec] = Field(min_length=1)
    weights: Optional[str] = None  # a state_dict file (torch.save), relative to the suite
    task: Literal["auto", "classifier", "other"] = "auto"
    # Which output leaf the headline numerics and accuracy use, by path (`out`, `aux`, `0.logits`) for
    # a model returning a dict/tuple/nest; default: the first tensor leaf. Every leaf is compared.
    output: Optional[str] = Field(None, min_length=1)
    calibration: Optional[CalibrationSpec] = None  # overrides the suite's
    # A dataset named in the suite's `datasets:`: calibration, QAT training and accuracy use its splits
    # (its calibration split overrides `calibration:`).
    dataset: Optional[str] = None
    # `python:FILE.py:FN`, called as FN(outputs, labels) -> float on the eval split; without it a
    # classifier with integer labels gets top-1/top-5.
    metric: Optional[str] = None


class CooldownSpec(Strict):
    threshold_c: float = 60.0
    max_wait_s: float = 120.0
    poll_s: float = 2.0


class QuietStartSpec(Strict):
    """Before a device's first trial: look (`window_s`) at what else runs there, and wait (bounded by
    `max_wait_s`) until other processes use at most `threshold` of the cores. What it saw is recorded."""

    threshold: float = Field(0.10, ge=0, le=1)
    max_wait_s: float = Field(5.0, ge=0)
    window_s: float = Field(0.5, gt=0)


def _fraction(value):
    """`2%` or 0.02 -> 0.02 (a precision or a share)."""
    if isinstance(value, str):
        text = value.strip()
        if not text.endswith("%"):
            raise ValueError(f"write a percentage like '2%' or a fraction like 0.02, got {value!r}")
        try:
            return float(text[:-1]) / 100
        except ValueError:
            raise ValueError(f"write a percentage like '2%', got {value!r}") from None
    return value


# In JSON Schema (editors): a fraction, or the same as a percentage string like "2%".
_PERCENT_SCHEMA = {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                             {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*%\s*$"}]}
Percent = Annotated[float, BeforeValidator(_fraction), Field(gt=0, lt=1), WithJsonSchema(_PERCENT_SCHEMA)]


class BenchmarkSpec(Strict):
    """Measurement settings; each phase runs at least N iterations *and* at least T seconds."""

    warmup: int = Field(10, ge=0)
    warmup_seconds: float = Field(0.5, ge=0)
    iterations: PositiveInt = 50
    min_seconds: float = Field(1.0, ge=0)
    max_iterations: PositiveInt = 100_000  # bounds the measured phase on a very fast model
    trials: PositiveInt = 3  # separate processes, interleaved across recipes; the minimum per cell
    # Run more trials (up to max_trials) until the 95% CI of the cell's median is within ±precision
    # of it, e.g. `2%`. Unset: ±5% (pipeline/adaptive.py DEFAULT_PRECISION).
    precision: Optional[Percent] = None
    # bound on trials per cell, disturbed ones included; unset: 3 × trials. max_trials = trials
    # measures exactly `trials` (no replacement, no extra trial)
    max_trials: Optional[PositiveInt] = None
    # A trial during which other processes used more than this share of the cores is kept but marked
    # disturbed, and another is run in its place (within max_trials).
    interference_threshold: float = Field(0.10, gt=0, le=1)
    quiet_start: QuietStartSpec = QuietStartSpec()
    # auto: one thread per core of the affinity's cores
    threads: Union[PositiveInt, Literal["auto"], list[Union[PositiveInt, Literal["auto"]]]] = 1
    # CPU ids, or a cluster by name (devices/clusters.py); None = leave to the OS (recorded either way)
    affinity: Union[list[int], ClusterName, None, list[Union[list[int], ClusterName]]] = None
    # The first dimension of every model input (None: as each model's `inputs:` declare it).
    # threads, affinity and batch may each be a list: a sweep, one cell per value (suite/sweep.py).
    batch: Union[PositiveInt, list[PositiveInt], None] = None
    timeout_seconds: float = Field(600.0, gt=0)  # a runner slower than this is killed, the cell fails
    runner: Literal["auto", "python", "native"] = "auto"
    cooldown: CooldownSpec = CooldownSpec()
    profile_ops: bool = False

    _sweeps = field_validator("threads", "affinity", "batch", mode="before")(check_sweep)

    @model_validator(mode="after")
    def _bounded(self):
        if self.max_iterations < self.iterations:
            raise ValueError("max_iterations must be >= iterations")
        if self.max_trials is not None and self.max_trials < self.trials:
            raise ValueError("max_trials must be >= trials")
        return self

    @property
    def trial_bound(self) -> int:
        """Most trials a cell may take: max_trials, else 3 × trials (room to replace disturbed trials
        and to add trials until the median is precise)."""
        if self.max_trials is not None:
            return self.max_trials
        return 3 * self.trials


class RecipeSpec(Strict):
    """A named recipe: `kind` picks the recipe, the other keys are that kind's options.

    The options are validated against the recipe's own model in suite/check.py (strict too).
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)

    def options(self) -> dict:
        return dict(self.model_extra or {})


class Suite(Strict):
    name: str = Field(min_length=1)
    description: Optional[str] = None
    models: list[ModelSpec] = Field(min_length=1)
    recipes: list[RecipeSpec] = Field(min_length=1)
    devices: list[str] = Field(default_factory=lambda: ["host"], min_length=1)
    benchmark: BenchmarkSpec = BenchmarkSpec()
    calibration: Optional[CalibrationSpec] = None
    numerics: NumericsSpec = NumericsSpec()
    datasets: list[DatasetSpec] = Field(default_factory=list)
