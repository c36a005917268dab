"""external: meter lines in watts or cumulative joules, garbage counted, host marks."""

from __future__ import annotations

from pathlib import Path

import pytest

from qbench.collectors.power import PowerError, get_power_source, measure
from qbench.collectors.power.external import format_mark

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "power"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_watts_lines_with_garbage():
    log = get_power_source("external", command="um34c --csv").parse_log(fixture("external_watts.log"))
    assert log.sampling == "sampled"
    assert log.skipped_lines == 4  # banner, nan, negative watts, "2.3 W" with a space
    r = measure(log, inferences=50)
    assert r.idle_power_w == pytest.approx(0.8075, rel=1e-6)  # the run_start edge mixes 0.8 and 2.3 W
    # run: from the interpolated edge at 5.0 s (1.55 W) to 14.9 s at 2.3 W
    assert r.energy_j == pytest.approx(0.1 * (1.55 + 2.3) / 2 + 2.3 * 9.8, rel=1e-6)
    assert r.sampling_period_s == pytest.approx(0.2, abs=1e-6)


def test_cumulative_joules_interpolated_at_marks():
    log = get_power_source("external").parse_log(fixture("external_joules.log"))
    assert log.sampling == "counter"
    assert log.skipped_lines == 2  # a value that went down, an error line
    r = measure(log, inferences=42)
    assert r.energy_j == pytest.approx(42.0)  # 4 W for 10.5 s
    assert r.idle_power_w == pytest.approx(1.0)
    assert r.net_energy_j == pytest.approx(31.5)
    assert r.energy_per_inference_mj == pytest.approx(750.0)
    assert r.sample_count == 11


def test_mixed_watts_and_joules_is_refused():
    with pytest.raises(PowerError, match="both watts and joules"):
        get_power_source("external").parse_log("1.0 2.0\n2.0 5.0J\n")


def test_format_mark_lines_up_with_shell_epoch_clocks():
    text = (
        "# qbench-power v1 source=external clock=date\n"
        + format_mark("run_start", 1733000000.25)
        + "1733000000.0 1.0\n"
    )
    log = get_power_source("external").parse_log(text)
    assert log.marks == {"run_start": 1733000000.25} and log.skipped_lines == 0


def test_uptime_clock_cannot_line_up_with_a_meter():
    log = get_power_source("external").parse_log("# qbench-power v1 source=external clock=uptime\n1.0 1.0\n")
    assert any("cannot line up" in n for n in log.notes)


def test_probe_needs_a_command():
    src = get_power_source("external")
    assert not src.parse_probe(
        "qbench-probe: error no meter command given (external power source needs command=...)\n"
    ).available
    assert (
        get_power_source("external", command="um34c").parse_probe("qbench-probe: nocmd um34c\n").reason
        == "um34c not found"
    )
