"""CPU clusters by name, from /sys trees laid out like a Pixel 8 and a Galaxy S24 (tests/fixtures/sys),
read with the same sh script qbench runs on a device."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from qbench.devices import clusters
from qbench.errors import QbenchError
from tests.helpers import qbench

SYS = Path(__file__).resolve().parents[1] / "fixtures" / "sys"


def read_tree(name: str) -> dict[int, dict]:
    out = subprocess.run(["sh", "-c", clusters.CLUSTER_SCRIPT, "qbench", str(SYS / name / "devices/system/cpu")],
                         capture_output=True, text=True, check=True).stdout
    return clusters.parse(out)


def test_pixel8_tensor_g3():
    named = clusters.name_clusters(read_tree("pixel8"))
    assert named == {"little": [0, 1, 2, 3], "mid": [4, 5, 6, 7], "big": [8], "prime": [8]}
    assert clusters.resolve("mid", "auto", named, "pixel8") == (4, [4, 5, 6, 7])
    assert clusters.resolve("big", "auto", named, "pixel8") == (1, [8])
    assert clusters.describe(named) == "little 0-3, mid 4-7, big 8, prime 8"
    assert clusters.describe({"little": [0, 1], "big": [0, 1], "prime": [0, 1]}) == "one cluster: cpu 0-1"


def test_galaxy_s24_from_frequencies_alone():
    cores = read_tree("galaxy-s24")
    assert all(c["capacity"] is None and c["max_khz"] for c in cores.values())
    named = clusters.name_clusters(cores)
    assert named == {"little": [0, 1, 2, 3], "mid": [4, 5, 6], "big": [7, 8], "prime": [9]}
    assert clusters.resolve("little", 2, named, "galaxy-s24") == (2, [0, 1, 2, 3])


def test_core_lists_and_threads_pass_through():
    assert clusters.resolve([4, 5], "auto", {}, "x") == (2, [4, 5])
    assert clusters.resolve(None, 3, {}, "x") == (3, None)
    assert clusters.resolve(None, "auto", {}, "x") == (1, None)


def test_unknown_or_absent_cluster_names_the_device_and_the_choices():
    two = {"little": [0, 1], "big": [2, 3], "prime": [2, 3]}
    with pytest.raises(QbenchError, match=r"device rpi has no mid cluster \(it has: little 0-1, big 2-3, prime 2-3\)"):
        clusters.resolve("mid", "auto", two, "rpi")
    with pytest.raises(QbenchError, match="unknown CPU cluster 'huge'; choose one of little, mid, big, prime"):
        clusters.resolve("huge", 1, two, "rpi")
    with pytest.raises(QbenchError, match="shows no /sys/devices/system/cpu"):
        clusters.resolve("big", 1, {}, "vm")


def test_a_suite_with_an_unknown_cluster_name_is_refused_with_its_line(tmp_path):
    import sys

    (tmp_path / "s.yaml").write_text("name: s\nmodels:\n  - {name: m, source: torchvision:resnet18}\n"
                                     "recipes: [{name: fp32, kind: fp32}]\ndevices: [host]\n"
                                     "benchmark: {affinity: huge}\n")
    proc = qbench("run", tmp_path / "s.yaml", "--check", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "s.yaml:6" in proc.stderr and "affinity" in proc.stderr
