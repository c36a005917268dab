"""android-rails: Pixel ODPM energy_value / enabled_rails / dumpsys power stats, and windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qbench.collectors.power import get_power_source, measure
from qbench.collectors.power.android_rails import (
    dumpsys_step_mws,
    parse_dumpsys_energy_meter,
    parse_enabled_rails,
    parse_energy_value,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "power"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_energy_value_pixel6_capture():
    d0 = parse_energy_value(fixture("pixel6_energy_value_device0.txt"))
    d1 = parse_energy_value(fixture("pixel6_energy_value_device1.txt"))
    assert d0.t_ms == 349894 and d1.t_ms == 359458
    assert d0.rails_uws["S2M_VDD_CPUCL2"] == 30203502
    assert d1.rails_uws["VSYS_PWR_DISPLAY"] == 81221665
    assert len(d0.rails_uws) == len(d1.rails_uws) == 8
    assert d0.skips.count == d1.skips.count == 0


def test_energy_value_garbage_and_missing_timestamp_are_counted():
    bad = parse_energy_value(
        "CH0(T=1)[S10M_VDD_TPU], 5\nt=100\nCH1(T=100)[A], 7\nCH2(T=100)[B], -3\nCH3(T=100)[A], 9\nnonsense\n"
    )
    assert bad.t_ms == 100
    assert bad.rails_uws == {"A": 7}  # t= must come first (as in the HAL); negatives, repeats, junk skipped
    assert bad.skips.count == 4


def test_enabled_rails():
    rails = parse_enabled_rails(fixture("pixel6_enabled_rails_device0.txt"))
    assert rails["VSYS_PWR_RFFE"] == "Cellular"
    assert rails["S2M_VDD_CPUCL2"] == "CPU(BIG)"
    assert len(rails) == 8


def test_dumpsys_matches_sysfs_to_float32_precision():
    mws, found = parse_dumpsys_energy_meter(fixture("pixel6_dumpsys_powerstats.txt"))
    assert found and len(mws) == 16
    sysfs = {
        **parse_energy_value(fixture("pixel6_energy_value_device0.txt")).rails_uws,
        **parse_energy_value(fixture("pixel6_energy_value_device1.txt")).rails_uws,
    }
    for rail, uws in sysfs.items():
        assert mws[rail] == pytest.approx(uws / 1000, abs=dumpsys_step_mws(uws / 1000))
    # the energy consumer section ("CPUCL0 : 46356.94 mWs") is not a channel
    assert "CPUCL0" not in mws


def test_dumpsys_delta_mode():
    mws, found = parse_dumpsys_energy_meter(fixture("pixel6_dumpsys_powerstats_delta.txt"))
    assert found and len(mws) == 16 and mws["S10M_VDD_TPU"] == pytest.approx(5578.76)


def test_dumpsys_float32_step():
    assert dumpsys_step_mws(5578.76) == 0.01  # below 2^17 the printed 0.01 dominates
    assert dumpsys_step_mws(5.0e7) == pytest.approx(float(np.spacing(np.float32(5.0e7))))  # 4 mWs


def test_odpm_window_known_answer():
    src = get_power_source("android-rails")
    log = src.parse_log(fixture("pixel6_odpm_window.log"))
    assert [r.label for r in log.readings] == ["idle_start", "run_start", "run_end"]
    assert log.skipped_lines == 0
    r = measure(log, inferences=1000)
    # run: CPUCL2 1.8 + CPUCL1 0.6 + CPUCL0 0.15 + MIF 0.35 + display 0.3 + TPU 0.002 + VDD2H 0.2
    # + 9 other rails x 0.005 W
    assert r.avg_power_w == pytest.approx(3.447)
    assert r.idle_power_w == pytest.approx(0.522)
    assert r.duration_s == pytest.approx(10.0)  # from the devices' own t= (ms since boot)
    assert r.energy_j == pytest.approx(34.47)
    assert r.net_energy_j == pytest.approx(34.47 - 5.22)
    assert r.energy_per_inference_mj == pytest.approx(29.25)
    assert r.per_rail_j["S2M_VDD_CPUCL2"] == pytest.approx(18.0)
    assert len(r.per_rail_j) == 16
    assert r.uncertainty_j < 0.01


def test_dumpsys_window_agrees_with_sysfs():
    log = get_power_source("android-rails", method="dumpsys").parse_log(fixture("pixel6_dumpsys_window.log"))
    assert log.details["method"] == "dumpsys"
    r = measure(log, inferences=1000)
    assert r.energy_j == pytest.approx(34.47, abs=1e-3)
    assert r.net_energy_j == pytest.approx(29.25, abs=0.01)
    assert r.uncertainty_j > 0.01  # each dumpsys took 150 ms: when the counters were read is uncertain


def test_probe_sysfs_ok_lists_rails():
    out = "qbench-probe: ok /sys/bus/iio/devices/iio:device0\nqbench-probe: rails iio:device0\n" + fixture(
        "pixel6_enabled_rails_device0.txt"
    )
    r = get_power_source("android-rails").parse_probe(out)
    assert r.available and r.details["rails"]["S5M_VDD_INT"] == "INT"


def test_probe_sysfs_denied_suggests_root_or_dumpsys():
    r = get_power_source("android-rails").parse_probe(
        "qbench-probe: denied /sys/bus/iio/devices/iio:device0/energy_value\n"
        "qbench-probe: denied /sys/bus/iio/devices/iio:device1/energy_value\n"
    )
    assert not r.available
    assert r.reason.startswith("permission denied on /sys/bus/iio/devices/iio:device0/energy_value")
    assert "adb root" in r.reason and "dumpsys" in r.reason


def test_probe_sysfs_missing():
    r = get_power_source("android-rails").parse_probe(
        "qbench-probe: missing /sys/bus/iio/devices/iio:device*/energy_value\n"
    )
    assert r.reason == "/sys/bus/iio/devices/iio:device*/energy_value not found"


def test_probe_dumpsys():
    src = get_power_source("android-rails", method="dumpsys")
    ok = src.parse_probe("qbench-probe: ran\n" + fixture("pixel6_dumpsys_powerstats.txt"))
    assert ok.available and len(ok.details["rails"]) == 16
    gone = src.parse_probe(
        "qbench-probe: ran\nCan't find service: android.hardware.power.stats.IPowerStats/default\n"
    )
    assert not gone.available and "power stats HAL not found" in gone.reason
    empty = src.parse_probe(
        "qbench-probe: ran\n\n============= PowerStats HAL 2.0 energy meter ==============\n"
        "                           Channel    Cumulative Energy\n"
        "========== End of PowerStats HAL 2.0 energy meter ==========\n"
    )
    assert not empty.available and "no energy meter channels" in empty.reason
    assert src.parse_probe("qbench-probe: nocmd dumpsys\n").reason == "dumpsys not found"
