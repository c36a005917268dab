"""Comments and docs that name code say what the code does: the registry module lists the registries
that exist, and the runner contract names what the runners read for peak memory."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import qbench
import qbench.registry
from qbench.registry import Registry

ROOT = Path(qbench.__file__).parent
REGISTRY_MODULES = ["qbench.models.base", "qbench.quantize.base", "qbench.collectors.power.base",
                    "qbench.devices.transports"]


def test_the_registry_docstring_names_exactly_the_registries_there_are():
    found = set()
    for path in ROOT.rglob("*.py"):  # every module that builds one is in the list below
        for m in re.finditer(r"^(\w+)(?::[^=]*)? = Registry\(", path.read_text(), re.M):
            module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
            found.add(f"{module}::{m.group(1)}")
    assert {f.split("::")[0] for f in found} == set(REGISTRY_MODULES)
    doc = qbench.registry.__doc__
    named = set(re.findall(r"([\w/]+)\.py::(\w+)", doc))
    assert {(f"qbench/{p}".replace("/", "."), n) for p, n in named} == {tuple(f.split("::")) for f in found}
    for module in REGISTRY_MODULES:
        assert any(isinstance(v, Registry) for v in vars(importlib.import_module(module)).values())


def test_the_contract_names_the_peak_memory_the_runners_read():
    contract = (ROOT / "runners" / "contract.md").read_text()
    row = next(line for line in contract.splitlines() if line.startswith("| `peak_rss_bytes`"))
    assert "VmHWM" in row and "/proc/self/status" in row
    for source in ("runners/native/qbench_runner.cpp", "runners/python_runner.py"):
        assert '"VmHWM:"' in (ROOT / source).read_text(), source
