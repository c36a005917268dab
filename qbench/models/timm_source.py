"""`timm:NAME`: a timm architecture with random weights (needs `pip install timm`)."""

from __future__ import annotations

from pathlib import Path

from qbench.models.base import SOURCES


class TimmSource:
    def check(self, ref: str, base_dir: Path) -> str | None:
        try:
            import timm
        except ImportError:
            return "timm is not installed (pip install timm)"
        if not timm.list_models(ref):
            return f"timm has no model {ref!r}"
        return None

    def build(self, ref: str, base_dir: Path):
        import timm

        return timm.create_model(ref, pretrained=False)

    def fingerprint(self, ref: str, base_dir: Path) -> str:
        import timm

        return f"timm-{timm.__version__}:{ref}"


SOURCES.register("timm")(TimmSource())
