"""`pt2:path/to/program.pt2`: a program saved with torch.export.save."""

from __future__ import annotations

from pathlib import Path

from qbench.models.base import SOURCES
from qbench.hashing import file_sha256


def _path(ref: str, base_dir: Path) -> Path:
    p = Path(ref)
    return p if p.is_absolute() else base_dir / p


class Pt2Source:
    def check(self, ref: str, base_dir: Path) -> str | None:
        path = _path(ref, base_dir)
        return None if path.is_file() else f"{path}: no such file"

    def build(self, ref: str, base_dir: Path):
        import torch

        return torch.export.load(str(_path(ref, base_dir))).module()

    def fingerprint(self, ref: str, base_dir: Path) -> str:
        return "pt2:" + file_sha256(_path(ref, base_dir))


SOURCES.register("pt2")(Pt2Source())
