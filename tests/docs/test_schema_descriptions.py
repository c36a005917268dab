"""Every key of a suite and a device profile carries a description into the JSON Schema, so an
editor's hover text (and the generated suite/device reference) is never empty."""

from __future__ import annotations

import json

import pytest

from qbench.cli.json_schema import SCHEMAS
from tests.helpers import qbench


def undescribed(node, path="") -> list[str]:
    """Paths of properties without a description; `if` branches only select a recipe kind."""
    missing = []
    if isinstance(node, dict):
        for key, prop in (node.get("properties") or {}).items():
            if isinstance(prop, dict) and prop and "description" not in prop:
                missing.append(f"{path}.{key}")
        for key, child in node.items():
            if key != "if":
                missing += undescribed(child, f"{path}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            missing += undescribed(child, f"{path}[{i}]")
    return missing


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_property_has_a_description(name):
    assert undescribed(SCHEMAS[name]()) == []


def test_qbench_schema_prints_the_descriptions():
    out = qbench("schema", "suite", check=True).stdout
    schema = json.loads(out)
    bench = schema["$defs"]["BenchmarkSpec"]["properties"]
    assert "95% CI" in bench["precision"]["description"]
    qat = next(b["then"]["properties"] for b in schema["$defs"]["RecipeSpec"]["allOf"]
               if b["if"]["properties"]["kind"]["const"] == "qat")
    assert qat["steps"]["description"]
