"""`pt2:path/to/program.pt2`: a program saved with torch.export.save."""

from __future__ import annotations

from pathlib import Path

from qbench.models.base import SOURCES
from qbench.hashing import file_sha256


SAVE_HINT = "write it with torch.export.save(torch.export.export(model, example_inputs), PATH)"


def not_a_pt2(path: Path) -> str | None:
    """Why a file cannot be a torch.export program (a zip archive), or None; cheap, torch not imported."""
    import zipfile

    try:
        size = path.stat().st_size
        if size == 0:
            return f"{path}: the file is empty (0 bytes), not a torch.export program; {SAVE_HINT}"
        if not zipfile.is_zipfile(path):
            return f"{path}: not a torch.export program (a .pt2 is a zip archive); {SAVE_HINT}"
    except OSError as exc:
        return f"{path}: cannot read it ({exc.strerror or exc})"
    return None


class _LoadFailed(Exception):
    pass


def _load(path: Path):
    """torch.export.load(path).module(). torch logs the real cause as a whole traceback (a warning on
    its own stderr handler) and raises a generic "check the warnings above": the cause is kept, the
    traceback not printed."""
    import logging

    import torch

    logger, seen = logging.getLogger("torch.export"), []
    handlers, logger.handlers = logger.handlers, []
    catcher = logging.Handler()
    catcher.emit = lambda record: seen.append(record.exc_info[1] if record.exc_info else None)
    logger.addHandler(catcher)
    try:
        return torch.export.load(str(path)).module()
    except Exception as exc:
        cause = next((e for e in reversed(seen) if e is not None), exc)
        text = str(cause).strip().splitlines()
        raise _LoadFailed(f"{type(cause).__name__}: {text[0][:200] if text else ''}".rstrip(": ")) from None
    finally:
        logger.handlers = handlers


class Pt2Source:
    def resolve(self, ref: str, base_dir: Path) -> str:
        return ref if Path(ref).expanduser().is_absolute() else str(base_dir / ref)

    def check(self, ref: str) -> str | None:
        path = Path(ref).expanduser()
        if not path.is_file():
            return f"{path}: no such file"
        return not_a_pt2(path)

    def build(self, ref: str):
        path = Path(ref).expanduser()
        if (problem := not_a_pt2(path)) is not None:
            raise ValueError(problem)
        try:
            return _load(path)
        except _LoadFailed as failed:
            raise ValueError(f"{path}: torch.export.load cannot read it ({failed}); {SAVE_HINT}") from None

    def fingerprint(self, ref: str) -> str:
        return "pt2:" + file_sha256(Path(ref).expanduser())


SOURCES.register("pt2")(Pt2Source())
