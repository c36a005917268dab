"""Sweeps: `threads`, `affinity` and `batch` in a suite's `benchmark:` may be lists, one cell per value.

A cell is model × recipe × device × sweep point. An axis with a single value (a scalar, or a list of
one) is not swept: it is a setting, as before, and adds nothing to the cell's identity, so a suite
without lists has exactly the cells (and store keys) it always had. The point's label names the
swept axes only, in a fixed order: `threads=2 batch=4 affinity=big`; it is how two runs' cells are
matched (results/store.py keeps it in `cells.sweep`).

Cheap to import (the suite schema uses it).
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

ClusterName = Literal["little", "mid", "big", "prime"]
CLUSTERS = ("little", "mid", "big", "prime")
AXES = ("threads", "batch", "affinity")  # label order
# One axis lists at most this many values, and the axes together make at most MAX_POINTS cells per
# model × recipe × device: more is a generated list gone wrong, not a measurement plan (each cell is
# a set of trials of seconds each).
MAX_VALUES = 256
MAX_POINTS = 4096

_WHAT = {
    "threads": "a positive integer or `auto`",
    "batch": "a positive integer",
    "affinity": "a core list like [0, 1] or a cluster name (little, mid, big, prime)",
}


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _valid(axis: str, v: Any) -> bool:
    if axis == "threads":
        return _is_count(v) or v == "auto"
    if axis == "batch":
        return _is_count(v)
    return v in CLUSTERS or (isinstance(v, list) and bool(v) and
                             all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in v))


def is_sweep_list(axis: str, value: Any) -> bool:
    """A list of values (not affinity's single core list [0, 1])."""
    if not isinstance(value, list):
        return False
    return axis != "affinity" or any(isinstance(v, (list, str)) for v in value)


def check_sweep(value: Any, info) -> Any:
    """Before pydantic: one clear message per bad axis instead of one per member of the union."""
    axis = info.field_name
    if (value is None or value == []) and axis == "affinity":  # unset, or an empty core list as before
        return value
    if value is None and axis == "batch":
        return value
    if not is_sweep_list(axis, value):
        if not _valid(axis, value):
            raise ValueError(f"should be {_WHAT[axis]}, or a list of them (a sweep)")  # the loader adds (got …)
        return value
    if not value:
        raise ValueError(f"a sweep list needs at least one value ({_WHAT[axis]})")
    if len(value) > MAX_VALUES:
        raise ValueError(f"a sweep lists at most {MAX_VALUES} values, this one has {len(value)}")
    seen: set = set()
    for v in value:
        if not _valid(axis, v):
            raise ValueError(f"each value of the sweep should be {_WHAT[axis]}, got {v!r}")
        key = tuple(v) if isinstance(v, list) else v
        if key in seen:
            raise ValueError(f"{v!r} is listed twice; a sweep lists each value once")
        seen.add(key)
    return value


def check_points(bench) -> None:
    """The sweep's cells per model × recipe × device are bounded (MAX_POINTS)."""
    count = 1
    for axis in AXES:
        count *= len(values(bench, axis))
    if count > MAX_POINTS:
        sizes = " × ".join(f"{len(values(bench, a))} {a}" for a in AXES if len(values(bench, a)) > 1)
        raise ValueError(f"the sweep makes {count} points ({sizes}); at most {MAX_POINTS} per model, recipe "
                         "and device: sweep fewer values")


def values(bench, axis: str) -> list:
    """The axis' values as a list (a single value is a list of one; unset batch/affinity = [None])."""
    value = getattr(bench, axis)
    return list(value) if is_sweep_list(axis, value) else [value]


def swept_axes(bench) -> tuple[str, ...]:
    return tuple(a for a in AXES if len(values(bench, a)) > 1)


def show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def label(point: dict, swept: tuple[str, ...]) -> str:
    """`threads=2 batch=4` (swept axes only); '' when nothing is swept."""
    return " ".join(f"{a}={show(point[a])}" for a in AXES if a in swept)


def points(bench) -> list[dict]:
    """Every combination of the swept axes' values, in suite order ({} when nothing is swept)."""
    swept = swept_axes(bench)
    return [dict(zip(swept, combo)) for combo in itertools.product(*(values(bench, a) for a in swept))]


def parse_label(text: str | None) -> dict[str, str]:
    """`threads=2 batch=4` -> {'threads': '2', 'batch': '4'} (for tables and plots)."""
    return dict(part.split("=", 1) for part in (text or "").split() if "=" in part)
