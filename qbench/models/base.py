"""The ModelSource interface and its registry."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from qbench.registry import Registry

if TYPE_CHECKING:
    import torch


class ModelSource(Protocol):
    def resolve(self, ref: str, base_dir: Path) -> str:
        """The ref with any path in it made relative to nothing (base_dir: the suite's folder); once, at load."""

    def check(self, ref: str) -> str | None:
        """Cheap validation before any cell runs; returns a problem description or None."""

    def build(self, ref: str) -> "torch.nn.Module":
        """A fresh fp32 module (random weights unless the suite gives `weights:`)."""

    def fingerprint(self, ref: str) -> str:
        """What identifies the model's code for the artifact cache (a content hash or a version)."""


SOURCES: Registry[ModelSource] = Registry("model source")


def split_source(source: str) -> tuple[str, str]:
    kind, sep, ref = source.partition(":")
    if not sep or not ref or not kind:
        raise ValueError(f"a source is KIND:REF (e.g. torchvision:mobilenet_v2), got {source!r}")
    return kind, ref
