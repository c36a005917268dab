"""rapl: snapshots with wrap-around, sub-zones, DRAM, permission errors, and this host's sysfs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qbench.collectors.power import PowerError, get_power_source, measure, read_rapl_host
from qbench.collectors.power.rapl import rail_keys, total_rails

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "power"
MAX = 262143328850


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_laptop_package_wraps_once_in_the_run():
    log = get_power_source("rapl").parse_log(fixture("rapl_laptop_wrap.log"))
    assert log.total_rails == ["package-0"]
    r = measure(log, inferences=1000)
    assert r.energy_j == pytest.approx(93.32885)  # (max - start) + end, in joules
    assert r.avg_power_w == pytest.approx(9.332885)
    assert r.idle_power_w == pytest.approx(3.0)
    assert r.net_energy_j == pytest.approx(93.32885 - 30.0)
    assert r.per_rail_j["package-0/core"] == pytest.approx(80.0)
    assert r.per_rail_j["package-0/uncore"] == pytest.approx(0.4)
    assert r.per_rail_j["psys"] == pytest.approx(160.0)
    assert any("psys" in n for n in r.notes)


def test_server_total_is_packages_plus_dram():
    log = get_power_source("rapl").parse_log(fixture("rapl_server_dram.log"))
    assert sorted(log.total_rails) == ["package-0", "package-0/dram", "package-1", "package-1/dram"]
    r = measure(log, inferences=10, idle=None)
    assert r.energy_j == pytest.approx(120 + 20 + 110 + 30)
    assert r.duration_s == pytest.approx(2.0, abs=1e-6)


def test_unreadable_counters_are_skipped_counted_and_refused():
    log = get_power_source("rapl").parse_log(fixture("rapl_denied.log"))
    assert log.skipped_lines == 4 and not log.readings
    assert any("ERR" in e for e in log.skipped_examples)
    with pytest.raises(PowerError, match="only 0 counter readings"):
        measure(log, 10, idle=None)


def test_rail_keys_and_totals():
    keys = rail_keys(
        {
            "intel-rapl:0": "package-0",
            "intel-rapl:0:0": "core",
            "intel-rapl:0:1": "uncore",
            "intel-rapl:1": "psys",
        }
    )
    assert keys == {
        "intel-rapl:0": "package-0",
        "intel-rapl:0:0": "package-0/core",
        "intel-rapl:0:1": "package-0/uncore",
        "intel-rapl:1": "psys",
    }
    assert total_rails(list(keys.values())) == ["package-0"]
    assert total_rails(["package-0", "dram", "package-0/core"]) == [
        "package-0",
        "dram",
    ]  # a top-level dram zone


def test_probe_permission_message():
    r = get_power_source("rapl").parse_probe(
        "qbench-probe: denied /sys/class/powercap/intel-rapl:0/energy_uj\n"
        "qbench-probe: denied /sys/class/powercap/intel-rapl:0:0/energy_uj\n"
    )
    assert not r.available
    assert r.reason.startswith("permission denied on /sys/class/powercap/intel-rapl:0/energy_uj")
    assert "root-only since Linux 5.10" in r.reason


def test_probe_missing_and_ok():
    src = get_power_source("rapl")
    assert src.parse_probe("qbench-probe: missing /sys/class/powercap/intel-rapl:*/energy_uj\n").reason == (
        "/sys/class/powercap/intel-rapl:*/energy_uj not found"
    )
    assert src.parse_probe("qbench-probe: ok /sys/class/powercap/intel-rapl:0\n").available


def _fake_powercap(root: Path, pkg: int, core: int) -> None:
    for zone, name, e in (("intel-rapl:0", "package-0", pkg), ("intel-rapl:0:0", "core", core)):
        d = root / zone
        d.mkdir(parents=True, exist_ok=True)
        (d / "name").write_text(name + "\n")
        (d / "energy_uj").write_text(f"{e}\n")
        (d / "max_energy_range_uj").write_text(f"{MAX}\n")
    (root / "intel-rapl").mkdir(exist_ok=True)  # the control type dir has no energy_uj


def test_read_rapl_host_on_a_fake_tree(tmp_path):
    _fake_powercap(tmp_path, MAX - 1_000_000, 5)
    r = read_rapl_host(str(tmp_path), label="run_start")
    assert r.energy_j == {
        "package-0": pytest.approx((MAX - 1_000_000) * 1e-6),
        "package-0/core": pytest.approx(5e-6),
    }
    assert r.wrap_j["package-0"] == pytest.approx(MAX * 1e-6) and r.label == "run_start"


def test_read_rapl_host_errors(tmp_path):
    with pytest.raises(PowerError, match="not found"):
        read_rapl_host(str(tmp_path / "nope"))
    with pytest.raises(PowerError, match="intel-rapl:\\*/energy_uj not found"):
        read_rapl_host(str(tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a mode-000 file")
def test_read_rapl_host_permission(tmp_path):
    _fake_powercap(tmp_path, 1, 1)
    (tmp_path / "intel-rapl:0" / "energy_uj").chmod(0)
    with pytest.raises(PowerError, match="permission denied on .*intel-rapl:0/energy_uj"):
        read_rapl_host(str(tmp_path))


def test_read_rapl_host_on_this_machine():
    try:
        reading = read_rapl_host()
    except PowerError as e:
        pytest.skip(f"RAPL not readable on this machine: {e.detail}")
    assert reading.energy_j and all(v >= 0 for v in reading.energy_j.values())
