"""The suite file's schema: strict pydantic models (unknown keys are errors).

This module is cheap to import (no torch). Recipe option models come from the recipe registry, so a
recipe added by a plugin is validated exactly like a built-in one.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PositiveInt, StrictInt, WithJsonSchema,
                      field_validator, model_validator)

from qbench.suite.sweep import ClusterName, check_points, check_sweep

DType = Literal["float32", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(Strict):
    """One example input of a model: its shape and dtype (batch included)."""

    shape: list[PositiveInt] = Field(min_length=1, description="the input's shape, batch dimension first, e.g. [1, 3, 224, 224]")
    dtype: DType = Field("float32", description="the input's dtype")
    range: Optional[tuple[float, float]] = Field(
        None, description="[low, high] of generated values: integer inputs (token ids) need one; "
                          "floats default to N(0, 1)")


class RandomCalibration(Strict):
    kind: Literal["random"] = Field(description="seeded random inputs of the model's declared shapes")
    samples: PositiveInt = Field(32, description="how many calibration inputs")
    seed: int = Field(0, description="seed of the generated inputs")


class NpzCalibration(Strict):
    """An .npz whose arrays are the model inputs in order (arr_0, arr_1, ... or named), first axis = sample."""

    kind: Literal["npz"] = Field(description="model inputs from an .npz file")
    path: str = Field(description="the .npz file, relative to the suite's folder")
    samples: Optional[PositiveInt] = Field(None, description="use the first N samples (default: all of them)")


class PythonCalibration(Strict):
    """`fn: path/to/file.py:function` (or package.module:function), called with no arguments,
    returning an iterable of input tuples."""

    kind: Literal["python"] = Field(description="model inputs from a Python function")
    fn: str = Field(description="FILE.py:FUNCTION or package.module:FUNCTION, called with no arguments, "
                                "returning an iterable of input tuples")
    samples: Optional[PositiveInt] = Field(None, description="use the first N samples (default: all of them)")


CalibrationSpec = Annotated[
    Union[RandomCalibration, NpzCalibration, PythonCalibration], Field(discriminator="kind")
]


class NumericsSpec(Strict):
    """Held-out inputs on which each cell's outputs are compared with the fp32 eager model."""

    samples: PositiveInt = Field(8, description="how many held-out inputs (never overlapping calibration)")
    seed: int = Field(1234, description="seed of the held-out inputs")


# An integer is a count, a float a fraction (so `1` is one sample and `1.0` is all of them).
SplitSize = Annotated[Union[StrictInt, float], Field(union_mode="left_to_right")]


class DatasetSplits(Strict):
    """Size of each split: a fraction of all samples (0.2) or a count (200). The samples are shuffled
    once with the dataset's seed and cut in this order, so the splits never overlap."""

    train: SplitSize = Field(0.7, description="QAT training split: a fraction (0.7) or a count (700)")
    calibration: SplitSize = Field(0.1, description="calibration split (overrides the suite's `calibration:`): "
                                                    "a fraction or a count")
    eval: SplitSize = Field(0.2, description="evaluation split (task accuracy): a fraction or a count")

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
    name: str = Field(min_length=1, description="the name a model's `dataset:` refers to")
    splits: DatasetSplits = Field(DatasetSplits(), description="train / calibration / eval sizes")
    seed: int = Field(0, description="seed of the one shuffle before the splits are cut")


class SklearnDataset(_DatasetBase):
    """A data set shipped inside scikit-learn (no download): `load: digits` is 8×8 handwritten digits,
    given per sample as float32 [1, 8, 8] scaled to [0, 1]; the others are rows of features."""

    kind: Literal["sklearn"] = Field(description="a data set shipped inside scikit-learn")
    load: Literal["digits", "iris", "wine", "breast_cancer"] = Field(description="which scikit-learn data set")


class ImageFolderDataset(_DatasetBase):
    """One subfolder per class (sorted names = label 0, 1, ...), images inside."""

    kind: Literal["imagefolder"] = Field(description="one subfolder of images per class")
    path: str = Field(description="the folder, relative to the suite's folder")
    resize: Optional[tuple[PositiveInt, PositiveInt]] = Field(None, description="[height, width] to resize to")
    mode: Literal["RGB", "L"] = Field("RGB", description="images are converted to this (L = grayscale, one channel)")
    mean: Optional[list[float]] = Field(None, description="per channel, subtracted after scaling pixels to [0, 1]")
    std: Optional[list[float]] = Field(None, description="per channel, divided by after subtracting `mean`")

    @model_validator(mode="after")
    def _mean_std_together(self):
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std, or neither")
        return self


class NpzDataset(_DatasetBase):
    """An .npz holding input arrays and a label array; first axis = sample."""

    kind: Literal["npz"] = Field(description="input arrays and labels from an .npz file")
    path: str = Field(description="the .npz file, relative to the suite's folder")
    inputs: Optional[list[str]] = Field(None, description="array names, in model input order "
                                                          "(default: all but `labels`)")
    labels: Optional[str] = Field("labels", description="the label array's name; null: unlabeled "
                                                        "(calibration and numerics only)")


class PythonDataset(_DatasetBase):
    """`fn: path/to/file.py:function`, called with no arguments, returning `(inputs, labels)`:
    inputs an array/tensor [N, ...] or a list of them (one per model input), labels [N, ...] or None."""

    kind: Literal["python"] = Field(description="a data set returned by a Python function")
    fn: str = Field(description="FILE.py:FUNCTION or package.module:FUNCTION returning (inputs, labels)")


class TextDataset(Strict):
    """Local text for a `task: text-generation` model's perplexity: a .txt file or a folder of .txt
    files (name order), tokenized with the `tokenizer.json` in the model's hf: folder and scored in
    windows of `generate.max_seq_len` tokens (docs/llm.md, "Perplexity")."""

    kind: Literal["text"] = Field(description="local text, for a causal LM's perplexity")
    name: str = Field(min_length=1, description="the name a model's `dataset:` refers to")
    path: str = Field(description="a .txt file or a folder of .txt files, relative to the suite's folder")
    windows: PositiveInt = Field(8, description="at most this many windows of max_seq_len tokens are scored, "
                                                "from the start of the text")


DatasetSpec = Annotated[
    Union[SklearnDataset, ImageFolderDataset, NpzDataset, PythonDataset, TextDataset], Field(discriminator="kind")
]


Tokens = Union[PositiveInt, list[PositiveInt]]


class GenerateSpec(Strict):
    """How a `task: text-generation` model is run: a prefill of `prompt_tokens` seeded token ids, then
    `new_tokens` decode steps (greedy), in a program whose static KV cache holds `max_seq_len` positions.
    Each may be a list: a sweep, one cell per combination (suite/generation.py)."""

    prompt_tokens: Tokens = Field(128, description="seeded prompt token ids prefilled per generation (a list sweeps)")
    new_tokens: Tokens = Field(64, description="greedy decode steps per generation, each one timed (a list sweeps)")
    max_seq_len: Tokens = Field(256, description="positions in the program's static KV cache; must hold "
                                                 "prompt_tokens + new_tokens (a list sweeps)")
    seed: int = Field(0, description="seed of the prompt's token ids (the same prompts for every recipe)")

    _sweeps = field_validator("prompt_tokens", "new_tokens", "max_seq_len", mode="before")(
        lambda value: _unique_values(value))

    @model_validator(mode="after")
    def _fits(self):
        from qbench.suite.generation import points

        for p in points(self):
            if p.prompt_tokens + p.new_tokens > p.max_seq_len:
                raise ValueError(f"prompt_tokens + new_tokens ({p.prompt_tokens} + {p.new_tokens}) exceed "
                                 f"max_seq_len {p.max_seq_len}: the KV cache has no room; raise max_seq_len or "
                                 "lower the others")
        return self


def _unique_values(value):
    if isinstance(value, list):
        if not value:
            raise ValueError("a sweep list needs at least one value")
        if len(set(map(str, value))) != len(value):
            raise ValueError("a sweep lists each value once")
    return value


def _inputs_optional(schema: dict) -> None:
    """For editors: `inputs` may be left out (a text-generation model's are filled in by the schema)."""
    schema["required"] = [k for k in schema.get("required", []) if k != "inputs"]


class ModelSpec(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_inputs_optional)
    name: str = Field(min_length=1, description="the model's name in results, reports and --cell")
    source: str = Field(min_length=3, description="torchvision:NAME, timm:NAME, hf:FOLDER or hf:ORG/NAME, "
                                                   "python:FILE.py:FN, pt2:FILE, llama:PARAMS.json (ExecuTorch's "
                                                   "Llama definition, for task text-generation)")
    inputs: list[InputSpec] = Field(min_length=1, description="one entry per forward() argument, in order "
                                                             "(left out for `task: text-generation`: the prompt's "
                                                             "token ids come from `generate:`)")
    weights: Optional[str] = Field(None, description="a state_dict file (torch.save), relative to the suite "
                                                     "(for llama: its checkpoint, e.g. consolidated.00.pth); "
                                                     "without it: seeded random weights")
    task: Literal["auto", "classifier", "other", "text-generation"] = Field(
        "auto", description="classifier: top-1 agreement is reported; auto: guessed from the output's shape; "
                            "text-generation: a causal LM timed as prefill + decode (see `generate:`)")
    output: Optional[str] = Field(
        None, min_length=1, description="the output leaf the headline numerics and accuracy use, by path "
                                        "(`out`, `aux`, `0.logits`); default: the first tensor leaf. "
                                        "Every leaf is compared")
    calibration: Optional[CalibrationSpec] = Field(None, description="overrides the suite's `calibration:`")
    dataset: Optional[str] = Field(
        None, description="a data set named in the suite's `datasets:`: calibration, QAT training and "
                          "accuracy use its splits (its calibration split overrides `calibration:`); for "
                          "`task: text-generation`, a `kind: text` set whose perplexity each cell reports")
    metric: Optional[str] = Field(
        None, description="python:FILE.py:FN, called as FN(outputs, labels) -> float on the eval split; "
                          "without it a classifier with integer labels gets top-1/top-5")
    generate: Optional[GenerateSpec] = Field(
        None, description="`task: text-generation` only: prompt and decode lengths, the KV cache's size")

    @model_validator(mode="before")
    @classmethod
    def _generation_inputs(cls, data):
        from qbench.suite.generation import generation_defaults

        return generation_defaults(data)

    @model_validator(mode="after")
    def _generate_for_generation(self):
        if self.generate is not None and self.task != "text-generation":
            raise ValueError("`generate:` is for `task: text-generation` models")
        return self


class CooldownSpec(Strict):
    threshold_c: float = Field(60.0, description="wait before a trial while the device is hotter than this (°C)")
    max_wait_s: float = Field(120.0, description="wait at most this long, then measure anyway (recorded)")
    poll_s: float = Field(2.0, description="how often the temperature is read while waiting")


class QuietStartSpec(Strict):
    """Before a device's first trial: look (`window_s`) at what else runs there, and wait (bounded by
    `max_wait_s`) until other processes use at most `threshold` of the cores. What it saw is recorded."""

    threshold: float = Field(0.10, ge=0, le=1, description="share of the cores other processes may use")
    max_wait_s: float = Field(5.0, ge=0, description="wait at most this long for a quiet device")
    window_s: float = Field(0.5, gt=0, description="length of one look at the device's CPU use")


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


# Bounds of counts and durations: each is far beyond any real measurement, and a value past it is a
# typo or a generated number (1e12 iterations is 16 TB of samples) that would otherwise surface on the
# device as an out-of-memory or a run that never ends. The error names the bound and why.
COUNT_LIMITS = {
    "warmup": (1_000_000, "qbench's bound on warm-up iterations"),
    "iterations": (1_000_000, "qbench's bound on iterations: every measured sample is kept"),
    "max_iterations": (1_000_000, "qbench's bound on iterations: every measured sample is kept"),
    "trials": (1_000, "qbench's bound on trials per cell"),
    "max_trials": (1_000, "qbench's bound on trials per cell"),
}
SECONDS_LIMITS = {"warmup_seconds": 3_600.0, "min_seconds": 3_600.0, "timeout_seconds": 86_400.0}


def _within_limit(value, info):
    """A count or a duration beyond COUNT_LIMITS / SECONDS_LIMITS (or not finite) is refused, naming the bound."""
    import math

    name = info.field_name
    if value is None:
        return value
    if name in SECONDS_LIMITS:
        bound = SECONDS_LIMITS[name]
        if not math.isfinite(value) or value > bound:
            raise ValueError(f"at most {bound:g} seconds (qbench's bound on {name})")
        return value
    bound, why = COUNT_LIMITS[name]
    if value > bound:
        raise ValueError(f"at most {bound} ({why})")
    return value


class BenchmarkSpec(Strict):
    """Measurement settings; each phase runs at least N iterations *and* at least T seconds."""

    warmup: int = Field(10, ge=0, description="warm-up: at least this many iterations (not measured)")
    warmup_seconds: float = Field(0.5, ge=0, description="warm-up: and at least this many seconds")
    iterations: PositiveInt = Field(50, description="measured phase: at least this many iterations")
    min_seconds: float = Field(1.0, ge=0, description="measured phase: and at least this many seconds")
    max_iterations: PositiveInt = Field(100_000, description="bounds the measured phase on a very fast model")
    trials: PositiveInt = Field(3, description="separate runner processes per cell, interleaved across "
                                               "recipes; the minimum per cell")
    precision: Optional[Percent] = Field(
        None, description="run more trials (up to max_trials) until the 95% CI of each cell's median is "
                          "within ±precision of it, e.g. '2%'; unset: ±5%. A cell that cannot get there is "
                          "`disturbed` (other work measured) or `imprecise` (nothing disturbed, CI still wide)")
    max_trials: Optional[PositiveInt] = Field(
        None, description="bound on trials per cell, disturbed ones included (default: 3 × trials); "
                          "max_trials = trials measures exactly `trials` (no replacement, no extra trial)")
    interference_threshold: float = Field(
        0.10, gt=0, le=1, description="a trial during which other processes used more than this share of "
                                      "the cores is kept, marked disturbed and replaced (within max_trials)")
    quiet_start: QuietStartSpec = Field(QuietStartSpec(), description="the idle check before a device's "
                                                                      "first trial")
    threads: Union[PositiveInt, Literal["auto"], list[Union[PositiveInt, Literal["auto"]]]] = Field(
        1, description="runner threads; auto: one per core of the affinity's cores; a list is a sweep "
                       "(one cell per value)")
    affinity: Union[list[int], ClusterName, None, list[Union[list[int], ClusterName]]] = Field(
        None, description="CPU ids, or a cluster by name (little, mid, big, prime); null: left to the OS "
                          "(recorded either way); a list of those is a sweep")
    batch: Union[PositiveInt, list[PositiveInt], None] = Field(
        None, description="the first dimension of every model input (null: as each model's `inputs:` "
                          "declare it); a list is a sweep")
    timeout_seconds: float = Field(600.0, gt=0, description="a runner (or a model build or forward pass in "
                                                            "the suite check) slower than this is stopped; "
                                                            "the cell fails")
    runner: Literal["auto", "python", "native"] = Field(
        "auto", description="which runner measures: native C++ (default where built) or the Python runner")
    cooldown: CooldownSpec = Field(CooldownSpec(), description="a bounded wait while the device is hot")
    profile_ops: bool = Field(False, description="also profile operators (ETDump): `qbench ops` shows the "
                                                 "top operators")

    _sweeps = field_validator("threads", "affinity", "batch", mode="before")(check_sweep)
    _limits = field_validator(*COUNT_LIMITS, *SECONDS_LIMITS)(_within_limit)

    @model_validator(mode="after")
    def _bounded(self):
        if self.max_iterations < self.iterations:
            raise ValueError("max_iterations must be >= iterations")
        if self.max_trials is not None and self.max_trials < self.trials:
            raise ValueError("max_trials must be >= trials")
        check_points(self)
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
    name: str = Field(min_length=1, description="the recipe's name in results and reports (e.g. int8-ptq)")
    kind: str = Field(min_length=1, description="the quantization recipe; its options are the other keys")

    def options(self) -> dict:
        return dict(self.model_extra or {})


class Suite(Strict):
    """A qbench suite: models × quantization recipes × devices, and benchmark settings."""

    name: str = Field(min_length=1, description="the suite's name: `--baseline last` and trend match runs on it")
    description: Optional[str] = Field(None, description="free text, shown in reports")
    models: list[ModelSpec] = Field(min_length=1, description="the models to quantize and measure")
    recipes: list[RecipeSpec] = Field(min_length=1, description="named quantization recipes, each applied "
                                                                "to every model")
    devices: list[str] = Field(default_factory=lambda: ["host"], min_length=1,
                               description="device profile names (device_profiles/NAME.yaml); --device overrides")
    benchmark: BenchmarkSpec = Field(BenchmarkSpec(), description="measurement settings")
    calibration: Optional[CalibrationSpec] = Field(None, description="calibration inputs for ptq/qat "
                                                                     "(a model's own overrides it)")
    numerics: NumericsSpec = Field(NumericsSpec(), description="held-out inputs for the comparison with fp32")
    datasets: list[DatasetSpec] = Field(default_factory=list, description="labelled data sets models may name "
                                                                          "with `dataset:`")
