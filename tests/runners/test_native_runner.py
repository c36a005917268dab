"""The native C++ runner: built here with CMake against the installed executorch wheel, then run on
real .pte files (exported in the test) and compared with ExecuTorch's Python runtime."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from qbench.errors import QbenchError
from qbench.runners import native_build
from qbench.runners.native_build import build_runner, can_build, default_fill, find_runner


def shared_cache(tmp_path_factory) -> Path:
    # One cache per test session (tests/conftest.py points QBENCH_CACHE at a temporary one), so every
    # module that needs the runner reuses one build and nothing lands in ~/.cache.
    return Path(os.environ.get("QBENCH_CACHE") or tmp_path_factory.getbasetemp() / "qbench-cache")


@pytest.fixture(scope="session")
def runner(tmp_path_factory) -> Path:
    return build_runner("host", cache_dir=shared_cache(tmp_path_factory))


def run(binary: Path, *args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def quick(*extra):
    """Flags for a short run; `extra` overrides by coming later."""
    return ["--warmup", 0, "--warmup-seconds", 0, "--iterations", 2, "--min-seconds", 0, *extra]


def tiny_convnet():
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3)
            self.fc = torch.nn.Linear(8, 5)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

    torch.manual_seed(0)
    return Net().eval(), (torch.randn(1, 3, 16, 16),)


def export_pte(model, example, path: Path, int8: bool) -> Path:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    ep = torch.export.export(model, example)
    if int8:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(ep.module(), quantizer)
        prepared(*example)
        ep = torch.export.export(convert_pt2e(prepared), example)
    program = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
    path.write_bytes(program.buffer)
    return path


def python_runtime(pte: Path, x: np.ndarray) -> np.ndarray:
    import torch
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(str(pte)).load_method("forward")
    return method.execute([torch.from_numpy(x)])[0].numpy()


# ------------------------------------------------------------------ build


def test_can_build_here():
    ok, reason = can_build()
    assert ok, reason


@pytest.mark.slow
def test_build_is_cached_by_target_version_and_sources(runner, tmp_path_factory):
    cache = shared_cache(tmp_path_factory)
    folder = runner.parent
    assert runner.name == "qbench_runner" and os.access(runner, os.X_OK)
    assert folder.parent == cache / "runners"
    assert folder.name == f"host-et{native_build.executorch_version()}-{native_build.source_hash()}"
    # The folder is self-contained (what a device gets): the libraries sit beside the binary.
    assert (folder / "libexecutorch.so").is_file() and (folder / "libexecutorch_backend_xnnpack.so").is_file()
    assert find_runner("host", cache_dir=cache) == runner
    t0 = time.monotonic()
    assert build_runner("host", cache_dir=cache) == runner
    assert time.monotonic() - t0 < 2, "a cached runner must be reused, not rebuilt"
    # Nothing else is left in the runners folder but finished builds and their logs.
    assert all(not p.name.startswith(".") for p in (cache / "runners").iterdir())


def test_find_runner_is_none_before_a_build(tmp_path):
    assert find_runner("host", cache_dir=tmp_path) is None


def test_unknown_target_lists_the_valid_ones(tmp_path):
    with pytest.raises(QbenchError, match="host, linux-aarch64, android-arm64-v8a"):
        build_runner("ios", cache_dir=tmp_path)


def test_android_without_ndk_says_what_is_needed(tmp_path, monkeypatch):
    monkeypatch.setenv("QBENCH_ANDROID_RUNNER", "ndk")  # the default is the NDK-free bundle (test_android_bundle.py)
    for var in ("ANDROID_NDK", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT", "QBENCH_ET_DIR_ANDROID_ARM64_V8A"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(QbenchError, match="ANDROID_NDK.*android.toolchain.cmake.*no Android wheel"):
        build_runner("android-arm64-v8a", cache_dir=tmp_path)


def test_android_with_ndk_but_no_executorch_build(tmp_path, monkeypatch):
    ndk = tmp_path / "ndk"
    (ndk / "build" / "cmake").mkdir(parents=True)
    (ndk / "build" / "cmake" / "android.toolchain.cmake").write_text("# stand-in: never configured\n")
    monkeypatch.setenv("ANDROID_NDK", str(ndk))
    monkeypatch.setenv("QBENCH_ANDROID_RUNNER", "ndk")
    monkeypatch.delenv("QBENCH_ET_DIR_ANDROID_ARM64_V8A", raising=False)
    with pytest.raises(QbenchError, match="QBENCH_ET_DIR_ANDROID_ARM64_V8A.*built from source"):
        build_runner("android-arm64-v8a", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "runners").exists() or not any((tmp_path / "cache" / "runners").iterdir())


def test_a_failing_build_reports_the_cmake_error(tmp_path, monkeypatch):
    # A real CMake configure against a stand-in NDK and ExecuTorch install whose package config fails.
    ndk, et = tmp_path / "ndk", tmp_path / "et"
    (ndk / "build" / "cmake").mkdir(parents=True)
    (ndk / "build" / "cmake" / "android.toolchain.cmake").write_text("# host compiler stands in for the NDK\n")
    (et / "lib" / "cmake" / "ExecuTorch").mkdir(parents=True)
    (et / "lib" / "cmake" / "ExecuTorch" / "executorch-config.cmake").write_text(
        'message(FATAL_ERROR "stand-in ExecuTorch install: nothing to link")\n'
    )
    monkeypatch.setenv("ANDROID_NDK", str(ndk))
    monkeypatch.setenv("QBENCH_ET_DIR_ANDROID_ARM64_V8A", str(et))
    cache = tmp_path / "cache"
    with pytest.raises(QbenchError, match=r"failed \(configure\): CMake Error .*stand-in ExecuTorch install.*full log"):
        build_runner("android-arm64-v8a", cache_dir=cache)
    assert find_runner("android-arm64-v8a", cache_dir=cache) is None
    assert [p.suffix for p in (cache / "runners").iterdir()] == [".log"]  # no half-built runner left


@pytest.mark.skipif(platform.machine() in ("aarch64", "arm64"), reason="an aarch64 host builds natively")
def test_linux_aarch64_without_toolchain_says_what_is_needed(tmp_path, monkeypatch):
    monkeypatch.delenv("QBENCH_TOOLCHAIN_LINUX_AARCH64", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # a farm host without the cross compiler
    with pytest.raises(QbenchError, match=r"no cross compiler\. Install one \(Debian/Ubuntu: apt-get install "
                                          r"g\+\+-aarch64-linux-gnu\) or give a CMake toolchain file.*on the Pi itself"):
        build_runner("linux-aarch64", cache_dir=tmp_path)


def test_default_fill_pattern():
    x = default_fill("float32", (2, 3))
    assert x.dtype == np.float32 and x.shape == (2, 3)
    v = (np.arange(6) * 7919) % 251
    np.testing.assert_array_equal(x.ravel(), (v.astype(np.float32) / np.float32(250) - np.float32(0.5)))
    assert default_fill("int8", (300,)).min() >= -125 and default_fill("int8", (300,)).max() <= 125
    with pytest.raises(QbenchError, match="no default fill"):
        default_fill("complex64", (2,))


# ------------------------------------------------------------------ outputs


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fp32", "int8"])
def test_outputs_equal_the_python_runtime(runner, models, kind, tmp_path):
    x = np.random.default_rng(7).standard_normal((1, 3, 16, 16)).astype(np.float32)
    inputs, outputs = tmp_path / "in.bin", tmp_path / "out.bin"
    inputs.write_bytes(x.tobytes())
    proc = run(runner, "--model", models[kind], "--inputs", inputs, "--outputs", outputs, "--threads", 1, "--json", *quick())
    result = json.loads(proc.stdout)
    assert result["outputs"] == [{"dtype": "float32", "shape": [1, 5]}]
    native = np.frombuffer(outputs.read_bytes(), dtype=np.float32).reshape(1, 5)
    reference = python_runtime(models[kind], x)
    if kind == "int8":
        np.testing.assert_array_equal(native, reference)  # same kernels, same threads: bit-exact
    else:
        np.testing.assert_allclose(native, reference, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_default_inputs_are_the_documented_fill(runner, models, tmp_path):
    outputs = tmp_path / "out.bin"
    run(runner, "--model", models["fp32"], "--outputs", outputs, "--threads", 1, *quick())
    native = np.frombuffer(outputs.read_bytes(), dtype=np.float32).reshape(1, 5)
    reference = python_runtime(models["fp32"], default_fill("float32", (1, 3, 16, 16)))
    np.testing.assert_allclose(native, reference, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ JSON


@pytest.mark.slow
def test_json_fields_are_sane(runner, models):
    proc = run(
        runner, "--model", models["int8"], "--json", "--threads", 2, "--affinity", "0,1",
        "--warmup", 3, "--warmup-seconds", 0.1, "--iterations", 5, "--min-seconds", 0.3,
    )  # fmt: skip
    r = json.loads(proc.stdout)
    assert r["runner"] == "native" and r["method"] == "forward"
    assert r["load_ms"] > 0 and r["method_init_ms"] > 0 and r["first_inference_ms"] > 0
    assert r["warmup_iterations"] >= 3 and r["warmup_seconds"] >= 0.1
    samples = r["samples_ns"]
    assert len(samples) >= 5 and all(isinstance(s, int) and s > 0 for s in samples)
    # The measured phase ran until 0.3 s were reached (the samples cover almost all of that time).
    assert sum(samples) >= 0.9 * 0.3e9
    assert r["threads"] == 2 and r["affinity"] == [0, 1]
    assert r["peak_rss_bytes"] > 1_000_000 and r["arena_bytes"] > 0
    assert r["outputs"] == [{"dtype": "float32", "shape": [1, 5]}]
    assert_interference_fields(r)


def assert_interference_fields(r):
    """The contract's `thread_cpu_ns` and `interference` (shared with the Python runner's test)."""
    from qbench.collectors.interference import parse_proc_stat, summarize

    assert len(r["thread_cpu_ns"]) == len(r["samples_ns"])
    assert all(0 <= c <= w for c, w in zip(r["thread_cpu_ns"], r["samples_ns"]))  # CPU inside the wall interval
    i = r["interference"]
    assert i["wall_ns"] >= sum(r["samples_ns"]) and i["process_cpu_ns"] > 0 and i["clock_ticks_per_s"] > 0
    assert i["involuntary_switches"] >= 0 and i["voluntary_switches"] >= 0
    assert set(i["cores"]) <= set(parse_proc_stat(i["proc_stat_after"]))
    assert len(i["schedstat_after"]) >= 1
    # every signal either has figures or says why not (this VM has no cpufreq folder)
    assert i["cpufreq_khz"] or "cpufreq" in i["unreadable"]
    s = summarize(r)
    assert s["interference_share"] is not None and 0 <= s["interference_share"] <= 1


@pytest.mark.slow
def test_max_iterations_caps_the_measured_phase(runner, models):
    proc = run(runner, "--model", models["fp32"], "--json", *quick("--iterations", 3, "--min-seconds", 30, "--max-iterations", 7))
    r = json.loads(proc.stdout)
    assert len(r["samples_ns"]) == 7
    assert r["affinity"] is None


@pytest.mark.slow
def test_threads_default_to_one(runner, models):
    r = json.loads(run(runner, "--model", models["fp32"], "--json", *quick()).stdout)
    assert r["threads"] == 1  # as the Python runner and the suite's default


# ------------------------------------------------------------------ errors


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", r"cannot open model '.*nope\.pte': No such file"),
        ("corrupt", r"cannot load program '.*random\.pte': not a valid ExecuTorch \.pte file \(InvalidProgram"),
        ("method", r"method 'nope' not found in '.*' \(available: forward\)"),
        ("inputs", r"inputs file '.*' has 5 bytes, method 'forward' expects 3072 \(float32\[1,3,16,16\]\)"),
        ("flag", r"unknown flag '--bogus'"),
    ],
)
def test_bad_input_fails_with_one_clear_last_line(runner, models, tmp_path, case, expected):
    import re

    args = {
        "missing": ["--model", tmp_path / "nope.pte"],
        "corrupt": ["--model", tmp_path / "random.pte"],
        "method": ["--model", models["fp32"], "--method", "nope"],
        "inputs": ["--model", models["fp32"], "--inputs", tmp_path / "short.bin"],
        "flag": ["--model", models["fp32"], "--bogus"],
    }[case]
    (tmp_path / "random.pte").write_bytes(np.random.default_rng(1).bytes(4096))
    (tmp_path / "short.bin").write_bytes(b"12345")
    proc = run(runner, *args, "--json", *quick(), check=False)
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("qbench-runner: ")
    assert re.search(expected, lines[-1]), lines[-1]
    assert sum(ln.startswith("qbench-runner: ") for ln in lines) == 1
