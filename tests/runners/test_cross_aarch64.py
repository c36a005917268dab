"""The linux-aarch64 runner (a Raspberry Pi's): cross-compiled here with Debian's aarch64 g++ against
the aarch64 executorch wheel (fetched by qbench), then run under qemu-aarch64 user emulation, so the
ARM build, its XNNPACK kernels and the wheel's ARM libraries really execute. Outputs are compared
with ExecuTorch's Python runtime on this x86 host."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from qbench.runners.native_build import build_runner
from tests.runners.test_native_runner import python_runtime, quick, shared_cache

SYSROOT = "/usr/aarch64-linux-gnu"  # Debian's libc6-arm64-cross, what the cross g++ links against

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("aarch64-linux-gnu-g++") is None, reason="needs g++-aarch64-linux-gnu"),
    pytest.mark.skipif(shutil.which("qemu-aarch64") is None, reason="needs qemu-user"),
]


@pytest.fixture(scope="module")
def arm_runner(tmp_path_factory):
    return build_runner("linux-aarch64", cache_dir=shared_cache(tmp_path_factory))


def on_arm(binary, *args, cpu: str = "cortex-a76") -> subprocess.CompletedProcess:
    proc = subprocess.run(["qemu-aarch64", "-cpu", cpu, "-L", SYSROOT, str(binary), *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_the_build_is_an_aarch64_folder_a_pi_can_take(arm_runner):
    head = arm_runner.read_bytes()[:20]
    assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183  # EM_AARCH64
    libs = {p.name for p in arm_runner.parent.glob("*.so")}
    assert {"libexecutorch.so", "libexecutorch_backend_xnnpack.so"} <= libs
    assert arm_runner.parent.name.startswith("linux-aarch64-et")


# The Pi 5's and the Pi 4's cores. (qemu's default "max" CPU, with SVE2/I8MM, gave wrong int8
# outputs from XNNPACK under qemu 7.2: an emulator or kernel-selection issue no Pi has.)
@pytest.mark.parametrize("cpu", ["cortex-a76", "cortex-a72"])
@pytest.mark.parametrize("kind", ["fp32", "int8"])
def test_arm_outputs_match_the_host_runtime(arm_runner, models, kind, cpu, tmp_path):
    x = np.random.default_rng(11).standard_normal((1, 3, 16, 16)).astype(np.float32)
    inputs, outputs = tmp_path / "in.bin", tmp_path / "out.bin"
    inputs.write_bytes(x.tobytes())
    proc = on_arm(arm_runner, "--model", models[kind], "--inputs", inputs, "--outputs", outputs,
                  "--threads", 1, "--json", *quick("--iterations", 3), cpu=cpu)
    result = json.loads(proc.stdout)
    assert result["runner"] == "native" and len(result["samples_ns"]) == 3 and result["arena_bytes"] > 0
    arm = np.frombuffer(outputs.read_bytes(), dtype=np.float32).reshape(1, 5)
    host = python_runtime(models[kind], x)
    # Different kernels (NEON vs AVX) sum in a different order: fp32 agrees to rounding, int8
    # (integer arithmetic, the same requantization) to within a rounding step of the output.
    np.testing.assert_allclose(arm, host, rtol=0, atol=1e-5 if kind == "fp32" else 1e-3)
