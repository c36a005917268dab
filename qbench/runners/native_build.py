"""Build the native C++ runner (runners/native) with CMake and cache the result.

A build lands in `<cache>/runners/<target>-et<version>-<srchash>/`: the `qbench_runner` binary and,
for the pip-wheel layout, the ExecuTorch shared libraries it needs (RUNPATH=$ORIGIN). That folder is
what a device gets; the key changes whenever the target, the executorch version or the runner sources
change, so a stale binary is never reused.

Targets:
  host               built against the installed executorch wheel (headers, .so files, CMake package).
  linux-aarch64      on an aarch64 machine: like host. Cross (e.g. for a Raspberry Pi, from an x86 farm
                     host): a CMake toolchain file (argument, or $QBENCH_TOOLCHAIN_LINUX_AARCH64), or
                     aarch64-linux-gnu-g++ on PATH (Debian: g++-aarch64-linux-gnu) plus an optional
                     $QBENCH_AARCH64_SYSROOT; and the aarch64 executorch package: $QBENCH_ET_DIR_LINUX_AARCH64,
                     or else the aarch64 wheel of the installed executorch version, fetched once with
                     `pip download` into <cache>/wheels/. Cross-built and run under qemu-aarch64 in the tests.
  android-arm64-v8a  by default the bundle (bundle.py): the linux-aarch64 build plus its own glibc loader
                     and libraries, started as `./ld-linux-aarch64.so.1 --library-path . ./qbench_runner`;
                     no NDK needed. With a toolchain file (--toolchain), QBENCH_ET_DIR_ANDROID_ARM64_V8A
                     set, or QBENCH_ANDROID_RUNNER=ndk: the NDK ($ANDROID_NDK) and $QBENCH_ET_DIR_ANDROID_ARM64_V8A = the install prefix of
                     ExecuTorch built from source for Android (there is no Android wheel).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from qbench.devices.targets import ANDROID_ARM64, HOST_TARGET, LINUX_AARCH64, RUNNER_TARGETS
from qbench.errors import QbenchError
from qbench.runners import bundle

TARGETS = RUNNER_TARGETS
BINARY = "qbench_runner"
SOURCE_DIR = Path(__file__).parent / "native"
MIN_CMAKE = (3, 24)  # $<LINK_LIBRARY:WHOLE_ARCHIVE,...> for source-built ExecuTorch
DEFAULT_ANDROID_PLATFORM = "android-26"
# lines a person must see without -v (the CLI shows `qbench.announce` at every verbosity but -q)
ANNOUNCE = logging.getLogger("qbench.announce.runner")


# ------------------------------------------------------------------ discovery


def executorch_version() -> str | None:
    try:
        return importlib.metadata.version("executorch")
    except importlib.metadata.PackageNotFoundError:
        return None


def executorch_package_dir() -> Path | None:
    """The installed executorch package folder (found without importing it: importing is slow)."""
    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _config_dir(root: Path) -> Path | None:
    """The folder holding executorch-config.cmake under a wheel package or an install prefix."""
    for sub in ("share/cmake", "lib/cmake/ExecuTorch", "lib/cmake/executorch", "lib64/cmake/ExecuTorch", "."):
        if (root / sub / "executorch-config.cmake").is_file():
            return (root / sub).resolve()
    return None


def _cmake_version() -> tuple[int, ...] | None:
    cmake = shutil.which("cmake")
    if not cmake:
        return None
    out = subprocess.run([cmake, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _cxx_compiler() -> str | None:
    env = os.environ.get("CXX")
    if env:
        return shutil.which(env.split()[0])
    return next((p for c in ("c++", "g++", "clang++") if (p := shutil.which(c))), None)


def can_build() -> tuple[bool, str]:
    """Whether the host runner can be built here, and why not."""
    version = _cmake_version()
    if version is None:
        return False, "cmake is not installed"
    if version < MIN_CMAKE:
        return False, f"cmake {'.'.join(map(str, version))} is too old (need >= {'.'.join(map(str, MIN_CMAKE))})"
    if _cxx_compiler() is None:
        return False, "no C++ compiler found (set CXX or install g++/clang++)"
    pkg = executorch_package_dir()
    if pkg is None:
        return False, "executorch is not installed"
    if _config_dir(pkg) is None:
        return False, f"the executorch package at {pkg} has no CMake package (share/cmake/executorch-config.cmake)"
    if not any((pkg / "lib").glob("libexecutorch.*")):
        return False, f"the executorch package at {pkg} ships no runtime library (lib/libexecutorch.*)"
    return True, f"cmake {'.'.join(map(str, version))}, executorch {executorch_version()} at {pkg}"


# ------------------------------------------------------------------ cache


def source_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(SOURCE_DIR.iterdir()):
        if path.is_file() and (path.suffix in (".cpp", ".h") or path.name == "CMakeLists.txt"):
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def cache_root(cache_dir: Path | None = None) -> Path:
    from qbench.env import cache_root as default_root

    return Path(cache_dir) if cache_dir is not None else default_root()


def runner_dir(target: str, cache_dir: Path | None = None) -> Path:
    _check_target(target)
    version = executorch_version()
    if version is None:
        raise QbenchError("executorch is not installed, so no native runner can be built or found")
    return cache_root(cache_dir) / "runners" / f"{target}-et{version}-{source_hash()}"


def android_flavour(toolchain: Path | None = None) -> str:
    """`bundle` (the default: no NDK) or `ndk`: QBENCH_ANDROID_RUNNER decides when set; otherwise a
    toolchain file, or an NDK-built ExecuTorch in QBENCH_ET_DIR_ANDROID_ARM64_V8A, means the NDK build."""
    choice = os.environ.get("QBENCH_ANDROID_RUNNER", "").strip().lower()
    if choice and choice not in ("bundle", "ndk"):
        raise QbenchError(f"QBENCH_ANDROID_RUNNER={choice!r}: choose bundle (default, no NDK) or ndk")
    if choice:
        return choice
    return "ndk" if toolchain is not None or os.environ.get("QBENCH_ET_DIR_ANDROID_ARM64_V8A") else "bundle"


def bundle_dir(cache_dir: Path | None = None) -> Path:
    """Where the android-arm64-v8a bundle (runners/bundle.py) lives: beside the NDK build's folder."""
    ndk = runner_dir(ANDROID_ARM64, cache_dir)
    return ndk.with_name(ndk.name.replace(ANDROID_ARM64, f"{ANDROID_ARM64}-bundle", 1))


def find_runner(target: str = HOST_TARGET, cache_dir: Path | None = None) -> Path | None:
    """The cached runner binary for this target, executorch version and runner sources, if built."""
    if target == ANDROID_ARM64 and android_flavour() == "bundle":
        try:
            return bundle.find_in(bundle_dir(cache_dir))
        except QbenchError:
            return None
    try:
        binary = runner_dir(target, cache_dir) / BINARY
    except QbenchError:
        return None
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


# ------------------------------------------------------------------ build


def build_runner(
    target: str = HOST_TARGET, toolchain: Path | None = None, cache_dir: Path | None = None, force: bool = False
) -> Path:
    """Build (or reuse) the runner for `target`; return the binary. Its folder is what a device needs."""
    if target == ANDROID_ARM64 and android_flavour(toolchain) == "bundle":
        runner = build_runner(LINUX_AARCH64, cache_dir=cache_dir)
        facts = {"executorch": executorch_version(), "sources": source_hash()}
        return bundle.assemble(runner, bundle_dir(cache_dir), facts, force=force)
    final = runner_dir(target, cache_dir)
    if not force and (found := find_runner(target, cache_dir)):
        return found
    cmake_args = _target_cmake_args(target, toolchain, cache_root(cache_dir))

    final.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # a build takes a minute or more: a line, also without -v, so a log is not silent meanwhile
    ANNOUNCE.info("building the native runner for %s (configure, compile, install; log %s)",
                  target, final.parent / f"{final.name}.log")
    # Build beside the final folder and rename at the end, so an interrupted or concurrent build
    # never leaves a half-written runner under the cache key.
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    log = final.parent / f"{final.name}.log"
    try:
        build, prefix = work / "build", work / "install"
        jobs = str(max(1, os.cpu_count() or 1))
        steps = {
            "configure": ["cmake", "-S", str(SOURCE_DIR), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", *cmake_args],
            "compile": ["cmake", "--build", str(build), "--parallel", jobs],
            "install": ["cmake", "--install", str(build), "--prefix", str(prefix)],
        }
        with open(log, "w") as out:
            for step, cmd in steps.items():
                out.write("$ " + " ".join(cmd) + "\n")
                out.flush()
                proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
                if proc.returncode != 0:
                    raise QbenchError(
                        f"building the native runner for {target} failed ({step}): {_last_error(log)} (full log: {log})"
                    )
        if not (prefix / BINARY).is_file():
            raise QbenchError(f"the native runner build for {target} produced no {BINARY} (log: {log})")
        if force and final.exists():
            shutil.rmtree(final)
        try:
            prefix.rename(final)
        except OSError:
            if not (final / BINARY).is_file():  # lost a race only if the winner left a runner
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ANNOUNCE.info("built the native runner for %s in %.0f s", target, time.monotonic() - started)
    return final / BINARY


def _last_error(log: Path) -> str:
    """The first error in a build log with the two lines after it (CMake puts the cause there)."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    first = next((i for i, ln in enumerate(lines) if re.search(r"error", ln, re.IGNORECASE)), None)
    if first is None:
        return lines[-1][:400] if lines else "no output"
    return " ".join(lines[first : first + 3])[:400]


def build_command(target: str | None) -> str:
    """The command that builds the runner for `target` (None: this host), with what it needs."""
    if target in (None, HOST_TARGET):
        return "qbench runner build"
    needs = " (needs g++-aarch64-linux-gnu; no NDK)" if target == ANDROID_ARM64 else ""
    return f"qbench runner build --target {target}{needs}"


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise QbenchError(f"unknown runner target '{target}' (valid: {', '.join(TARGETS)})")


def _target_cmake_args(target: str, toolchain: Path | None, cache: Path) -> list[str]:
    """CMake arguments for a target, or a QbenchError saying what is missing."""
    _check_target(target)
    ok, reason = can_build()
    if target == HOST_TARGET or (target == LINUX_AARCH64 and _host_is_aarch64_linux() and toolchain is None):
        if not ok:
            raise QbenchError(f"cannot build the native runner: {reason}")
        return [f"-Dexecutorch_DIR={_config_dir(executorch_package_dir())}"]
    if target == LINUX_AARCH64:
        return _linux_aarch64_args(toolchain, cache)
    return _android_args(toolchain)


def _host_is_aarch64_linux() -> bool:
    return platform.system() == "Linux" and platform.machine() in ("aarch64", "arm64")


def _target_et_dir(target: str, what: str, fetch=None) -> Path:
    var = "QBENCH_ET_DIR_" + target.upper().replace("-", "_")
    value = os.environ.get(var)
    version = executorch_version() or "<the exporting version>"
    if not value and fetch is not None:
        value = str(fetch())
    if not value:
        raise QbenchError(f"cannot build the native runner for {target}: set {var} to {what} (executorch {version})")
    config = _config_dir(Path(value))
    if config is None:
        raise QbenchError(f"cannot build the native runner for {target}: {var}={value} has no executorch-config.cmake")
    return config


def _linux_aarch64_args(toolchain: Path | None, cache: Path) -> list[str]:
    toolchain = toolchain or _env_path("QBENCH_TOOLCHAIN_LINUX_AARCH64")
    args: list[str] = []
    if toolchain is None:
        gxx = shutil.which("aarch64-linux-gnu-g++")
        if gxx is None:
            raise QbenchError(
                "cannot build the native runner for linux-aarch64 here: no cross compiler. Install one "
                "(Debian/Ubuntu: apt-get install g++-aarch64-linux-gnu) or give a CMake toolchain file "
                "(--toolchain or QBENCH_TOOLCHAIN_LINUX_AARCH64); or build on the Pi itself "
                "(pip install executorch there, then qbench runner build --target linux-aarch64)"
            )
        args += [
            "-DCMAKE_SYSTEM_NAME=Linux",
            "-DCMAKE_SYSTEM_PROCESSOR=aarch64",
            f"-DCMAKE_CXX_COMPILER={gxx}",
        ]
        if sysroot := os.environ.get("QBENCH_AARCH64_SYSROOT"):
            args.append(f"-DCMAKE_SYSROOT={sysroot}")
    else:
        if not Path(toolchain).is_file():
            raise QbenchError(f"cannot build the native runner for linux-aarch64: no toolchain file {toolchain}")
        args.append(f"-DCMAKE_TOOLCHAIN_FILE={toolchain}")
    et_dir = _target_et_dir(LINUX_AARCH64, "the executorch/ folder of the aarch64 (manylinux) executorch wheel",
                            fetch=lambda: fetch_target_wheel("manylinux_2_28_aarch64", cache))
    return args + [f"-Dexecutorch_DIR={et_dir}"]


def fetch_target_wheel(platform_tag: str, cache: Path) -> Path:
    """The `executorch/` folder (headers, libraries, CMake package) of the installed executorch
    version's wheel for another platform, downloaded once with pip and unpacked into the cache."""
    import sys
    import zipfile

    version = executorch_version()
    if version is None:
        raise QbenchError("executorch is not installed, so its version for the target wheel is unknown")
    dest = cache / "wheels" / f"executorch-{version}-{platform_tag}"
    if _config_dir(dest / "executorch") is not None:
        return dest / "executorch"
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        pyver = f"{sys.version_info.major}{sys.version_info.minor}"
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--platform", platform_tag, "--python-version", pyver, "-d", str(work / "dl"), f"executorch=={version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=900)
        wheels = sorted((work / "dl").glob("executorch-*.whl"))
        if proc.returncode != 0 or not wheels:
            why = (proc.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise QbenchError(f"cannot fetch the executorch {version} wheel for {platform_tag} ({why}); download "
                              f"it yourself and set QBENCH_ET_DIR_LINUX_AARCH64 to its unpacked executorch/ folder")
        with zipfile.ZipFile(wheels[0]) as whl:  # only what a C++ build needs, not the Python package
            whl.extractall(work / "pkg", [n for n in whl.namelist()
                                          if n.startswith(("executorch/lib/", "executorch/share/", "executorch/include/"))])
        try:
            (work / "pkg").rename(dest)
        except OSError:
            if _config_dir(dest / "executorch") is None:  # lost a race only if the winner left a package
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if _config_dir(dest / "executorch") is None:
        raise QbenchError(f"the executorch wheel for {platform_tag} has no CMake package (looked in {dest})")
    return dest / "executorch"


def _android_args(toolchain: Path | None) -> list[str]:
    if toolchain is None:
        ndk = next((os.environ[v] for v in ("ANDROID_NDK", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT") if os.environ.get(v)), None)
        if ndk is None:
            raise QbenchError(
                "cannot build the native runner for android-arm64-v8a: set ANDROID_NDK to an Android NDK "
                "(its build/cmake/android.toolchain.cmake is used), and QBENCH_ET_DIR_ANDROID_ARM64_V8A to an "
                "ExecuTorch install built from source for Android (no Android wheel exists): cmake --preset "
                "android-arm64-v8a -DCMAKE_TOOLCHAIN_FILE=$ANDROID_NDK/build/cmake/android.toolchain.cmake "
                "-DEXECUTORCH_ENABLE_EVENT_TRACER=ON -DCMAKE_INSTALL_PREFIX=<prefix>, then cmake --build ... --target install"
            )
        toolchain = Path(ndk) / "build" / "cmake" / "android.toolchain.cmake"
    if not Path(toolchain).is_file():
        raise QbenchError(f"cannot build the native runner for android-arm64-v8a: no toolchain file {toolchain}")
    et_dir = _target_et_dir(
        ANDROID_ARM64,
        "the install prefix of ExecuTorch built from source with the NDK (XNNPACK, devtools and "
        "EXECUTORCH_ENABLE_EVENT_TRACER=ON); there is no Android wheel",
    )
    return [
        f"-DCMAKE_TOOLCHAIN_FILE={toolchain}",
        "-DANDROID_ABI=arm64-v8a",
        f"-DANDROID_PLATFORM={os.environ.get('QBENCH_ANDROID_PLATFORM', DEFAULT_ANDROID_PLATFORM)}",
        f"-Dexecutorch_DIR={et_dir}",
        # The NDK toolchain confines package lookups to its sysroot; executorch_DIR is given
        # explicitly, so also let its dependencies (flatcc, xnnpack targets) resolve there.
        f"-DCMAKE_FIND_ROOT_PATH={et_dir.parent.parent.parent}",
    ]


def _env_path(var: str) -> Path | None:
    value = os.environ.get(var)
    return Path(value) if value else None


# ------------------------------------------------------------------ inputs


def default_fill(dtype: str, shape):
    """The runner's input when no --inputs file is given, mirrored in numpy.

    Element i (C order) takes v = (i * 7919) % 251; floats get v/250 - 0.5, int8 v - 125, other
    integers v, bool v & 1. A Python runner can use this to feed exactly what the native one feeds.
    """
    import numpy as np

    n = int(np.prod(shape)) if len(shape) else 1
    v = (np.arange(n, dtype=np.int64) * 7919) % 251
    if dtype in ("float32", "float64"):
        out = (v.astype(dtype) / np.asarray(250.0, dtype=dtype) - np.asarray(0.5, dtype=dtype)).astype(dtype)
    elif dtype == "int8":
        out = (v - 125).astype(np.int8)
    elif dtype == "bool":
        out = (v & 1).astype(bool)
    elif dtype in ("uint8", "int16", "int32", "int64"):
        out = v.astype(dtype)
    else:
        raise QbenchError(f"no default fill for dtype {dtype}; pass an inputs file")
    return out.reshape(tuple(shape))
