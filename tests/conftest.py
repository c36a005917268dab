"""Shared fixtures: an isolated artifact cache, and suite folders built from real files. Only fixtures
live here (pytest finds them); plain functions tests share are in tests/helpers.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Artifacts of the whole test session go to one temporary cache (shared across tests on purpose:
    the same variant is exported once)."""
    cache = tmp_path_factory.mktemp("qbench-cache")
    old = os.environ.get("QBENCH_CACHE")
    os.environ["QBENCH_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("QBENCH_CACHE", None)
    else:
        os.environ["QBENCH_CACHE"] = old


@pytest.fixture(scope="session", autouse=True)
def no_ci_channels():
    """Tests run qbench as a user would; when the tests themselves run in a CI job, qbench must not
    write into that job's step summary or annotate it (tests that want CI set these themselves)."""
    saved = {k: os.environ.pop(k) for k in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITLAB_CI") if k in os.environ}
    yield
    os.environ.update(saved)


@pytest.fixture
def suite_dir(tmp_path) -> Path:
    """A folder holding a copy of the smoke suite's models, for suites written by a test."""
    shutil.copytree(REPO / "suites" / "models", tmp_path / "models")
    return tmp_path


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server (CI: QBENCH_TEST_PG_URL from scripts/test.sh; else started here)."""
    from qbench.testing.pg import PgServer

    try:
        server = PgServer.start()
    except RuntimeError as exc:
        if os.environ.get("CI") or os.environ.get("QBENCH_REQUIRE_PG"):
            raise
        pytest.skip(f"no PostgreSQL server: {exc}")
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh database on the test server."""
    return pg_server.new_database()
