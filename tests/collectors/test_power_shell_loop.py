"""Real runs of the on-device snippets in real shells against fake sysfs trees, then parsed.

/bin/sh here is dash (Raspberry Pi OS, Debian). mksh is Android's /system/bin/sh and busybox ash is
common on embedded boards: those runs happen when the shell is installed, and are skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from qbench.collectors.power import PowerError, get_power_source, measure

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "power"


def shell_params():
    out = [pytest.param("/bin/sh", id="sh(dash)")]
    for name, argv in (("mksh", "mksh"), ("busybox-ash", "busybox sh")):
        found = shutil.which(argv.split()[0])
        marks = [] if found else [pytest.mark.skip(reason=f"{argv.split()[0]} not installed")]
        out.append(
            pytest.param(
                f"{found} {' '.join(argv.split()[1:])}".strip() if found else argv, id=name, marks=marks
            )
        )
    return out


def run_sh(
    snippet: str, shell: str = "/bin/sh", env: dict | None = None, timeout: float = 20.0
) -> subprocess.CompletedProcess:
    """Exactly how the pipeline runs a snippet: argv `sh -c snippet`."""
    return subprocess.run(
        shell.split() + ["-c", snippet],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def wait_for_lines(path: Path, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and sum(1 for ln in path.read_text().splitlines() if not ln.startswith("#")) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} did not reach {n} data lines in {timeout} s")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


class Loop:
    """Start/stop a sampler and make sure it is stopped even when an assertion fails."""

    def __init__(self, src, log: Path, shell: str, env: dict | None = None):
        self.src, self.log, self.shell, self.env = src, log, shell, env

    def __enter__(self):
        t = time.monotonic()
        res = run_sh(
            self.src.start_command(str(self.log), period_s=0.05, max_seconds=30), self.shell, self.env
        )
        assert res.returncode == 0, res.stderr
        assert time.monotonic() - t < 5, "start_command must return at once (fds detached)"
        self.pid = int(Path(str(self.log) + ".pid").read_text())
        return self

    def mark(self, label: str) -> None:
        res = run_sh(self.src.mark_command(str(self.log), label), self.shell, self.env)
        assert res.returncode == 0, res.stderr

    def __exit__(self, *exc):
        run_sh(self.src.stop_command(str(self.log)), self.shell, self.env)
        deadline = time.monotonic() + 5
        while alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(self.pid), "stop_command did not end the sampler"


def fake_battery(root: Path, current: str, voltage: str = "4000000", status: str = "Discharging") -> Path:
    d = root / "sys/class/power_supply/battery"
    d.mkdir(parents=True, exist_ok=True)
    (d / "current_now").write_text(current + "\n")
    (d / "voltage_now").write_text(voltage + "\n")
    (d / "status").write_text(status + "\n")
    return d


@pytest.mark.parametrize("shell", shell_params())
def test_android_battery_loop_really_runs(tmp_path, shell):
    d = fake_battery(tmp_path, "-1000000")  # 1 A x 4 V = 4 W idle
    src = get_power_source("android-battery", supply_dir=str(d))
    log = tmp_path / "device/qbench/power.log"  # the directory does not exist yet: start makes it
    with Loop(src, log, shell) as loop:
        loop.mark("idle_start")
        wait_for_lines(log, 6)
        loop.mark("run_start")
        (d / "current_now").write_text("-2500000\n")  # the model runs: 10 W
        n = sum(1 for ln in log.read_text().splitlines() if not ln.startswith("#"))
        wait_for_lines(log, n + 8)
        loop.mark("run_end")
    size = log.stat().st_size
    time.sleep(0.2)
    assert log.stat().st_size == size, "the log still grows after stop"

    text = log.read_text()
    assert text.startswith("# qbench-power v1 source=android-battery clock=")
    parsed = src.parse_log(text)
    expected_clock = "date" if shell == "/bin/sh" else "epochrealtime"  # dash has no $EPOCHREALTIME
    assert parsed.clock == expected_clock
    assert parsed.skipped_lines == 0, parsed.skipped_examples
    assert parsed.details == {"current_unit": "uA", "voltage_unit": "uV", "discharge_sign": "negative"}
    assert set(parsed.marks) == {"idle_start", "run_start", "run_end"}
    r = measure(parsed, inferences=10)
    assert r.idle_power_w == pytest.approx(4.0, abs=0.3)  # a sample may land just after the current changed
    assert 4.0 < r.avg_power_w <= 10.0 + 1e-9 and r.avg_power_w > 8.0
    assert r.sample_count >= 6
    assert 0.04 < r.sampling_period_s < 0.5


def test_android_battery_unreadable_current_gives_counted_garbage(tmp_path):
    d = fake_battery(tmp_path, "-1000000")
    (d / "current_now").unlink()  # the read fails every time: never a stale or zero value
    src = get_power_source("android-battery", supply_dir=str(d))
    log = tmp_path / "power.log"
    with Loop(src, log, "/bin/sh") as loop:
        loop.mark("run_start")
        wait_for_lines(log, 6)
        loop.mark("run_end")
    parsed = src.parse_log(log.read_text())
    assert not parsed.samples and parsed.skipped_lines >= 6
    assert "unreadable:current_now" in parsed.skipped_examples[0]
    assert set(parsed.marks) == {"run_start", "run_end"}  # no shell error text is glued onto a mark
    with pytest.raises(PowerError, match="no power samples"):
        measure(parsed, 10, idle=None)


def test_android_battery_probe_really_runs(tmp_path):
    d = fake_battery(tmp_path, "-1000000", status="Charging")
    src = get_power_source("android-battery", supply_dir=str(d))
    res = run_sh(src.probe_command())
    probe = src.parse_probe(res.stdout, res.returncode, res.stderr)
    assert probe.available and probe.details["status"] == "Charging" and probe.warnings
    gone = get_power_source("android-battery", supply_dir=str(tmp_path / "nope"))
    res = run_sh(gone.probe_command())
    probe = gone.parse_probe(res.stdout, res.returncode, res.stderr)
    assert not probe.available and probe.reason.startswith(f"{tmp_path}/nope/current_now not found")


def test_rpi_pmic_loop_with_a_stand_in_vcgencmd(tmp_path):
    fake = tmp_path / "bin/vcgencmd"
    fake.parent.mkdir()
    capture = FIXTURES / "rpi5_pmic_read_adc_load.txt"
    fake.write_text(f'#!/bin/sh\n[ "$1" = pmic_read_adc ] && exec cat "{capture}"\necho "bad command"\n')
    fake.chmod(0o755)
    src = get_power_source("rpi5-pmic", vcgencmd=str(fake))
    res = run_sh(src.probe_command())
    probe = src.parse_probe(res.stdout, res.returncode, res.stderr)
    assert probe.available and probe.details["watts_now"] == pytest.approx(5.92161, abs=1e-5)
    log = tmp_path / "pmic.log"
    with Loop(src, log, "/bin/sh") as loop:
        loop.mark("run_start")
        wait_for_lines(log, 26 * 4)
        loop.mark("run_end")
    parsed = src.parse_log(log.read_text())
    assert len(parsed.samples) >= 3
    assert all(s.watts == pytest.approx(5.92161, abs=1e-5) for s in parsed.samples)
    assert measure(parsed, 1, idle=None).avg_power_w == pytest.approx(5.92161, abs=1e-5)


def test_rpi_probe_without_vcgencmd():
    src = get_power_source("rpi5-pmic")
    res = run_sh(src.probe_command(), env={"PATH": "/nonexistent"})
    assert src.parse_probe(res.stdout, res.returncode, res.stderr).reason == "vcgencmd not found"


def _powercap(root: Path, pkg: int, core: int, max_uj: int = 262143328850) -> None:
    for zone, name, e in (("intel-rapl:0", "package-0", pkg), ("intel-rapl:0:0", "core", core)):
        (root / zone).mkdir(parents=True, exist_ok=True)
        (root / zone / "name").write_text(name + "\n")
        (root / zone / "energy_uj").write_text(f"{e}\n")
        (root / zone / "max_energy_range_uj").write_text(f"{max_uj}\n")


@pytest.mark.parametrize("shell", shell_params())
def test_rapl_snapshots_really_run(tmp_path, shell):
    root = tmp_path / "powercap"
    _powercap(root, 262143328850 - 2_000_000, 100)
    src = get_power_source("rapl", root=str(root))
    res = run_sh(src.probe_command(), shell)
    assert src.parse_probe(res.stdout, res.returncode, res.stderr).available
    log = tmp_path / "rapl.log"
    assert run_sh(src.start_command(str(log)), shell).returncode == 0
    assert run_sh(src.mark_command(str(log), "run_start"), shell).returncode == 0
    _powercap(root, 3_000_000, 4_000_100)  # package wrapped: 2 J + 3 J
    assert run_sh(src.mark_command(str(log), "run_end"), shell).returncode == 0
    parsed = src.parse_log(log.read_text())
    assert parsed.skipped_lines == 0 and len(parsed.readings) == 2
    r = measure(parsed, inferences=5, idle=None)
    assert r.energy_j == pytest.approx(5.0)
    assert r.per_rail_j["package-0/core"] == pytest.approx(4.0)
    assert r.energy_per_inference_mj == pytest.approx(1000.0)


def test_rapl_probe_on_a_machine_without_powercap(tmp_path):
    src = get_power_source("rapl", root=str(tmp_path / "powercap"))
    res = run_sh(src.probe_command())
    assert (
        src.parse_probe(res.stdout, res.returncode, res.stderr).reason
        == f"{tmp_path}/powercap/intel-rapl:*/energy_uj not found"
    )


def _iio(root: Path, extra_uws: int, extra_ms: int) -> None:
    for n in (0, 1):
        d = root / f"iio:device{n}"
        d.mkdir(parents=True, exist_ok=True)
        lines = (FIXTURES / f"pixel6_energy_value_device{n}.txt").read_text().splitlines()
        t = int(lines[0][2:]) + extra_ms
        body = [f"t={t}"] + [
            f"{ln.split('(')[0]}(T={t}){ln[ln.index('[') : ln.index(']') + 1]}, "
            f"{int(ln.split(', ')[1]) + extra_uws}"
            for ln in lines[1:]
        ]
        (d / "energy_value").write_text("\n".join(body) + "\n")
    (root / "iio:device0" / "enabled_rails").write_text(
        (FIXTURES / "pixel6_enabled_rails_device0.txt").read_text()
    )
    (root / "iio:device2").mkdir(exist_ok=True)  # another IIO sensor without energy_value


@pytest.mark.parametrize("shell", shell_params())
def test_odpm_snapshots_really_run(tmp_path, shell):
    root = tmp_path / "iio"
    _iio(root, 0, 0)
    src = get_power_source("android-rails", iio_root=str(root))
    res = run_sh(src.probe_command(), shell)
    probe = src.parse_probe(res.stdout, res.returncode, res.stderr)
    assert probe.available and probe.details["rails"]["VSYS_PWR_RFFE"] == "Cellular"
    log = tmp_path / "odpm.log"
    run_sh(src.start_command(str(log)), shell)
    run_sh(src.mark_command(str(log), "run_start"), shell)
    _iio(root, 250_000, 2_000)  # every rail +0.25 J over the devices' 2.000 s
    run_sh(src.mark_command(str(log), "run_end"), shell)
    parsed = src.parse_log(log.read_text())
    assert parsed.skipped_lines == 0
    r = measure(parsed, inferences=4, idle=None)
    assert r.energy_j == pytest.approx(16 * 0.25)
    assert r.duration_s == pytest.approx(2.0)  # device clock, not the shell's
    assert r.avg_power_w == pytest.approx(2.0)


def test_external_meter_really_runs_and_stops(tmp_path):
    meter = 'while :; do echo "$(date +%s.%N) 2.5"; sleep 0.05; done'
    src = get_power_source("external", command=meter)
    res = run_sh(src.probe_command())
    assert src.parse_probe(res.stdout, res.returncode, res.stderr).available
    log = tmp_path / "meter.log"
    with Loop(src, log, "/bin/sh") as loop:
        loop.mark("run_start")
        wait_for_lines(log, 8)
        loop.mark("run_end")
    size = log.stat().st_size
    time.sleep(0.2)
    assert log.stat().st_size == size, "the meter (in its own session) outlived stop"
    r = measure(get_power_source("external").parse_log(log.read_text()), inferences=2, idle=None)
    assert r.avg_power_w == pytest.approx(2.5)


def test_android_battery_without_status_file_still_samples_cleanly(tmp_path):
    d = fake_battery(tmp_path, "-1000000")
    (d / "status").unlink()  # some gauges have no status node: optional, silently empty
    src = get_power_source("android-battery", supply_dir=str(d))
    log = tmp_path / "power.log"
    with Loop(src, log, "/bin/sh") as loop:
        loop.mark("run_start")
        wait_for_lines(log, 5)
        loop.mark("run_end")
    parsed = src.parse_log(log.read_text())
    assert parsed.skipped_lines == 0, parsed.skipped_examples
    assert measure(parsed, 1, idle=None).avg_power_w == pytest.approx(4.0)
