"""Quoting a user's value back in an error message, bounded in length and depth.

A YAML alias bomb is a few hundred bytes that stand for billions of items (shared references); a
plain repr() of it in an error message would expand them all. `brief` walks at most a few levels
and items and stops at `width` characters, so its cost is bounded whatever the value.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

_MAX_DEPTH = 3
_MAX_ITEMS = 4


def brief(value: Any, width: int = 60) -> str:
    """repr(value) when it is short; otherwise a prefix of it ending in `…`."""
    out: list[str] = []
    budget = [width + 1]  # one over: enough to know that something was cut

    def emit(text: str) -> bool:
        out.append(text[: budget[0]])
        budget[0] -= len(text)
        return budget[0] > 0

    def walk(v: Any, depth: int) -> bool:
        if isinstance(v, (list, tuple, dict)):
            opening, closing = "{}" if isinstance(v, dict) else "()" if isinstance(v, tuple) else "[]"
            if depth >= _MAX_DEPTH and len(v):
                return emit(opening + "…" + closing)
            if not emit(opening):
                return False
            items = islice(v.items() if isinstance(v, dict) else v, _MAX_ITEMS + 1)
            for i, item in enumerate(items):
                if i and not emit(", "):
                    return False
                if i == _MAX_ITEMS:
                    if not emit("…"):
                        return False
                    break
                if isinstance(v, dict):
                    if not (walk(item[0], depth + 1) and emit(": ") and walk(item[1], depth + 1)):
                        return False
                elif not walk(item, depth + 1):
                    return False
            return emit(closing)
        text = repr(v[: width + 1]) if isinstance(v, (str, bytes)) else repr(v)
        return emit(text)

    walk(value, 0)
    text = "".join(out)
    return text if len(text) <= width else text[: width - 1] + "…"
