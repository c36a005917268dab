"""Datasets: each source on real files, deterministic disjoint splits, fitting samples to inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qbench.datasets import load_dataset, split_dataset
from qbench.datasets.batches import fit_to_inputs, fixed_batches, training_batches
from qbench.errors import CellError
from qbench.suite.schema import ImageFolderDataset, InputSpec, NpzDataset, PythonDataset, SklearnDataset


def digits(**kw) -> SklearnDataset:
    return SklearnDataset(name="digits", kind="sklearn", load="digits", **kw)


def test_sklearn_digits_are_real_images_scaled_to_unit_range():
    data = load_dataset(digits())
    assert len(data) == 1797 and list(data.inputs[0].shape) == [1797, 1, 8, 8]
    assert data.inputs[0].dtype == torch.float32 and 0 <= data.inputs[0].min() and data.inputs[0].max() == 1
    assert sorted(data.labels.unique().tolist()) == list(range(10)) and data.has_class_labels


def test_splits_are_seeded_disjoint_and_recorded():
    spec = digits(splits={"train": 0.6, "calibration": 100, "eval": 0.3}, seed=3)
    data = load_dataset(spec)
    a, b = split_dataset(data, spec), split_dataset(data, spec)
    assert a.record == b.record  # same seed, same samples
    assert a.record["sizes"] == {"train": 1078, "calibration": 100, "eval": 539}
    assert a.record["seed"] == 3 and a.record["total"] == 1797
    assert torch.equal(a.eval.inputs[0], b.eval.inputs[0])
    other = split_dataset(data, digits(splits={"train": 0.6, "calibration": 100, "eval": 0.3}, seed=4))
    assert other.record["indices_sha256"]["eval"] != a.record["indices_sha256"]["eval"]
    sets = [set(a.indices[k]) for k in ("train", "calibration", "eval")]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert len(a.train) + len(a.calibration) + len(a.eval) == 1717


def test_empty_split_names_the_dataset_and_the_sizes():
    spec = digits(splits={"train": 0.7, "calibration": 0, "eval": 0.3})
    with pytest.raises(CellError) as exc:
        split_dataset(load_dataset(spec), spec, needs=("eval", "calibration"))
    assert str(exc.value) == ("dataset: dataset 'digits': split 'calibration' is empty "
                              "(train 1258, calibration 0, eval 539 of 1797 samples)")


def test_splits_larger_than_the_dataset():
    spec = digits(splits={"train": 1500, "calibration": 100, "eval": 300})
    with pytest.raises(CellError, match=r"dataset 'digits': splits ask for 1900 samples \(train 1500, calibration 100, "
                                        r"eval 300\), it has 1797"):
        split_dataset(load_dataset(spec), spec)


def test_npz_with_named_inputs_and_labels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # paths are resolved at load; here relative to cwd
    path = tmp_path / "d.npz"
    np.savez(path, x=np.random.rand(20, 4).astype(np.float32), y=np.arange(20) % 3)
    data = load_dataset(NpzDataset(name="n", kind="npz", path=str(path), labels="y"))
    assert list(data.inputs[0].shape) == [20, 4] and data.labels.tolist()[:4] == [0, 1, 2, 0]
    with pytest.raises(CellError) as exc:
        load_dataset(NpzDataset(name="n", kind="npz", path=str(path)))
    assert str(exc.value) == f"dataset: dataset 'n': {path} has no array 'labels' (it has: x, y)"


def test_npz_inputs_and_labels_must_agree_on_sample_count(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # paths are resolved at load; here relative to cwd
    np.savez(tmp_path / "d.npz", x=np.zeros((20, 4), np.float32), labels=np.zeros(19, np.int64))
    with pytest.raises(CellError, match=r"dataset 'n': inputs and labels differ in sample count \(shapes \[\[20, 4\], \[19\]\]\)"):
        load_dataset(NpzDataset(name="n", kind="npz", path="d.npz"))


def test_image_folder_class_per_subfolder_resize_and_normalize(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # paths are resolved at load; here relative to cwd
    from PIL import Image

    for label, color in (("cat", 200), ("dog", 50)):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (10 + i, 12), (color, color, color)).save(tmp_path / "imgs" / label / f"{i}.png")
    spec = ImageFolderDataset(name="pets", kind="imagefolder", path="imgs", resize=(8, 6),
                              mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    data = load_dataset(spec)
    assert list(data.inputs[0].shape) == [6, 3, 8, 6] and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.inputs[0][0].mean().item() == pytest.approx((200 / 255 - 0.5) / 0.25, abs=1e-4)
    gray = load_dataset(ImageFolderDataset(name="pets", kind="imagefolder", path="imgs", resize=(8, 8), mode="L"))
    assert list(gray.inputs[0].shape) == [6, 1, 8, 8]
    with pytest.raises(CellError, match="images have different sizes"):
        load_dataset(ImageFolderDataset(name="pets", kind="imagefolder", path="imgs"))


def test_python_dataset_that_raises_names_the_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # paths are resolved at load; here relative to cwd
    (tmp_path / "d.py").write_text("def load():\n    raise OSError('disk on fire')\n\ndef bad():\n    return 3\n")
    with pytest.raises(CellError) as exc:
        load_dataset(PythonDataset(name="p", kind="python", fn="d.py:load"))
    assert str(exc.value) == "dataset: dataset 'p': d.py:load raised OSError: disk on fire"
    with pytest.raises(CellError) as exc:
        load_dataset(PythonDataset(name="p", kind="python", fn="d.py:bad"))
    assert "must return (inputs, labels)" in str(exc.value)


def test_fit_reshapes_same_sized_samples_and_refuses_others():
    data = load_dataset(digits())
    flat = fit_to_inputs(data, [InputSpec(shape=[1, 64])], "mlp")
    assert list(flat.inputs[0].shape) == [1797, 64]
    with pytest.raises(CellError) as exc:
        fit_to_inputs(data, [InputSpec(shape=[1, 3, 32, 32])], "cnn")
    assert str(exc.value) == ("dataset: dataset 'digits': input 0 of a sample has shape [1, 8, 8], "
                              "model 'cnn' declares [1, 3, 32, 32] (per sample [3, 32, 32])")
    with pytest.raises(CellError, match="dataset 'digits' gives 1 input array\\(s\\) per sample, model 'two' declares 2"):
        fit_to_inputs(data, [InputSpec(shape=[1, 64]), InputSpec(shape=[1, 64])], "two")


def test_fixed_batches_pad_the_last_batch_and_say_how_much_is_real():
    data = load_dataset(digits()).take(range(10))
    batches = fixed_batches(data, 4)
    assert [valid for _, valid in batches] == [4, 4, 2]
    assert all(b[0].shape[0] == 4 for b, _ in batches)
    gen = torch.Generator().manual_seed(0)
    sizes = [len(labels) for _, labels in training_batches(load_dataset(digits()).take(range(70)), 32, gen)]
    assert sizes == [32, 32]  # a trailing batch of 6 (< half a batch) is dropped
