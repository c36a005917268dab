"""A runner build says so, also without -v: a CI log is not silent for the minute it takes.

A real CMake configure against a stand-in NDK (as in test_native_runner.py) fails fast; the start
line is logged before it, to the logger the CLI shows at the default verbosity."""

from __future__ import annotations

import logging

import pytest

from qbench.cli.logs import _ConsoleFilter
from qbench.errors import QbenchError
from qbench.runners.native_build import build_runner


def test_a_runner_build_announces_itself_at_the_default_verbosity(tmp_path, monkeypatch, caplog):
    ndk, et = tmp_path / "ndk", tmp_path / "et"
    (ndk / "build" / "cmake").mkdir(parents=True)
    (ndk / "build" / "cmake" / "android.toolchain.cmake").write_text("# host compiler stands in for the NDK\n")
    (et / "lib" / "cmake" / "ExecuTorch").mkdir(parents=True)
    (et / "lib" / "cmake" / "ExecuTorch" / "executorch-config.cmake").write_text('message(FATAL_ERROR "stand-in")\n')
    monkeypatch.setenv("ANDROID_NDK", str(ndk))
    monkeypatch.setenv("QBENCH_ET_DIR_ANDROID_ARM64_V8A", str(et))
    monkeypatch.setenv("QBENCH_ANDROID_RUNNER", "ndk")
    with caplog.at_level(logging.INFO, logger="qbench.announce"), pytest.raises(QbenchError):
        build_runner("android-arm64-v8a", cache_dir=tmp_path / "cache")
    (record,) = [r for r in caplog.records if r.name.startswith("qbench.announce")]
    assert record.getMessage().startswith("building the native runner for android-arm64-v8a (configure, compile")
    assert _ConsoleFilter(0).filter(record) and not _ConsoleFilter(-1).filter(record)  # shown unless -q
