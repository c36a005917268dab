"""Shared by the runner tests: one fp32 and one int8 .pte of a tiny convnet, exported once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runners.test_native_runner import export_pte, tiny_convnet


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    model, example = tiny_convnet()
    return {
        "fp32": export_pte(model, example, folder / "fp32.pte", int8=False),
        "int8": export_pte(model, example, folder / "int8.pte", int8=True),
    }
