"""rpi5-pmic: `vcgencmd pmic_read_adc` captures, sampled logs and probe messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from qbench.collectors.power import get_power_source, measure
from qbench.collectors.power.rpi_pmic import parse_pmic_read_adc

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "power"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def rails_sum(text: str) -> float:
    """Independent reference: pair NAME_A with NAME_V by hand."""
    vals = {}
    for line in text.splitlines():
        name, rest = line.split()
        vals[name] = float(rest.split("=")[1][:-1])
    return sum(vals[n] * vals[n[:-2] + "_V"] for n in vals if n.endswith("_A"))


def test_load_capture():
    r = parse_pmic_read_adc(fixture("rpi5_pmic_read_adc_load.txt"))
    assert len(r.pairs) == 12 and r.error is None and r.skips.count == 0
    assert r.unmatched == ["BATT_V", "EXT5V_V"]  # voltage only: counted, named, not in the total
    watts = r.rail_watts()
    assert watts["VDD_CORE"] == pytest.approx(5.03652 * 0.8936988)
    assert sum(watts.values()) == pytest.approx(rails_sum(fixture("rpi5_pmic_read_adc_load.txt")))
    assert sum(watts.values()) == pytest.approx(5.92161, abs=1e-5)


def test_idle_capture():
    r = parse_pmic_read_adc(fixture("rpi5_pmic_read_adc_idle.txt"))
    assert sum(r.rail_watts().values()) == pytest.approx(rails_sum(fixture("rpi5_pmic_read_adc_idle.txt")))
    assert r.volts["BATT"] == pytest.approx(3.280339)


def test_unmatched_and_inconsistent_lines():
    r = parse_pmic_read_adc(
        "  VDD_CORE_A current(7)=2.00000000A\n"
        "  VDD_CORE_V volt(15)=0.80000000V\n"
        "   3V3_SYS_A current(1)=0.10000000A\n"  # no 3V3_SYS_V: unmatched
        "  DDR_VDD2_A volt(11)=1.1V\n"  # current name, voltage quantity: refused
        "  HDMI_V volt(23)=5.1A\n"  # unit disagrees
        "  VDD_CORE_A current(7)=9.0A\n"  # repeated
        "garbage=1\n"
    )
    assert r.rail_watts() == {"VDD_CORE": pytest.approx(1.6)}
    assert r.unmatched == ["3V3_SYS_A"]
    assert r.skips.count == 4


def test_pi4_command_not_registered():
    r = parse_pmic_read_adc(fixture("rpi4_pmic_read_adc_not_registered.txt"))
    assert r.error == "Command not registered" and not r.pairs


def test_sampled_log_windows():
    src = get_power_source("rpi5-pmic")
    log = src.parse_log(fixture("rpi5_pmic_sampled.log"))
    assert log.clock == "date"
    assert len(log.samples) == 49  # 50 blocks, the last one cut off mid-output
    assert log.details["unmatched_rails"] == ["BATT_V", "EXT5V_V"] and log.details["unmatched_count"] == 2
    assert log.skipped_lines == 11  # 1 stray line + 9 accepted lines of the cut block + its partial last line
    assert set(log.samples[0].rails) == {
        "3V7_WL_SW",
        "3V3_SYS",
        "1V8_SYS",
        "DDR_VDD2",
        "DDR_VDDQ",
        "1V1_SYS",
        "0V8_SW",
        "VDD_CORE",
        "3V3_DAC",
        "3V3_ADC",
        "0V8_AON",
        "HDMI",
    }
    r = measure(log, inferences=400)
    idle_w, load_w = (
        rails_sum(fixture("rpi5_pmic_read_adc_idle.txt")),
        rails_sum(fixture("rpi5_pmic_read_adc_load.txt")),
    )
    # idle samples at 0.01, 0.26 ... 3.76 s; the next sample (4.01 s) is already under load, so the
    # edge at run_start (4.0 s) interpolates 96% of the way to the load value
    edge = idle_w + 0.96 * (load_w - idle_w)
    assert r.idle_power_w == pytest.approx((idle_w * 3.75 + 0.24 * (idle_w + edge) / 2) / 3.99)
    # run_start falls 0.01 s before the first load sample: the edge interpolates from the last idle sample
    edge_loss = 0.5 * 0.01 * (load_w - idle_w) * (0.01 / 0.25)
    assert r.energy_j == pytest.approx(load_w * 8.0 - edge_loss, rel=1e-6)
    assert r.per_rail_j["VDD_CORE"] == pytest.approx(5.03652 * 0.8936988 * 8.0, rel=1e-3)
    assert r.sampling_period_s == pytest.approx(0.25)
    assert any("BATT_V, EXT5V_V" in n for n in r.notes)


def test_probe_vcgencmd_not_found():
    r = get_power_source("rpi5-pmic").parse_probe("qbench-probe: nocmd vcgencmd\n")
    assert not r.available and r.reason == "vcgencmd not found"


def test_probe_not_a_pi5():
    r = get_power_source("rpi5-pmic").parse_probe(
        "qbench-probe: ran\n" + fixture("rpi4_pmic_read_adc_not_registered.txt")
    )
    assert not r.available
    assert (
        r.reason == "vcgencmd has no pmic_read_adc (Command not registered): "
        "needs a Raspberry Pi 5 and current firmware"
    )


@pytest.mark.parametrize(
    "said",  # what vcgencmd prints without access to the firmware mailbox (public issue reports)
    ["VCHI initialization failed", "Can't open device file: /dev/vcio"],
)
def test_probe_permission(said):
    r = get_power_source("rpi5-pmic").parse_probe(f"qbench-probe: ran\n{said}\n")
    assert not r.available
    assert (
        r.reason.startswith("permission denied on /dev/vcio")
        and said in r.reason
        and "video group" in r.reason
    )


def test_probe_ok_reports_current_draw():
    r = get_power_source("rpi5-pmic").parse_probe(
        "qbench-probe: ran\n" + fixture("rpi5_pmic_read_adc_load.txt")
    )
    assert r.available and len(r.details["rails"]) == 12
    assert r.details["watts_now"] == pytest.approx(rails_sum(fixture("rpi5_pmic_read_adc_load.txt")))
