"""Is a device ready to run a suite? One checklist a new user can act on, each line ✓ or ✗ with the fix.

`check_device(profile)` returns the checks; `ready(checks)` is the verdict (every required check
passed). The farm worker (`qbench worker`) can call it before advertising a device; `qbench doctor`
prints it. Informational checks (governor, battery, root, clock stability) never make a device
unready, they say what the numbers will be worth.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

MIN_FREE_BYTES = 200 * 2**20  # the runner bundle (~17 MB) plus a few models

_DF_SCRIPT = r"""mkdir -p "$1" 2>/dev/null; df -k "$1" 2>/dev/null | tail -n 1"""
# $1 workdir: a script written there and started from there (mounted noexec -> "Permission denied")
_EXEC_SCRIPT = r"""
f="$1/.qbench-exec-check"
mkdir -p "$1" && printf '#!%s\necho qbench-exec-ok\n' "$(command -v sh)" > "$f" && chmod 700 "$f" || exit 3
"$f"; rc=$?; rm -f "$f"; exit $rc
"""
_BATTERY_SCRIPT = r"""
d=${1:-/sys/class/power_supply/battery}
printf '%s\t%s\t%s\n' "$(cat "$d/status" 2>/dev/null)" "$(cat "$d/capacity" 2>/dev/null)" "$(id -u 2>/dev/null)"
"""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    required: bool = True
    data: dict = field(default_factory=dict)

    def line(self) -> str:
        mark = "✓" if self.ok else ("✗" if self.required else "!")
        text = f"{mark} {self.name}: {self.detail}"
        return text + (f"\n    fix: {self.fix}" if self.fix and not self.ok else "")


def ready(checks: list[Check]) -> bool:
    return all(c.ok for c in checks if c.required)


def check_device(profile, suite_dir: Path | None = None, *, run_model: bool = True,
                 min_free_bytes: int = MIN_FREE_BYTES, stability_seconds: float = 2.0) -> list[Check]:
    """Every check that applies to the profile's device; stops early when it cannot be reached."""
    from qbench.devices.profiles import open_device

    checks: list[Check] = []
    try:
        device = open_device(profile, suite_dir)
        info = device.info()
    except Exception as exc:
        checks.append(Check("reachable", False, _first(exc), _reach_fix(profile)))
        return checks
    try:
        checks.append(Check("reachable", True, _summary(info), data={"info": asdict(info)}))
        checks += _checks(device, profile, info, run_model, min_free_bytes, stability_seconds)
    finally:
        try:
            device.close()
        except Exception:
            pass
    return checks


def _checks(device, profile, info, run_model, min_free_bytes, stability_seconds) -> list[Check]:
    from qbench.devices import clusters as cl

    out = [_abi(device, profile, info)]
    cores = cl.read(device)
    named = cl.name_clusters(cores)
    out.append(_clusters(profile, named))
    out.append(_governors(cores))
    out.append(_thermal(device, profile))
    out.append(_space(device, min_free_bytes))
    execs = _exec(device)
    out.append(execs)
    if run_model and execs.ok and out[0].ok:
        out.append(_runner(device, profile))
    out.append(_power(device, profile))
    out += _battery_and_root(device, profile)
    out.append(_stability(device, stability_seconds))
    return out


# ------------------------------------------------------------------ the checks


def _abi(device, profile, info) -> Check:
    from qbench.runners.native_runner import check_abi

    from qbench.devices.transports import transport_of

    target = profile.runner.target or transport_of(profile).fixed_target
    detail = f"{info.abi or 'unknown'}" + (f" (runner target {target})" if target else "")
    if target and not profile.runner.launcher:
        try:
            check_abi(device, target)
        except Exception as exc:
            return Check("ABI", False, _first(exc).split(": ", 2)[-1],
                         "use a profile whose runner.target matches the device, or runner.kind: python")
    return Check("ABI", True, detail)


def _clusters(profile, named) -> Check:
    from qbench.devices.clusters import describe

    detail = describe(named) or "no cpu_capacity or cpufreq under /sys/devices/system/cpu"
    if isinstance(profile.affinity, str) and profile.affinity not in named:
        return Check("CPU clusters", False, f"{detail}; the profile asks for affinity: {profile.affinity}",
                     f"use one of: {', '.join(named) or 'a core list'} in the profile's affinity",
                     data={"clusters": named})
    return Check("CPU clusters", True, detail, required=False, data={"clusters": named})


def _governors(cores) -> Check:
    govs = sorted({c["governor"] for c in cores.values() if c["governor"]})
    freqs = [f"cpu{n} {c['cur_khz'] / 1e6:.2f}" for n, c in cores.items() if c["cur_khz"]]
    detail = f"governor {', '.join(govs) or 'unknown'}; now (GHz): {', '.join(freqs) or 'unreadable'}"
    return Check("governors", True, detail, required=False,
                 data={"governors": govs, "cur_khz": {n: c["cur_khz"] for n, c in cores.items()}})


def _thermal(device, profile) -> Check:
    try:
        zones = device.thermal()
    except Exception as exc:
        return Check("thermal zones", False, _first(exc), "check that /sys/class/thermal is readable", required=False)
    found = ", ".join(f"{k} {v:.0f}°C" for k, v in list(zones.items())[:8]) or "none"
    wanted = profile.thermal_zones
    if wanted and not any(w in k for w in wanted for k in zones):
        return Check("thermal zones", False, f"found {found}; the profile wants {', '.join(wanted)}",
                     f"set thermal_zones in the profile to names found on the device ({', '.join(list(zones)[:6]) or 'none'})"
                     ", or null for all", data={"zones": zones})
    return Check("thermal zones", True, f"{len(zones)} found ({found})", required=False, data={"zones": zones})


def _space(device, min_free_bytes: int) -> Check:
    res = device.run(["sh", "-c", _DF_SCRIPT, "qbench", device.workdir], timeout=30)
    fields = res.stdout.split()
    free = int(fields[3]) * 1024 if len(fields) >= 4 and fields[3].isdigit() else None
    if free is None:
        return Check("free space", False, f"cannot read free space of {device.workdir} ({res.last_error_line()})",
                     "check that the workdir exists and `df` works on the device")
    detail = f"{free / 2**20:.0f} MiB free in {device.workdir}"
    if free < min_free_bytes:
        return Check("free space", False, detail + f" (need {min_free_bytes / 2**20:.0f} MiB)",
                     "free space on the device (delete old files under the workdir, or `qbench` caches), "
                     "or point the profile's workdir at a larger partition", data={"free_bytes": free})
    return Check("free space", True, detail, data={"free_bytes": free})


def _exec(device) -> Check:
    res = device.run(["sh", "-c", _EXEC_SCRIPT, "qbench", device.workdir], timeout=30)
    if res.returncode == 0 and "qbench-exec-ok" in res.stdout:
        return Check("workdir executes", True, f"programs can run from {device.workdir}")
    return Check("workdir executes", False,
                 f"{device.workdir} does not let programs run ({res.last_error_line()}): mounted noexec?",
                 "set the profile's workdir to a folder that allows execution: on a phone /data/local/tmp/qbench "
                 "(/sdcard is always noexec)")


def _runner(device, profile) -> Check:
    """Build/find, push and start the runner, run a tiny model, compare its outputs with the host's."""
    from qbench.runners.choice import select_runner

    try:
        runner, why = select_runner(device, profile, "auto")
        runner.setup(device)
        pte, x, expected = _tiny_model()
        program = device.push(pte, "qbench-doctor.pte")
        inputs = device.push(x, "qbench-doctor.in")
        from qbench.runners.base import TrialSettings

        settings = TrialSettings(warmup=0, warmup_seconds=0.0, iterations=1, min_seconds=0.0, max_iterations=1,
                                 threads=1, affinity=None, timeout=120)
        remote_out = f"{device.workdir.rstrip('/')}/qbench-doctor.out"
        report = runner.parse(device.run(runner.argv(program, settings, inputs=inputs, outputs=remote_out), 180),
                              settings)
        import tempfile

        import numpy as np

        with tempfile.TemporaryDirectory() as tmp:
            device.pull(remote_out, Path(tmp) / "out")
            got = np.frombuffer((Path(tmp) / "out").read_bytes(), dtype=np.float32)
        err = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
    except Exception as exc:
        return Check("runner", False, _first(exc), _runner_fix(profile))
    if err > 1e-4:
        return Check("runner", False, f"{why}: a tiny model's outputs differ from the host's by {err:.3g}",
                     "the runner build or the device's CPU computes wrong results: rebuild with --force; under "
                     "qemu pass -cpu cortex-a76 (the default `max` CPU is wrong for int8)")
    return Check("runner", True, f"{why}; started, ran a tiny model ({report['load_ms'] + report['method_init_ms']:.1f} "
                                 f"ms load+init), outputs match the host's (max diff {err:.1g})",
                 data={"runner": why, "flavour": getattr(runner, "flavour", runner.name)})


def _tiny_model():
    """A tiny fp32 linear .pte (cached), an input and the host runtime's output for it."""
    import numpy as np

    from qbench.export.cache import default_cache_dir

    folder = default_cache_dir() / "doctor"
    pte, x_path, ref = folder / "tiny.pte", folder / "tiny.in", folder / "tiny.out.npy"
    if not (pte.is_file() and x_path.is_file() and ref.is_file()):
        import torch

        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        folder.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).eval()
        x = torch.randn(1, 16)
        prog = to_edge_transform_and_lower(torch.export.export(model, (x,)), partitioner=[XnnpackPartitioner()])
        pte.write_bytes(prog.to_executorch().buffer)
        x_path.write_bytes(x.numpy().tobytes())
        with torch.no_grad():
            np.save(ref, model(x).numpy().ravel())
    return pte, x_path, np.load(ref)


def _power(device, profile) -> Check:
    from qbench.pipeline.power import PowerMeter

    kind = profile.power.kind
    if kind == "none":
        return Check("power source", True, "none configured (power: {kind: none}): no energy figures",
                     required=False)

    class _Session:  # what PowerMeter needs from a run's device session
        name, device_ = profile.name, device

        @property
        def device(self):
            return self.device_

    meter = PowerMeter(_Session(), profile.power)
    try:
        meter.probe()
    except Exception as exc:
        meter.unavailable = _first(exc)
    if meter.unavailable:
        return Check("power source", False, f"{kind}: {meter.unavailable}",
                     "see the README's power section for this source, or set power: {kind: none}", required=False)
    return Check("power source", True, f"{kind} readable", required=False)


def _battery_and_root(device, profile) -> list[Check]:
    opts = dict(profile.power.model_extra or {})
    res = device.run(["sh", "-c", _BATTERY_SCRIPT, "qbench", opts.get("supply_dir", "")], timeout=30)
    parts = (res.stdout.strip("\r\n").split("\t") + ["", "", ""])[:3]
    status, capacity, uid = (p.strip() for p in parts)
    out = []
    if status or capacity:
        charging = status.lower() in ("charging", "full")
        out.append(Check("battery", True, f"{status or 'unknown'}, {capacity or '?'}%"
                         + (" (charging: battery power readings would be wrong; unplug or disable USB charging)"
                            if charging and profile.power.kind == "android-battery" else ""), required=False))
    else:
        out.append(Check("battery", True, "none (mains powered)", required=False))
    out.append(Check("root", True, "yes (uid 0)" if uid == "0" else f"no (uid {uid or '?'}): fine for latency; "
                     "governors and some power rails need root", required=False))
    return out


def _stability(device, seconds: float) -> Check:
    """Current core frequencies sampled a few times: do the clocks hold still while idle?"""
    from qbench.devices.clusters import read

    samples = []
    deadline = time.monotonic() + seconds
    while True:
        samples.append({n: c["cur_khz"] for n, c in read(device).items() if c["cur_khz"]})
        if time.monotonic() >= deadline or len(samples) >= 5:
            break
        time.sleep(seconds / 4)
    changed = sorted({n for s in samples[1:] for n, f in s.items() if samples[0].get(n) != f})
    if not samples[0]:
        return Check("clock stability", True, "core frequencies unreadable (a VM?)", required=False)
    if changed:
        return Check("clock stability", True, f"frequencies of cpu{', cpu'.join(map(str, changed))} changed over "
                     f"{seconds:g} s: expect more spread; a fixed governor (root) steadies them", required=False)
    return Check("clock stability", True, f"steady over {seconds:g} s ({len(samples)} readings)", required=False)


# ------------------------------------------------------------------ text


def _first(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _summary(info) -> str:
    from qbench.devices.discovery import one_line

    return f"{info.transport}: {one_line(info)}"


def _reach_fix(profile) -> str:
    from qbench.devices.transports import transport_of

    return transport_of(profile).reach_fix(profile.name, profile.connection)


def _runner_fix(profile) -> str:
    from qbench.runners.native_build import build_command

    return build_command(profile.runner.target)


def to_json(profile_name: str, checks: list[Check]) -> dict:
    return {"device": profile_name, "ready": ready(checks),
            "checks": [{"name": c.name, "ok": c.ok, "required": c.required, "detail": c.detail, "fix": c.fix,
                        **({"data": c.data} if c.data else {})} for c in checks]}
