"""`qbench devices`, `qbench runner build`, `qbench ops`: the smaller commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qbench import strict_json
from qbench.devices.targets import HOST_TARGET, RUNNER_TARGETS
from qbench.errors import ExitCode, UsageError
from qbench.results.backends import DB_HELP, db_target
from qbench.results.runref import RUN_REF_HELP
from qbench.text import cell_label


def add_parsers(sub) -> None:
    dev = sub.add_parser("devices", help="list reachable devices (adb, ssh profiles, host)",
                         description="One line per device: what adb sees, every ssh/adb profile in device_profiles/, "
                                     "and this host. Unreachable profiles say why.")
    dev.add_argument("names", nargs="*", metavar="DEVICE",
                     help="only these profiles; exit 1 when one of them is unreachable (for scripts)")
    dev.add_argument("--json", action="store_true", help="machine-readable list")
    dev.add_argument("--profiles", type=Path, default=None, help="a device_profiles folder (default: found from cwd)")
    dev.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each device")

    run = sub.add_parser("runner", help="build the native C++ runner for a target",
                         description="Builds qbench's native runner against the installed ExecuTorch into a cache "
                                     "keyed by target and executorch version; later builds reuse it.")
    rsub = run.add_subparsers(dest="runner_command", metavar="ACTION", required=True)
    build = rsub.add_parser(
        "build", help="build (or find) the runner", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build (or find in the cache) the native runner for a target and print its path; the folder\n"
                    "beside it (binary + ExecuTorch libraries) is what qbench pushes to a device.",
        epilog="targets:\n"
               "  host               this machine, against the installed executorch wheel\n"
               "  linux-aarch64      a Raspberry Pi or other aarch64 board: natively on one, or cross-compiled\n"
               "                     with aarch64-linux-gnu-g++ (Debian: g++-aarch64-linux-gnu); the aarch64\n"
               "                     executorch wheel of the same version is fetched once with pip download\n"
               "                     (or set QBENCH_ET_DIR_LINUX_AARCH64 to an unpacked executorch/ folder)\n"
               "  android-arm64-v8a  a phone. Default: the bundle, no NDK needed: the linux-aarch64 build plus its\n"
               "                     own glibc loader and libraries in one relocatable folder (~17 MB), started\n"
               "                     on the phone as ./ld-linux-aarch64.so.1 --library-path . ./qbench_runner.\n"
               "                     Needs only g++-aarch64-linux-gnu (it brings the aarch64 glibc). Use this.\n"
               "                     The NDK build (bionic, ExecuTorch built from source) when you have one:\n"
               "                     --toolchain FILE, or QBENCH_ET_DIR_ANDROID_ARM64_V8A set (with ANDROID_NDK),\n"
               "                     or QBENCH_ANDROID_RUNNER=ndk (=bundle forces the bundle). Each cell\n"
               "                     records which flavour measured it (runner_flavour).\n"
               "\nexamples:\n"
               "  qbench runner build\n"
               "  qbench runner build --target linux-aarch64\n"
               "  qbench runner build --target android-arm64-v8a          # the bundle; then: qbench doctor pixel8\n"
               "  qbench runner build --target android-arm64-v8a --toolchain $ANDROID_NDK/build/cmake/android.toolchain.cmake")
    build.add_argument("--target", default=HOST_TARGET, choices=list(RUNNER_TARGETS),
                       help="where the runner will run (default: host)")
    build.add_argument("--toolchain", type=Path, help="a CMake toolchain file (cross builds; for android-arm64-v8a "
                                                      "it selects the NDK build instead of the bundle)")
    build.add_argument("--force", action="store_true", help="rebuild even when a cached build exists")

    ops = sub.add_parser("ops", help="top operators of a profiled run (benchmark.profile_ops: true)")
    ops.add_argument("run_id", metavar="RUN_ID", help=RUN_REF_HELP)
    ops.add_argument("--cell", help="MODEL/RECIPE or MODEL/RECIPE@DEVICE (default: every profiled cell)")
    ops.add_argument("--top", type=int, default=10)
    ops.add_argument("--db", type=db_target, default=None, help=DB_HELP)
    ops.add_argument("--json", action="store_true")


def cmd_runner(args) -> int:
    from qbench.runners.native_build import build_runner

    path = build_runner(args.target, toolchain=args.toolchain, force=args.force)
    print(path)
    return ExitCode.OK


def cmd_devices(args) -> int:
    from qbench.devices.discovery import discover

    found = discover(args.profiles, timeout=args.timeout, names=args.names or None)
    # a device named on the command line that cannot be reached is a failure a script can see
    code = ExitCode.CELLS_FAILED if args.names and any(d["state"] != "ok" for d in found) else ExitCode.OK
    if args.json:
        sys.stdout.write(strict_json.dumps(found, indent=1, default=str) + "\n")
        return code
    for d in found:
        state = d["state"] if d["state"] != "ok" else ""
        print(f"{d['name']:<16} {d['transport']:<5} {d['summary']}{('  ' + state) if state else ''}")
    if code:
        print("unreachable: " + ", ".join(d["name"] for d in found if d["state"] != "ok")
              + " (`qbench doctor NAME` says what to fix)", file=sys.stderr)
    return code


def cmd_ops(args) -> int:
    from qbench.results.frame import default_db
    from qbench.results.runref import resolve_run
    from qbench.results.store import open_store

    store = open_store(args.db or default_db(), readonly=True)
    try:
        rows = _profiled_cells(store, resolve_run(store, args.run_id), args)
    finally:
        store.close()
    if args.json:
        sys.stdout.write(strict_json.dumps(rows, indent=1) + "\n")
        return ExitCode.OK
    for r in rows:
        print(r["cell"])
        for o in r["ops"]:
            where = o["delegate"] or "portable kernel"
            print(f"  {o['share'] * 100:5.1f}%  {o['total_ms']:8.3f} ms  ×{o['count']:<3} {o['name']}  [{where}]")
    return ExitCode.OK


def _profiled_cells(store, run_id: str, args) -> list[dict]:
    rows = []
    for c in store.cells(run_id):
        label = cell_label(c["model"], c["recipe"], c["device"])
        if args.cell and args.cell not in (label, label.split("@")[0]):
            continue
        ops = store.db.execute("SELECT name, kind, delegate, count, total_ms, median_ms, share FROM ops "
                               "WHERE cell_id=? ORDER BY total_ms DESC LIMIT ?", (c["cell_id"], args.top)).fetchall()
        if ops:
            rows.append({"cell": label, "ops": [dict(o) for o in ops]})
    if not rows:
        raise UsageError(f"no per-operator profile in run {run_id}"
                         + (f" for {args.cell}" if args.cell else "") + " (set benchmark.profile_ops: true)")
    return rows


COMMANDS = {"devices": cmd_devices, "runner": cmd_runner, "ops": cmd_ops}
