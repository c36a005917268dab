"""A whole suite on a 'phone' (the ADB endpoint, driven by Debian's real adb client) and a 'board'
(a real OpenSSH server), both on loopback, next to the host: same result shape everywhere, faults
recovered or failed with their cause, and other devices unaffected.

The emulated devices run commands on this machine, so their profiles use the host's native runner.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import REPO, free_port, qbench, qbench_popen, write_suite

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("adb") is None, reason="needs Debian's adb")]

SUITE = """
name: farm
models:
  - name: "{model}"
    source: python:models/tiny.py:tiny_mlp
    inputs: [{{shape: [1, 64]}}]
recipes:
  - {{name: fp32, kind: fp32}}
  - {{name: int8-ptq, kind: ptq}}
calibration: {{kind: random, samples: 4, seed: 0}}
numerics: {{samples: 2}}
devices: {devices}
benchmark: {{warmup: 2, warmup_seconds: 0, iterations: 5, min_seconds: {min_seconds}, trials: {trials}, max_trials: {trials}, threads: 1, timeout_seconds: 60}}
"""


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    from qbench.testing.adbd import AdbDaemon
    from qbench.testing.sshd import SshServer

    root = tmp_path_factory.mktemp("farm")
    shutil.copytree(REPO / "suites" / "models", root / "models")
    home = root / "home"
    home.mkdir()
    adb_port = free_port()
    env = {"HOME": str(home)}  # adb keeps its key and server state here, not in the user's home
    daemon = AdbDaemon(root / "phone", properties={"ro.product.model": "Pixel 8 (emulated)"})
    daemon.start()
    sshd = SshServer(root / "sshd", alias="qbench-test-pi")
    sshd.start()
    profiles = root / "device_profiles"
    profiles.mkdir()
    (profiles / "phone.yaml").write_text(textwrap.dedent(f"""
        transport: adb
        adb_mode: server
        adb_server_port: {adb_port}
        address: {daemon.address}
        runner: {{kind: native, target: host}}
        connect_retries: 1
        """))
    (profiles / "pi.yaml").write_text(textwrap.dedent(f"""
        transport: ssh
        address: {sshd.alias}
        ssh_config: {sshd.ssh_config_path}
        workdir: {root / 'pi-work'}
        runner: {{kind: native, target: host}}
        connect_retries: 1
        """))
    yield {"root": root, "env": env, "daemon": daemon, "sshd": sshd, "adb_port": adb_port}
    subprocess.run(["adb", "-P", str(adb_port), "kill-server"], env={**os.environ, **env}, capture_output=True)
    daemon.stop()
    sshd.stop()


def test_suite_runs_on_host_phone_and_board_with_identical_result_shapes(farm):
    marker = Path(f"/tmp/qbench-inject-{uuid.uuid4().hex}")
    model = f"x; touch {marker}"  # a hostile name must stay a name
    suite = write_suite(farm["root"], SUITE.format(model=model, devices="[host, phone, pi]", trials=2, min_seconds=0), "farm.yaml")
    proc = qbench("run", suite, "--db", "farm.db", "--json", cwd=farm["root"], env=farm["env"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    by_device = {}
    for c in doc["cells"]:
        assert c["status"] == "ok", c
        by_device.setdefault(c["device"], []).append(c)
    assert sorted(by_device) == ["host", "phone", "pi"]
    shape = {d: sorted(k for c in cells for k, v in c.items() if v is not None) for d, cells in by_device.items()}
    assert shape["phone"] == shape["host"] == shape["pi"]
    for c in doc["cells"]:
        assert c["latency_ms"]["samples"] >= 10 and c["runner"] == "native"
    assert not marker.exists()
    con = sqlite3.connect(farm["root"] / "farm.db")
    infos = {d: json.loads(i) for d, i in con.execute("SELECT device, device_info FROM cells WHERE run_id=?", (doc["run_id"],))}
    assert infos["phone"]["model"] == "Pixel 8 (emulated)" and infos["phone"]["transport"] == "adb"
    assert infos["pi"]["transport"] == "ssh" and infos["pi"]["cores"] >= 1


def test_phone_lost_mid_run_fails_its_cells_with_the_cause_and_the_host_goes_on(farm):
    suite = write_suite(farm["root"], SUITE.format(model="tiny_mlp", devices="[host, phone]", trials=6, min_seconds=1), "lost.yaml")
    db = farm["root"] / "lost.db"
    proc = qbench_popen("run", suite, "--db", db, "--json", env=farm["env"], cwd=farm["root"])
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:  # pull the plug once the phone has measured something
            time.sleep(0.3)
            try:
                n = sqlite3.connect(db).execute(
                    "SELECT count(*) FROM trials t JOIN cells c USING (cell_id) WHERE c.device='phone'").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if n >= 1:
                break
        farm["daemon"].stop()
        out, err = proc.communicate(timeout=600)
    finally:
        farm["daemon"].start()  # same port: the phone is back for later tests
    assert proc.returncode == 1, err[-3000:]
    doc = json.loads(out)
    phone = [c for c in doc["cells"] if c["device"] == "phone"]
    host = [c for c in doc["cells"] if c["device"] == "host"]
    assert all(c["status"] == "ok" for c in host)
    assert any(c["status"] == "failed" for c in phone)
    for c in phone:
        if c["status"] == "failed":
            assert c["error"].startswith("device: phone: "), c["error"]
            assert "reconnecting failed: cannot reach" in c["error"] or "gave up after 1 reconnect(s)" in c["error"]
            assert c["latency_ms"] is None  # nothing half-measured is reported as a result


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-g++") is None or shutil.which("qemu-aarch64") is None,
                    reason="needs g++-aarch64-linux-gnu and qemu-user")
def test_a_pi_build_of_the_runner_measures_on_the_board_under_emulation(farm):
    """The Pi path end to end except the silicon: the linux-aarch64 runner cross-built here, pushed
    over ssh with its ARM libraries, started under qemu-aarch64 as a Pi 5 core."""
    from qbench.runners.native_build import build_runner

    build_runner("linux-aarch64")  # into the test session's cache, where qbench run looks
    work = farm["root"] / "pi-arm-work"
    (farm["root"] / "device_profiles" / "pi-arm.yaml").write_text(textwrap.dedent(f"""
        transport: ssh
        address: {farm['sshd'].alias}
        ssh_config: {farm['sshd'].ssh_config_path}
        workdir: {work}
        runner: {{kind: native, target: linux-aarch64,
                  launcher: [qemu-aarch64, -cpu, cortex-a76, -L, /usr/aarch64-linux-gnu]}}
        """))
    suite = write_suite(farm["root"], SUITE.format(model="tiny_mlp", devices="[pi-arm]", trials=1, min_seconds=0), "arm.yaml")
    proc = qbench("run", suite, "--db", "arm.db", "--json", cwd=farm["root"], env=farm["env"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert [c["status"] for c in doc["cells"]] == ["ok", "ok"] and all(c["runner"] == "native" for c in doc["cells"])
    assert all(c["latency_ms"]["samples"] >= 5 for c in doc["cells"])
    pushed = (work / "qbench_runner").read_bytes()[:20]
    assert int.from_bytes(pushed[18:20], "little") == 183  # EM_AARCH64: the Pi build ran, not the host's
    con = sqlite3.connect(farm["root"] / "arm.db")
    for (info,) in con.execute("SELECT device_info FROM cells WHERE run_id=?", (doc["run_id"],)):
        choice = json.loads(info)["runner_choice"]
        assert choice.startswith("native (linux-aarch64, cached build) under qemu-aarch64 -cpu cortex-a76"), choice


def test_hung_runner_is_killed_at_the_suite_timeout(farm, tmp_path):
    hang = tmp_path / "hang"
    hang.write_text("#!/bin/sh\nsleep 600\n")
    hang.chmod(0o755)
    profiles = farm["root"] / "device_profiles"
    (profiles / "stuck.yaml").write_text(f"transport: ssh\naddress: {farm['sshd'].alias}\n"
                                         f"ssh_config: {farm['sshd'].ssh_config_path}\n"
                                         f"workdir: {tmp_path / 'w'}\nrunner: {{kind: native, binary: {hang}}}\n")
    suite = write_suite(farm["root"], SUITE.format(model="tiny_mlp", devices="[stuck]", trials=1, min_seconds=0)
                        .replace("timeout_seconds: 60", "timeout_seconds: 3"), "stuck.yaml")
    t0 = time.monotonic()
    proc = qbench("run", suite, "--db", "stuck.db", "--json", cwd=farm["root"], env=farm["env"])
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert all(c["status"] == "failed" and "killed after 3 s" in c["error"] for c in doc["cells"]), doc["cells"]
    assert time.monotonic() - t0 < 300
    left = subprocess.run(["pgrep", "-f", str(hang)], capture_output=True, text=True).stdout.strip()
    assert left == "", f"runner still alive: {left}"


def test_energy_per_inference_from_a_phone_battery_that_drains_during_the_run(farm):
    """The sandbox exposes a fuel gauge in a Pixel's format (µA, negative while discharging, µV);
    a thread varies it while qbench samples it on the 'device' with its shell loop."""
    battery = farm["daemon"].sandbox / "data/local/tmp/fakesys/battery"
    battery.mkdir(parents=True, exist_ok=True)
    (battery / "status").write_text("Discharging\n")
    stop = threading.Event()

    def drain():
        i = 0
        while not stop.is_set():
            (battery / "current_now").write_text(f"{-(400000 + 50000 * (i % 4))}\n")  # 400..550 mA
            (battery / "voltage_now").write_text(f"{3900000 - i}\n")
            i += 1
            time.sleep(0.05)

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    try:
        (farm["root"] / "device_profiles" / "phone-power.yaml").write_text(textwrap.dedent(f"""
            transport: adb
            adb_mode: server
            adb_server_port: {farm['adb_port']}
            address: {farm['daemon'].address}
            runner: {{kind: native, target: host}}
            power: {{kind: android-battery, supply_dir: /data/local/tmp/fakesys/battery, idle_seconds: 1, period_s: 0.05}}
            """))
        suite = write_suite(farm["root"], SUITE.format(model="tiny_mlp", devices="[phone-power, host]", trials=1, min_seconds=0)
                            .replace("min_seconds: 0,", "min_seconds: 1.0,"), "power.yaml")
        proc = qbench("run", suite, "--db", "power.db", "--json", cwd=farm["root"], env=farm["env"])
    finally:
        stop.set()
        t.join()
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    con = sqlite3.connect(farm["root"] / "power.db")
    rows = con.execute("SELECT device, extra, power_source, avg_power_w, power_sample_count, energy_per_inference_mj, "
                       "energy_uncertainty_mj FROM cells WHERE run_id=?", (doc["run_id"],)).fetchall()
    for device, extra, source, avg_w, count, mj, u_mj in rows:
        power = json.loads(extra or "{}").get("power")  # what the columns do not hold (the figures are stored once)
        if device == "host":
            assert power is None and source is None  # host profile has no power source: nothing claimed
            continue
        assert source and 1.4 < avg_w < 2.3  # 0.40–0.55 A × 3.9 V
        assert count >= 5 and mj is not None and u_mj is not None
        assert power["inferences"] > 5 and "energy_per_inference_mj" not in power
    phone = [c for c in doc["cells"] if c["device"] == "phone-power"]
    assert all(c["energy"]["measured"] and c["energy"]["per_inference_mj"] is not None for c in phone)
    assert all(c["energy"] is None for c in doc["cells"] if c["device"] == "host")
    raw = con.execute("SELECT count(*) FROM power_samples p JOIN cells c USING (cell_id) WHERE c.run_id=?",
                      (doc["run_id"],)).fetchone()[0]
    assert raw >= 10
