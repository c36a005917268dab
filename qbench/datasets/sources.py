"""Where samples come from: scikit-learn's bundled sets, an image folder, an .npz, a Python function.

check_dataset is the cheap before-the-first-cell test (paths, callables); load_dataset reads the
samples (memoised per process: every recipe of a model reads the same data); dataset_fingerprint
identifies the content for the artifact cache.
"""

from __future__ import annotations

from pathlib import Path

from qbench.datasets.base import Dataset, make_dataset
from qbench.errors import CellError
from qbench.suite.schema import ImageFolderDataset, NpzDataset, PythonDataset, SklearnDataset, TextDataset

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}

_memo: dict[str, Dataset] = {}


def _path(spec) -> Path:
    return Path(spec.path).expanduser()  # resolved from the suite's folder at load


def check_dataset(spec) -> tuple[str, str] | None:
    """(key, problem) for what can be known wrong without reading the samples, else None."""
    from qbench.datasets.text import check_text
    from qbench.user_code import check_callable

    if isinstance(spec, TextDataset) and (problem := check_text(spec)):
        return "path", problem
    if isinstance(spec, NpzDataset) and not _path(spec).is_file():
        return "path", f"dataset {spec.name!r}: {_path(spec)}: no such file"
    if isinstance(spec, ImageFolderDataset):
        root = _path(spec)
        if not root.is_dir():
            return "path", f"dataset {spec.name!r}: {root}: no such folder"
        if not _class_dirs(root):
            return "path", f"dataset {spec.name!r}: {root} has no class subfolders (one folder of images per class)"
    if isinstance(spec, PythonDataset) and (problem := check_callable(spec.fn)):
        return "fn", f"dataset {spec.name!r}: {problem}"
    return None


def dataset_fingerprint(spec) -> dict:
    """The spec plus what identifies its content (file digests, library version, function source)."""
    from qbench.hashing import file_sha256
    from qbench.user_code import callable_fingerprint

    out = spec.model_dump(exclude={"path"})  # the content identifies it, wherever the checkout is
    if isinstance(spec, SklearnDataset):
        import sklearn

        out["content"] = f"scikit-learn {sklearn.__version__}"
    elif isinstance(spec, NpzDataset):
        out["content"] = file_sha256(_path(spec))
    elif isinstance(spec, ImageFolderDataset):
        out["content"] = _folder_digest(_path(spec))
    elif isinstance(spec, PythonDataset):
        out["content"] = callable_fingerprint(spec.fn)
    elif isinstance(spec, TextDataset):
        from qbench.datasets.text import text_digest

        out["content"] = text_digest(spec)
    return out


def load_dataset(spec) -> Dataset:
    import json

    key = json.dumps(dataset_fingerprint(spec), sort_keys=True, default=str)
    if key not in _memo:
        loader = {SklearnDataset: _sklearn, ImageFolderDataset: _imagefolder, NpzDataset: _npz,
                  PythonDataset: _python}[type(spec)]
        _memo.clear()  # keep one: data sets can be large, and a run goes model by model
        _memo[key] = loader(spec)
    return _memo[key]


def _sklearn(spec: SklearnDataset) -> Dataset:
    import numpy as np
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{spec.load}")()
    if spec.load == "digits":  # 8×8 images with values 0..16: one channel, scaled to [0, 1]
        x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    else:
        x = bunch.data.astype(np.float32)
    return make_dataset(spec.name, x, bunch.target.astype(np.int64))


def _npz(spec: NpzDataset) -> Dataset:
    import numpy as np

    path = _path(spec)
    with np.load(path) as npz:
        names = list(npz.files)
        wanted = list(spec.inputs) if spec.inputs else [n for n in names if n != spec.labels]
        missing = [n for n in wanted + ([spec.labels] if spec.labels else []) if n not in names]
        if missing:
            raise CellError("dataset", f"dataset {spec.name!r}: {path} has no array {missing[0]!r} "
                                       f"(it has: {', '.join(names)})")
        return make_dataset(spec.name, [npz[n] for n in wanted], npz[spec.labels] if spec.labels else None)


def _python(spec: PythonDataset) -> Dataset:
    from qbench.user_code import load_callable

    try:
        result = load_callable(spec.fn)()
    except Exception as exc:
        raise CellError("dataset", f"dataset {spec.name!r}: {spec.fn} raised {type(exc).__name__}: {exc}") from exc
    if isinstance(result, dict) and "inputs" in result:
        inputs, labels = result["inputs"], result.get("labels")
    elif isinstance(result, tuple) and len(result) == 2:
        inputs, labels = result
    else:
        raise CellError("dataset", f"dataset {spec.name!r}: {spec.fn} must return (inputs, labels) or "
                                   f"{{'inputs': ..., 'labels': ...}}, got {type(result).__name__}")
    return make_dataset(spec.name, inputs, labels)


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _folder_digest(root: Path) -> str:
    """Names, sizes and modification times of every image: cheap, and changes when a file does."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            st = p.stat()
            h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _imagefolder(spec: ImageFolderDataset) -> Dataset:
    import numpy as np
    from PIL import Image

    root = _path(spec)
    images, labels = [], []
    for label, folder in enumerate(_class_dirs(root)):
        for f in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            try:
                with Image.open(f) as im:
                    im = im.convert(spec.mode)
                    if spec.resize:
                        im = im.resize((spec.resize[1], spec.resize[0]), Image.BILINEAR)
                    a = np.asarray(im, dtype=np.float32) / 255.0
            except OSError as exc:
                raise CellError("dataset", f"dataset {spec.name!r}: cannot read {f}: {exc}") from exc
            images.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))  # HWC -> CHW
            labels.append(label)
    if not images:
        raise CellError("dataset", f"dataset {spec.name!r}: no images under {root}")
    shapes = {a.shape for a in images}
    if len(shapes) > 1:
        raise CellError("dataset", f"dataset {spec.name!r}: images have different sizes {sorted(shapes)[:3]}; "
                                   "add `resize: [height, width]`")
    x = np.stack(images)
    if spec.mean is not None:
        channels = x.shape[1]
        if len(spec.mean) != channels or len(spec.std) != channels:
            raise CellError("dataset", f"dataset {spec.name!r}: mean/std have {len(spec.mean)}/{len(spec.std)} "
                                       f"values, the images have {channels} channel(s)")
        x = (x - np.asarray(spec.mean, np.float32)[:, None, None]) / np.asarray(spec.std, np.float32)[:, None, None]
    return make_dataset(spec.name, x, np.asarray(labels, dtype=np.int64))
