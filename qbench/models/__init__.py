"""Model sources: where a suite's `source: KIND:REF` comes from.

Each kind registers a ModelSource in SOURCES (third-party kinds register the same way).
"""

from __future__ import annotations

from qbench.models.base import SOURCES, ModelSource, split_source  # noqa: F401
from qbench.models import torchvision_source, timm_source, python_source, pt2_source, hf_source, llama_source  # noqa: F401,E402
