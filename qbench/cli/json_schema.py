"""JSON Schema of a suite (and of a device profile), generated from the pydantic models, for editors.

Recipes are refined per `kind`: each registered recipe's option model becomes an if/then branch, so
an editor completes and checks `per_channel:` under `kind: ptq` exactly as the loader does.
"""

from __future__ import annotations

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def suite_schema() -> dict:
    from qbench.quantize import RECIPES
    from qbench.suite.schema import Suite

    schema = Suite.model_json_schema(mode="validation")
    defs = schema.setdefault("$defs", {})
    recipe = defs["RecipeSpec"]
    recipe["properties"]["kind"] = {"title": "Kind", "enum": RECIPES.names(),
                                    "description": "the quantization recipe; its options are the other keys"}
    branches = []
    for kind in RECIPES.names():
        options = RECIPES.get(kind).Options.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(options.pop("$defs", {}))
        props = {"name": {}, "kind": {}, **options.get("properties", {})}
        branches.append({"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                         "then": {"properties": props, "additionalProperties": False}})
    recipe["allOf"] = branches
    return _stamp(schema, "A qbench suite: models × quantization recipes × devices, and benchmark settings.")


def device_profile_schema() -> dict:
    from qbench.devices.profiles import DeviceProfile

    schema = DeviceProfile.model_json_schema(mode="validation")
    return _stamp(schema, "A qbench device profile (device_profiles/NAME.yaml).")


def _stamp(schema: dict, description: str) -> dict:
    return {"$schema": DRAFT, "description": description, **schema}


SCHEMAS = {"suite": suite_schema, "device": device_profile_schema}
