"""`pt2:path/to/program.pt2`: a program saved with torch.export.save."""

from __future__ import annotations

from pathlib import Path

from qbench.models.base import SOURCES
from qbench.hashing import file_sha256


class Pt2Source:
    def resolve(self, ref: str, base_dir: Path) -> str:
        return ref if Path(ref).expanduser().is_absolute() else str(base_dir / ref)

    def check(self, ref: str) -> str | None:
        path = Path(ref).expanduser()
        return None if path.is_file() else f"{path}: no such file"

    def build(self, ref: str):
        import torch

        return torch.export.load(str(Path(ref).expanduser())).module()

    def fingerprint(self, ref: str) -> str:
        return "pt2:" + file_sha256(Path(ref).expanduser())


SOURCES.register("pt2")(Pt2Source())
