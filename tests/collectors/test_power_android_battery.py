"""android-battery: fuel gauge logs in vendor variants, and the probe."""

from __future__ import annotations

from pathlib import Path

import pytest

from qbench.collectors.power import PowerError, get_power_source, measure
from qbench.collectors.power.android_battery import detect_current_unit, detect_voltage_unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "power"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_pixel_style_uA_negative_discharge():
    src = get_power_source("android-battery")
    log = src.parse_log(fixture("android_battery_pixel_uA_negative.log"))
    assert log.details == {"current_unit": "uA", "voltage_unit": "uV", "discharge_sign": "negative"}
    assert log.clock == "epochrealtime"
    assert log.skipped_lines == 2  # a shell error line and a line whose current read failed
    assert any("Permission denied" in e for e in log.skipped_examples)
    r = measure(log, inferences=200)
    assert r.avg_power_w == pytest.approx(3.0, rel=0.01)  # 0.75 A x ~3.99 V
    assert r.idle_power_w == pytest.approx(1.0, rel=0.02)
    assert r.net_energy_j == pytest.approx(r.energy_j - r.idle_power_w * 10.0)
    assert r.energy_per_inference_mj == pytest.approx(r.net_energy_j / 200 * 1e3)
    assert r.sampling_period_s == pytest.approx(0.1, abs=0.005)
    assert 0 < r.uncertainty_j < 0.5
    assert r.skipped_lines == 2


def test_mA_positive_discharge_with_uV_voltage():
    log = get_power_source("android-battery").parse_log(fixture("android_battery_mA_positive.log"))
    assert log.details == {"current_unit": "mA", "voltage_unit": "uV", "discharge_sign": "positive"}
    r = measure(log, inferences=100)
    assert r.avg_power_w == pytest.approx(1.25 * 3.85, rel=0.01)
    # the gauge steps to 1.25 A at run_start, between two samples: the idle window's last 0.1 s
    # interpolates toward it, which adds ~0.03 W to the idle mean
    assert r.idle_power_w == pytest.approx(0.42 * 3.85 + 0.031, rel=0.005)


def test_explicit_units_and_sign_override_the_heuristics():
    text = fixture("android_battery_mA_positive.log")
    forced = get_power_source("android-battery", current_unit="uA", discharge_sign="negative").parse_log(text)
    assert forced.details["current_unit"] == "uA" and forced.details["discharge_sign"] == "negative"
    assert all(s.watts < 0 for s in forced.samples)  # positive current read as charging: negative power
    assert any("charging sign" in n for n in forced.notes)
    r = measure(forced, 10, idle=None)
    assert r.avg_power_w == pytest.approx(-1.25e-3 * 3.85, rel=0.01)


def test_charging_samples_are_left_out_and_explained():
    src = get_power_source("android-battery")
    log = src.parse_log(fixture("android_battery_charging.log"))
    assert any("Charging/Full were left out" in n for n in log.notes)
    assert all(s.t_s >= log.marks["idle_start"] + 8.0 for s in log.samples)
    with pytest.raises(PowerError, match="only 0 power samples.*unplug USB"):
        measure(log, 100)  # the idle window was entirely on the charger
    r = measure(log, 100, idle=None)  # the run window's second part ran on battery
    assert r.avg_power_w == pytest.approx(0.5 * 4.1, rel=0.01)
    assert any("cover 70%" in n for n in r.notes)


def test_unit_heuristics_on_magnitude():
    assert detect_current_unit([-1234567, -1200000]) == "uA"
    assert detect_current_unit([-350, 420, 800]) == "mA"
    assert detect_current_unit([9999]) == "mA" and detect_current_unit([10001]) == "uA"
    assert detect_voltage_unit([3987000]) == "uV"
    assert detect_voltage_unit([3987]) == "mV"
    assert detect_voltage_unit([3.987]) == "V"


def test_current_stuck_at_zero_is_noted():
    text = "# qbench-power v1 source=android-battery clock=date\n" + "".join(
        f"{t}.0 0 3900000 Discharging\n" for t in range(5)
    )
    log = get_power_source("android-battery").parse_log(text)
    assert any("stayed 0" in n for n in log.notes)


def test_two_word_status_and_garbage_values():
    text = (
        "# qbench-power v1 source=android-battery clock=date\n"
        "1.0 -500000 4000000 Not charging\n"
        "2.0 -500000 4000000 Not charging\n"
        "3.0 nan 4000000 Discharging\n"
        "4.0 -500000\n"
        "garbage\n"
    )
    log = get_power_source("android-battery").parse_log(text)
    assert len(log.samples) == 2 and log.samples[0].watts == pytest.approx(2.0)
    assert log.skipped_lines == 3


def test_probe_ok_missing_denied_and_charging():
    src = get_power_source("android-battery")
    ok = src.parse_probe(
        "qbench-probe: ok /sys/class/power_supply/battery/current_now\n"
        "qbench-probe: ok /sys/class/power_supply/battery/voltage_now\nqbench-probe: status Discharging\n"
    )
    assert ok.available and ok.reason == "ok" and ok.details["status"] == "Discharging" and not ok.warnings
    charging = src.parse_probe(
        "qbench-probe: ok /sys/class/power_supply/battery/current_now\n"
        "qbench-probe: ok /sys/class/power_supply/battery/voltage_now\nqbench-probe: status Charging\n"
    )
    assert charging.available and "unplug USB" in charging.warnings[0]
    missing = src.parse_probe(
        "qbench-probe: missing /sys/class/power_supply/battery/current_now\n"
        "qbench-probe: ok /sys/class/power_supply/battery/voltage_now\n"
    )
    assert not missing.available and missing.reason == "/sys/class/power_supply/battery/current_now not found"
    denied = src.parse_probe("qbench-probe: denied /sys/class/power_supply/battery/current_now\n")
    assert denied.reason == "permission denied on /sys/class/power_supply/battery/current_now"
