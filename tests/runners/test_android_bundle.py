"""The phone runner without the NDK (qbench/runners/bundle.py): the linux-aarch64 runner, cross-built
here, in one folder with its glibc loader and libraries. It runs under qemu-aarch64 with nothing from
the host's aarch64 sysroot visible (no -L, no QEMU_LD_PREFIX), from a copy in another folder, and its
outputs match ExecuTorch's Python runtime on this x86 host."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from qbench.errors import QbenchError
from qbench.runners import bundle
from qbench.runners.native_build import build_runner, find_runner
from tests.runners.test_native_runner import python_runtime, quick, shared_cache

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("aarch64-linux-gnu-g++") is None, reason="needs g++-aarch64-linux-gnu"),
    pytest.mark.skipif(shutil.which("qemu-aarch64") is None, reason="needs qemu-user"),
]


@pytest.fixture(scope="module")
def phone_runner(tmp_path_factory):
    return build_runner("android-arm64-v8a", cache_dir=shared_cache(tmp_path_factory))


@pytest.fixture(scope="module")
def moved(phone_runner, tmp_path_factory):
    """The bundle copied somewhere else, as a device gets it: proves it is relocatable."""
    dest = tmp_path_factory.mktemp("elsewhere") / "bundle"
    shutil.copytree(phone_runner.parent, dest)
    return dest


def on_phone(folder, *args, cpu: str = "cortex-a76", check: bool = True) -> subprocess.CompletedProcess:
    """The contract's launch line, in the bundle's folder, under qemu with no sysroot."""
    env = {k: v for k, v in os.environ.items() if k != "QEMU_LD_PREFIX"}
    proc = subprocess.run(["qemu-aarch64", "-cpu", cpu, *bundle.launch_argv("."), *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=folder, env=env)
    assert not check or proc.returncode == 0, proc.stderr
    return proc


def test_the_bundle_is_the_default_android_build_cached_and_self_contained(phone_runner, tmp_path_factory):
    folder = phone_runner.parent
    assert folder.name.startswith("android-arm64-v8a-bundle-et")
    names = {p.name for p in folder.iterdir()}
    assert {"qbench_runner", "ld-linux-aarch64.so.1", "libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1",
            "libexecutorch.so", "libexecutorch_backend_xnnpack.so", "bundle.json"} <= names
    manifest = json.loads((folder / "bundle.json").read_text())
    assert manifest["launch"] == ["./ld-linux-aarch64.so.1", "--library-path", ".", "./qbench_runner"]
    assert set(manifest["files"]) == names - {"bundle.json"}
    assert bundle.missing_libraries(folder) == []
    assert not any(p.is_symlink() for p in folder.iterdir())
    assert bundle.bundle_size(folder) < 40e6  # ~17 MB
    # cached: found without a build, and a second build is the same folder, untouched
    mtime = (folder / "bundle.json").stat().st_mtime_ns
    assert find_runner("android-arm64-v8a", shared_cache(tmp_path_factory)) == phone_runner
    assert build_runner("android-arm64-v8a", cache_dir=shared_cache(tmp_path_factory)) == phone_runner
    assert (folder / "bundle.json").stat().st_mtime_ns == mtime


def test_no_absolute_path_inside(phone_runner):
    for p in phone_runner.parent.iterdir():
        out = subprocess.run(["readelf", "-d", str(p)], capture_output=True, text=True).stdout
        for runpath in [ln.split("[", 1)[1].rstrip("]") for ln in out.splitlines() if "RUNPATH" in ln or "RPATH" in ln]:
            assert all(part.startswith("$ORIGIN") for part in runpath.split(":")), (p.name, runpath)


@pytest.mark.parametrize("kind", ["fp32", "int8"])
def test_outputs_match_the_host_runtime_under_qemu_without_a_sysroot(moved, models, kind, tmp_path):
    x = np.random.default_rng(12).standard_normal((1, 3, 16, 16)).astype(np.float32)
    shutil.copy(models[kind], moved / "m.pte")
    (moved / "in.bin").write_bytes(x.tobytes())
    proc = on_phone(moved, "--model", "m.pte", "--inputs", "in.bin", "--outputs", "out.bin", "--threads", 1,
                    "--json", *quick("--iterations", 3))
    result = json.loads(proc.stdout)
    assert result["runner"] == "native" and len(result["samples_ns"]) == 3
    arm = np.frombuffer((moved / "out.bin").read_bytes(), dtype=np.float32).reshape(1, 5)
    host = python_runtime(models[kind], x)
    # fp32: NEON and AVX sum in a different order, so rounding; int8: the same integer arithmetic and
    # requantization, so at most one output quantum (this net's output scale is well above 1e-3).
    np.testing.assert_allclose(arm, host, rtol=0, atol=1e-5 if kind == "fp32" else 1e-3)


def test_input_sets_give_the_outputs_of_every_set(moved, models):
    xs = np.random.default_rng(13).standard_normal((3, 1, 3, 16, 16)).astype(np.float32)
    shutil.copy(models["fp32"], moved / "m.pte")
    (moved / "sets.bin").write_bytes(xs.tobytes())
    on_phone(moved, "--model", "m.pte", "--inputs", "sets.bin", "--input-sets", 3, "--outputs", "sets.out",
             "--json", *quick("--iterations", 1))
    arm = np.frombuffer((moved / "sets.out").read_bytes(), dtype=np.float32).reshape(3, 1, 5)
    for k in range(3):
        np.testing.assert_allclose(arm[k], python_runtime(models["fp32"], xs[k]), rtol=0, atol=1e-5)


def test_a_bundle_missing_a_library_is_refused_before_any_push(phone_runner, tmp_path):
    from qbench.devices.host import HostDevice
    from qbench.runners.native_runner import NativeRunner

    broken = tmp_path / "bundle"
    shutil.copytree(phone_runner.parent, broken)
    (broken / "libstdc++.so.6").unlink()
    runner = NativeRunner(broken / "qbench_runner")
    assert runner.bundled and runner.flavour == "android-bundle"
    with pytest.raises(QbenchError) as err:
        runner.setup(HostDevice("phone", tmp_path / "work"))
    text = str(err.value)
    assert "lacks libstdc++.so.6" in text and "qbench runner build --target android-arm64-v8a --force" in text
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_the_ndk_build_stays_an_option(tmp_path, monkeypatch):
    monkeypatch.setenv("QBENCH_ANDROID_RUNNER", "ndk")
    for var in ("ANDROID_NDK", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT"):
        monkeypatch.delenv(var, raising=False)
    assert find_runner("android-arm64-v8a", tmp_path) is None
    with pytest.raises(QbenchError, match="ANDROID_NDK"):
        build_runner("android-arm64-v8a", cache_dir=tmp_path)
    monkeypatch.setenv("QBENCH_ANDROID_RUNNER", "bionic")
    with pytest.raises(QbenchError, match="choose bundle .* or ndk"):
        build_runner("android-arm64-v8a", cache_dir=tmp_path)
