"""Input data for calibration (and QAT), and the held-out inputs for numerics.

Every source yields a list of input tuples matching the model's declared inputs. Held-out inputs
never overlap the calibration ones: random data uses a separate seed; file data holds out its tail;
a model's dataset gives its calibration split, its train split (QAT) and its eval split (numerics and
accuracy), which are disjoint by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from qbench.errors import CellError
from qbench.inputs import Batch, random_inputs
from qbench.suite.schema import InputSpec, NpzCalibration, NumericsSpec, PythonCalibration, RandomCalibration

if TYPE_CHECKING:
    from qbench.datasets import Dataset


def _quiet(text: str) -> None:
    pass


@dataclass
class InputData:
    calibration: list[Batch]  # empty when the suite gives none (dynamic/fp32 need none)
    held_out: list[Batch]  # for numerics; never seen by calibration or QAT
    example: Batch | None = None  # the deterministic tracing/measurement inputs
    train: "Dataset | None" = None  # a dataset's train split, fitted to the model's inputs (QAT)
    evaluation: "Dataset | None" = None  # its eval split (accuracy)
    dataset_record: dict | None = None  # split sizes, seed and index hashes, for the cell's `extra`
    progress: Callable[[str], None] = _quiet  # a recipe's running commentary (QAT epochs, loss)
    output: str | None = None  # the model's `output:` leaf (QAT's loss), None = its first tensor leaf


def load_input_data(spec, specs: Sequence[InputSpec], numerics: NumericsSpec) -> InputData:
    if spec is None:
        return InputData([], random_inputs(specs, numerics.samples, numerics.seed))
    if isinstance(spec, RandomCalibration):
        if spec.seed == numerics.seed:
            raise CellError("calibration", "calibration seed equals numerics seed: held-out data would be seen")
        return InputData(random_inputs(specs, spec.samples, spec.seed), random_inputs(specs, numerics.samples, numerics.seed))
    if isinstance(spec, NpzCalibration):
        batches = _from_npz(Path(spec.path).expanduser(), specs)
    elif isinstance(spec, PythonCalibration):
        batches = _from_python(spec.fn, specs)
    else:  # pragma: no cover - the schema's union is closed
        raise CellError("calibration", f"unknown calibration kind {spec!r}")
    _check_batches(batches, specs)
    held = min(numerics.samples, max(1, len(batches) // 4))
    if len(batches) - held < 1:
        raise CellError("calibration", f"{len(batches)} samples: too few to keep some for calibration and some held out")
    cal = batches[:-held]
    if spec.samples:
        cal = cal[: spec.samples]
    return InputData(cal, batches[-held:])


def _from_npz(path: Path, specs) -> list[Batch]:
    import numpy as np
    import torch

    with np.load(path) as npz:
        arrays = [npz[k] for k in npz.files]
    if len(arrays) != len(specs):
        raise CellError("calibration", f"{path} has {len(arrays)} arrays, the model has {len(specs)} inputs")
    count = len(arrays[0])

    def sample(a, i, spec):
        # first axis = samples; a sample either has the input's full shape or lacks its batch axis of 1
        x = a[i]
        if list(x.shape) != list(spec.shape) and [1, *x.shape] == list(spec.shape):
            x = x[None]
        return torch.from_numpy(x.copy())

    return [tuple(sample(a, i, s) for a, s in zip(arrays, specs)) for i in range(count)]


def _from_python(fn_ref: str, specs) -> list[Batch]:
    import torch

    from qbench.user_code import load_callable

    out = []
    for item in load_callable(fn_ref)():
        item = item if isinstance(item, (tuple, list)) else (item,)
        out.append(tuple(torch.as_tensor(x) for x in item))
    return out


def _check_batches(batches: list[Batch], specs) -> None:
    if not batches:
        raise CellError("calibration", "the calibration source yielded no samples")
    for i, batch in enumerate(batches[:1]):
        for j, (t, s) in enumerate(zip(batch, specs)):
            if list(t.shape) != list(s.shape):
                raise CellError("calibration", f"sample {i} input {j} has shape {list(t.shape)}, the model declares {s.shape}")


def load_dataset_data(dataset_spec, model_spec, numerics: NumericsSpec,
                      needs: tuple[str, ...] = ("eval",)) -> InputData:
    """A model's dataset, split and fitted to its declared inputs; `needs` = splits that must not be empty."""
    from qbench.datasets import load_dataset, split_dataset
    from qbench.datasets.batches import fit_to_inputs, fixed_batches

    splits = split_dataset(load_dataset(dataset_spec), dataset_spec, needs)
    fit = [fit_to_inputs(d, model_spec.inputs, model_spec.name) if d is not None else None
           for d in (splits.train, splits.calibration, splits.eval)]
    train, calib, evaluation = fit
    batch = model_spec.inputs[0].shape[0]
    held_out = [inputs for inputs, _ in fixed_batches(evaluation, batch)[: numerics.samples]]
    return InputData(
        calibration=[inputs for inputs, _ in fixed_batches(calib, batch)] if calib is not None else [],
        held_out=held_out, train=train if len(train) else None, evaluation=evaluation,
        dataset_record=splits.record,
    )
