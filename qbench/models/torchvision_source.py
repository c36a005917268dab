"""`torchvision:NAME`: a torchvision architecture with random weights (no download).

Segmentation models return a dict (`out`, and `aux` where the builder adds one), detection models
a list of dicts; qbench flattens structured outputs (qbench/models/outputs.py). Detection models
carry data-dependent post-processing that torch.export cannot capture: they fail at stage `export`.
"""

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
            hint = (f" (did you mean: {', '.join(close)})" if close else
                    f"; it has {len(names)}, listed by torchvision.models.list_models(), e.g. resnet18, mobilenet_v2")
            return f"torchvision has no model {ref!r}{hint}"
        return None

    def build(self, ref: str):
        import inspect

        import torchvision

        # weights=None alone still downloads an ImageNet backbone for segmentation/detection builders
        params = inspect.signature(torchvision.models.get_model_builder(ref)).parameters
        no_weights = {k: None for k in ("weights", "weights_backbone") if k in params}
        return torchvision.models.get_model(ref, **no_weights)

    def fingerprint(self, ref: str) -> str:
        import torchvision

        return f"torchvision-{torchvision.__version__}:{ref}"


SOURCES.register("torchvision")(TorchvisionSource())
