"""The phone runner without the NDK: the linux-aarch64 runner plus its own glibc, in one folder.

An Android kernel is an arm64 Linux kernel, and the shell user may execute files under
/data/local/tmp. So the runner cross-built against the aarch64 executorch wheel (glibc, not bionic)
runs on a phone when it is started through the glibc loader shipped beside it:

    ./ld-linux-aarch64.so.1 --library-path . ./qbench_runner --model M.pte --json     (in the folder)

The folder holds the runner, the ExecuTorch libraries, and the loader and libraries the runner needs
from the cross toolchain's sysroot (Debian: /usr/aarch64-linux-gnu/lib, from g++-aarch64-linux-gnu).
Nothing in it names an absolute path (RUNPATH is $ORIGIN, the loader is started explicitly), so it
can be copied anywhere. `bundle.json` lists every file with its sha256 and the launch line.

Built into `<cache>/runners/android-arm64-v8a-bundle-et<version>-<srchash>/`, reused until the
executorch version or the runner sources change. The NDK build (bionic, static ExecuTorch) stays
available: `qbench runner build --target android-arm64-v8a --toolchain FILE` or QBENCH_ANDROID_RUNNER=ndk.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from qbench.devices.targets import ANDROID_ARM64
from qbench.errors import QbenchError

LOADER = "ld-linux-aarch64.so.1"
MANIFEST = "bundle.json"
DEFAULT_SYSROOT_LIBS = ("/usr/aarch64-linux-gnu/lib", "/usr/aarch64-linux-gnu/lib64")
# What the issue measured: glibc's loader and the libraries a C++ program and ExecuTorch pull in.
# Computed from the ELF files' NEEDED entries; these few are always taken (dlopen'ed or stubs).
ALWAYS = (LOADER, "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1")


def launch_argv(folder: str = ".") -> list[str]:
    """The contract's launch line, relative to the bundle's folder (`.` when run inside it)."""
    return [f"{folder}/{LOADER}", "--library-path", folder, f"{folder}/qbench_runner"]


def find_in(folder: Path) -> Path | None:
    """The bundle's runner binary in this folder, if the bundle is complete."""
    return folder / "qbench_runner" if (folder / MANIFEST).is_file() and (folder / "qbench_runner").is_file() else None


def sysroot_lib_dirs() -> list[Path]:
    """Where the aarch64 glibc lives: $QBENCH_AARCH64_SYSROOT/{lib,usr/lib,...} or Debian's cross folders."""
    root = os.environ.get("QBENCH_AARCH64_SYSROOT")
    if root:
        cands = [Path(root) / p for p in ("lib", "lib64", "usr/lib", "lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu")]
    else:
        cands = [Path(p) for p in DEFAULT_SYSROOT_LIBS]
    return [p for p in cands if p.is_dir()]


def needed(path: Path) -> list[str]:
    """The NEEDED entries of an ELF file (readelf from binutils, which the cross g++ brings)."""
    readelf = shutil.which("aarch64-linux-gnu-readelf") or shutil.which("readelf")
    if readelf is None:
        raise QbenchError("cannot build the android-arm64-v8a bundle: no readelf (Debian: apt-get install binutils)")
    out = subprocess.run([readelf, "-d", str(path)], capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def missing_libraries(folder: Path) -> list[tuple[str, str]]:
    """(file, library) for every NEEDED library no file in the folder provides."""
    have = {p.name for p in folder.iterdir()}
    gaps = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and (p.name == "qbench_runner" or ".so" in p.name) and p.name != LOADER:
            gaps += [(p.name, lib) for lib in needed(p) if lib not in have]
    return gaps


def check_bundle(folder: Path) -> None:
    """A QbenchError naming the first gap, so a hand-assembled or damaged bundle fails before a push."""
    folder = Path(folder)
    if not (folder / LOADER).is_file():
        raise QbenchError(f"the runner bundle {folder} has no {LOADER} (the glibc loader it starts through); "
                          f"rebuild it: qbench runner build --target android-arm64-v8a --force")
    gaps = missing_libraries(folder)
    if gaps:
        listed = ", ".join(sorted({lib for _, lib in gaps}))
        raise QbenchError(f"the runner bundle {folder} lacks {listed} (needed by {gaps[0][0]}); rebuild it: "
                          f"qbench runner build --target android-arm64-v8a --force")


def assemble(runner: Path, final: Path, facts: dict, force: bool = False) -> Path:
    """The bundle in `final` around the cross-built linux-aarch64 `runner`; return its runner binary.
    `facts` (executorch version, runner sources) go into the manifest. native_build.py calls this."""
    from qbench.hashing import file_sha256

    if not force and (found := find_in(final)):
        return found
    libdirs = sysroot_lib_dirs()
    if not libdirs:
        raise QbenchError("cannot build the android-arm64-v8a bundle: no aarch64 glibc found (looked in "
                          f"{', '.join(DEFAULT_SYSROOT_LIBS)}); install it (Debian: apt-get install "
                          "g++-aarch64-linux-gnu, which brings libc6-arm64-cross) or set QBENCH_AARCH64_SYSROOT")
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        work.chmod(0o755)
        for f in runner.parent.iterdir():
            shutil.copy2(f, work / f.name)
        todo = [*ALWAYS]
        for f in list(work.iterdir()):
            todo += needed(f)
        while todo:
            lib = todo.pop()
            if (work / lib).exists():
                continue
            src = next((d / lib for d in libdirs if (d / lib).exists()), None)
            if src is None:
                continue  # reported by check_bundle below, with who needs it
            shutil.copyfile(src.resolve(), work / lib)  # the real file, not a symlink into the sysroot
            os.chmod(work / lib, 0o755)
            todo += needed(work / lib)
        check_bundle(work)
        files = {p.name: file_sha256(p) for p in sorted(work.iterdir())}
        (work / MANIFEST).write_text(json.dumps({
            "flavour": "bundle", "target": ANDROID_ARM64, "abi": "arm64-v8a",
            "launch": launch_argv("."), **facts, "files": files,
        }, indent=1))
        if force and final.exists():
            shutil.rmtree(final)
        try:
            work.rename(final)
        except OSError:
            if find_in(final) is None:  # lost a race only if the winner left a bundle
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final / "qbench_runner"


def is_bundle(binary: Path) -> bool:
    return (Path(binary).parent / MANIFEST).is_file() and (Path(binary).parent / LOADER).is_file()


def bundle_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())
