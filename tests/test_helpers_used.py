"""Tests run the qbench CLI and import shared functions one way: through tests/helpers.py (one
environment for every subprocess, one tiny suite builder). A test that spawns `python -m qbench` by
hand or imports tests.conftest as a module is named here with the fix."""

from __future__ import annotations

import ast
import re

from tests.helpers import REPO

TESTS = REPO / "tests"
BY_HAND = re.compile(r"""\[sys\.executable,\s*["']-m["'],\s*["']qbench["']""")
CONFTEST_IMPORT = re.compile(r"^\s*(from tests\.conftest import|import tests\.conftest)", re.M)


def _test_sources() -> dict[str, str]:
    return {str(p.relative_to(REPO)): p.read_text() for p in sorted(TESTS.rglob("*.py")) if p.name != "helpers.py"}


def test_no_test_spawns_qbench_by_hand():
    offenders = [name for name, text in _test_sources().items() if BY_HAND.search(text)]
    assert not offenders, f"{offenders}: run the CLI with tests.helpers.qbench / qbench_popen"


def test_no_test_imports_conftest_as_a_module():
    offenders = [name for name, text in _test_sources().items() if CONFTEST_IMPORT.search(text)]
    assert not offenders, f"{offenders}: import plain functions from tests.helpers (conftest.py holds fixtures)"


def _shadows_the_package(text: str) -> bool:
    """The module imports the qbench package at top level and also the CLI helper under the same name."""
    body = ast.parse(text).body
    package = any(isinstance(n, ast.Import) and any(a.name.split(".")[0] == "qbench" and not a.asname for a in n.names)
                  for n in body)
    helper = any(isinstance(n, ast.ImportFrom) and n.module == "tests.helpers"
                 and any(a.name == "qbench" and not a.asname for a in n.names) for n in body)
    return package and helper


def test_the_cli_helper_does_not_shadow_the_qbench_package():
    offenders = [name for name, text in _test_sources().items() if _shadows_the_package(text)]
    assert not offenders, f"{offenders}: import the helper as `from tests.helpers import qbench as qbench_cli`"
