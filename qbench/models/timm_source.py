"""`timm:NAME`: a timm architecture with random weights (needs `pip install timm`)."""

from __future__ import annotations

from pathlib import Path

from qbench.models.base import SOURCES


class TimmSource:
    def resolve(self, ref: str, base_dir: Path) -> str:
        return ref  # a name, not a path

    def check(self, ref: str) -> str | None:
        try:
            import timm
        except ImportError:
            return "timm is not installed (pip install timm)"
        if not timm.list_models(ref):
            return f"timm has no model {ref!r}"
        return None

    def build(self, ref: str):
        import timm

        return timm.create_model(ref, pretrained=False)

    def fingerprint(self, ref: str) -> str:
        import timm

        return f"timm-{timm.__version__}:{ref}"


SOURCES.register("timm")(TimmSource())
