"""Every JSON document qbench writes is strict JSON (RFC 8259): no NaN, Infinity or -Infinity,
which Python's json writes by default and JSON.parse, jq and most other readers reject.

A non-finite float becomes null: qbench never means a number by it (an undefined figure, a
NaN output's SQNR); where it matters, the document says why beside it (e.g. `numerics_reason`).
"""

from __future__ import annotations

import json
import math
from typing import Any


def dumps(value: Any, **kwargs) -> str:
    """json.dumps with non-finite floats (also inside numpy scalars) written as null, allow_nan=False."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)


def finite(value: Any) -> Any:
    """`value` with every non-finite float in it replaced by None (dicts, lists and tuples walked)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return finite(value.item())  # a numpy scalar
    return value
