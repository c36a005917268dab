"""Fixtures for the report tests: result stores built by synthetic.py."""

from __future__ import annotations

import pytest

from qbench.results.store import ResultsStore

from .synthetic import build_nightly_db


@pytest.fixture(scope="session")
def nightly_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("nightly") / "qbench.db"
    build_nightly_db(path)
    return path


@pytest.fixture
def empty_store(tmp_path):
    store = ResultsStore(tmp_path / "qbench.db")
    yield store
    store.close()
