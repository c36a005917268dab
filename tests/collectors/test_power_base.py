"""Registry, the `none` source, probe messages and the shared log/shell conventions."""

from __future__ import annotations

import pytest

from qbench.collectors.power import (
    POWER_SOURCES,
    PowerError,
    PowerResult,
    get_power_source,
    measure,
)
from qbench.collectors.power.base import check_label
from qbench.collectors.power.logfmt import parse_number, scan
from qbench.registry import UnknownName


def test_registry_has_every_source():
    assert POWER_SOURCES.names() == [
        "android-battery",
        "android-rails",
        "external",
        "none",
        "rapl",
        "rpi5-pmic",
    ]


def test_unknown_name_lists_the_choices():
    with pytest.raises(UnknownName) as e:
        get_power_source("monsoon")
    msg = str(e.value)
    assert "unknown power source 'monsoon'" in msg
    for name in ("android-battery", "android-rails", "rpi5-pmic", "rapl", "external", "none"):
        assert name in msg


def test_options_reach_the_source_and_bad_options_fail():
    src = get_power_source("android-battery", supply_dir="/sys/class/power_supply/bms", current_unit="mA")
    assert "/sys/class/power_supply/bms/current_now" in src.start_command("/data/local/tmp/p.log")
    with pytest.raises(ValueError, match="current_unit"):
        get_power_source("android-battery", current_unit="amps")
    with pytest.raises(ValueError, match="method"):
        get_power_source("android-rails", method="perfetto")


def test_none_source_reports_not_measured_never_zero():
    src = get_power_source("none")
    assert src.parse_probe("").available
    result = measure(src.parse_log(""), inferences=100)
    assert result.measured is False
    assert result.reason == "not measured (power source: none)"
    for value in (result.avg_power_w, result.energy_j, result.energy_per_inference_mj, result.uncertainty_j):
        assert value is None
    assert result.to_dict()["energy_per_inference_mj"] is None


def test_every_source_has_a_note_and_snippets():
    for name in POWER_SOURCES.names():
        src = get_power_source(name, **({"command": "meter"} if name == "external" else {}))
        assert src.note
        for snippet in (
            src.probe_command(),
            src.start_command("/tmp/q/p.log"),
            src.mark_command("/tmp/q/p.log", "run_start"),
            src.stop_command("/tmp/q/p.log"),
        ):
            assert (
                isinstance(snippet, str) and snippet and "\n" not in snippet
            )  # one line: safe through adb shell


def test_labels_are_restricted():
    assert check_label("run_start") == "run_start"
    for bad in ("run start", "a;rm -rf /", "", "x" * 65, "$(id)"):
        with pytest.raises(ValueError):
            check_label(bad)


def test_probe_that_did_not_run_says_why():
    src = get_power_source("android-battery")
    r = src.parse_probe("", returncode=127, stderr="sh: 1: syntax error\n")
    assert not r.available and r.reason == "probe did not run: sh: 1: syntax error"
    assert src.parse_probe("", returncode=255).reason == "probe did not run: exit code 255"


def test_parse_number_refuses_what_float_would_take():
    assert parse_number("1732700000.123456") == pytest.approx(1732700000.123456)
    assert parse_number("1732700000,5") == 1732700000.5  # bash EPOCHREALTIME under a comma locale
    assert parse_number("-1500000") == -1500000
    for bad in ("nan", "inf", "-inf", "1_000", "0x10", "", "1.2.3", "12abc", "1,2,3"):
        assert parse_number(bad) is None


def test_scan_counts_partial_last_line_and_rejects_foreign_clock_marks():
    text = (
        "# qbench-power v1 source=x clock=uptime\n"
        "# mark a 10.0 clock=uptime\n"
        "# mark b 1732700000.0 clock=epochrealtime\n"  # written by another shell on another clock
        "1 2 3\n"
        "4 5"  # cut off mid-write
    )
    sc = scan(text)
    assert sc.marks == {"a": 10.0}
    assert sc.data == ["1 2 3"]
    assert sc.skips.count == 2


def test_epoch_clocks_are_compatible_with_each_other():
    sc = scan(
        "# qbench-power v1 source=x clock=date\n# mark a 1.5 clock=python\n# mark b 2.5 clock=epochrealtime\n"
    )
    assert sc.marks == {"a": 1.5, "b": 2.5} and sc.skips.count == 0


def test_missing_mark_names_the_known_ones():
    log = get_power_source("android-battery").parse_log(
        "# qbench-power v1 source=android-battery clock=date\n# mark run_start 1.0 clock=date\n"
    )
    with pytest.raises(PowerError, match=r"no mark 'run_end' in the power log \(marks: run_start\)"):
        measure(log, 10, idle=None)


def test_bracket_command_keeps_the_exit_code():
    src = get_power_source("rapl")
    snippet = src.bracket_command("/tmp/p.log", "./runner --json", idle_seconds=3)
    assert snippet.index("snap idle_start") < snippet.index("sleep 3;") < snippet.index("snap run_start")
    assert snippet.index("./runner --json; qb_rc=$?") < snippet.index("snap run_end")
    assert snippet.endswith("exit $qb_rc")


def test_power_result_to_dict_round_trips():
    d = PowerResult.not_measured("rapl", "permission denied").to_dict()
    assert d["measured"] is False and d["reason"] == "permission denied" and d["per_rail_j"] == {}
