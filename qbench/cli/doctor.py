"""`qbench doctor DEVICE`: is this device ready to run a suite? ✓/✗ lines with fixes; exit 0 ready, 1 not."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qbench import strict_json
from qbench.errors import ExitCode


def add_parser(sub) -> None:
    p = sub.add_parser(
        "doctor", help="check that a device can run a suite (✓/✗ with fixes)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Connect to a device profile and check, in order: reachable and authorised, ABI, CPU clusters,\n"
                    "governors and frequencies, thermal zones vs the profile's, free space and exec permission in the\n"
                    "workdir, the runner (built, pushed, started, a tiny model whose outputs match the host's), the\n"
                    "power source, battery, root, and clock stability. Lines marked ! are informational.",
        epilog="exit codes: 0 the device can run a suite · 1 it cannot (see the ✗ lines) · 2 usage error\n\n"
               "examples:\n  qbench doctor host\n  qbench doctor pixel8\n  qbench doctor rpi5 --json")
    p.add_argument("device", metavar="DEVICE", help="a device profile name (device_profiles/NAME.yaml, or host)")
    p.add_argument("--json", action="store_true", help="one JSON document: device, ready, checks")
    p.add_argument("--profiles", type=Path, default=None, help="a device_profiles folder (default: found from cwd)")
    p.add_argument("--no-run", action="store_true", help="skip building, pushing and running the runner")


def cmd_doctor(args) -> int:
    from qbench.pipeline.doctor import check_device, ready, to_json
    from qbench.devices.profiles import load_profile

    base = args.profiles.resolve().parent if args.profiles else None
    profile = load_profile(args.device, base)  # an unknown profile is a usage error (exit 2)
    checks = check_device(profile, base, run_model=not args.no_run)
    ok = ready(checks)
    if args.json:
        sys.stdout.write(strict_json.dumps(to_json(profile.name, checks), indent=1, default=str) + "\n")
    else:
        for c in checks:
            print(c.line())
        print(f"{profile.name}: " + ("ready to run a suite" if ok else "not ready: fix the ✗ lines above"))
    return ExitCode.OK if ok else ExitCode.CELLS_FAILED


COMMANDS = {"doctor": cmd_doctor}
