"""`torchvision:NAME`: a torchvision architecture with random weights (no download)."""

from __future__ import annotations

from pathlib import Path

from qbench.models.base import SOURCES


class TorchvisionSource:
    def resolve(self, ref: str, base_dir: Path) -> str:
        return ref  # a name, not a path

    def check(self, ref: str) -> str | None:
        import torchvision

        names = torchvision.models.list_models()
        if ref not in names:
            import difflib

            close = difflib.get_close_matches(ref, names, n=4, cutoff=0.6)
            return f"torchvision has no model {ref!r}" + (f" (did you mean: {', '.join(close)})" if close else "")
        return None

    def build(self, ref: str):
        import torchvision

        return torchvision.models.get_model(ref, weights=None)

    def fingerprint(self, ref: str) -> str:
        import torchvision

        return f"torchvision-{torchvision.__version__}:{ref}"


SOURCES.register("torchvision")(TorchvisionSource())
