"""A whole suite on an emulated ARM phone: the loopback ADB endpoint, driven by Debian's real adb
client, receives the NDK-free runner bundle through the ordinary push path and runs it under
qemu-aarch64 as a Cortex-A76 (the profile's runner.launcher) from its own workdir, with nothing of
the host's aarch64 sysroot visible. Latency, memory, numerics on the device, thermal, the battery
power source and per-op profiling all come from that ARM process. Tiny model, one trial: qemu is slow.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import textwrap

import pytest

from tests.helpers import REPO, cli_env, free_port, qbench, write_suite

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("adb") is None, reason="needs Debian's adb"),
    pytest.mark.skipif(shutil.which("aarch64-linux-gnu-g++") is None or shutil.which("qemu-aarch64") is None,
                       reason="needs g++-aarch64-linux-gnu and qemu-user"),
]

SUITE = """
name: phone
models:
  - name: mlp
    source: python:models/tiny.py:tiny_mlp
    inputs: [{shape: [1, 64]}]
recipes:
  - {name: fp32, kind: fp32}
  - {name: int8-ptq, kind: ptq}
calibration: {kind: random, samples: 4, seed: 0}
numerics: {samples: 3}
devices: [arm-phone, host]
benchmark: {warmup: 1, warmup_seconds: 0, iterations: 5, min_seconds: 0, trials: 1, threads: 1,
            timeout_seconds: 120, profile_ops: true}
"""


@pytest.fixture(scope="module")
def phone(tmp_path_factory):
    from qbench.runners.native_build import build_runner
    from qbench.testing.adbd import AdbDaemon

    build_runner("android-arm64-v8a")  # the bundle, into the test session's cache where qbench run looks
    root = tmp_path_factory.mktemp("arm-phone")
    shutil.copytree(REPO / "suites" / "models", root / "models")
    (root / "home").mkdir()
    port = free_port()
    daemon = AdbDaemon(root / "device", properties={"ro.product.model": "Pixel 8 (emulated)"})
    daemon.start()
    battery = daemon.sandbox / "data/local/tmp/fakesys/battery"  # a Pixel's fuel gauge format: µA, µV
    battery.mkdir(parents=True)
    for name, value in (("status", "Discharging"), ("current_now", "-450000"), ("voltage_now", "3900000")):
        (battery / name).write_text(value + "\n")
    (root / "device_profiles").mkdir()
    (root / "device_profiles" / "arm-phone.yaml").write_text(textwrap.dedent(f"""
        transport: adb
        adb_server_port: {port}
        address: {daemon.address}
        runner: {{kind: native, target: android-arm64-v8a, launcher: [qemu-aarch64, -cpu, cortex-a76]}}
        power: {{kind: android-battery, supply_dir: /data/local/tmp/fakesys/battery, idle_seconds: 0.5, period_s: 0.05}}
        connect_retries: 1
        """))
    env = {"HOME": str(root / "home"), "QEMU_LD_PREFIX": None}
    yield {"root": root, "daemon": daemon, "env": env, "port": port}
    subprocess.run(["adb", "-P", str(port), "kill-server"], env=cli_env(env), capture_output=True)
    daemon.stop()


def test_a_whole_suite_runs_on_the_emulated_arm_phone(phone):
    suite = write_suite(phone["root"], SUITE)
    proc = qbench("run", suite, "--db", "phone.db", "--json", env=phone["env"], cwd=phone["root"], timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    cells = {(c["device"], c["recipe"]): c for c in doc["cells"]}
    assert all(c["status"] == "ok" for c in cells.values()), doc["cells"]

    # the ARM build ran: pushed by adb into the phone's workdir, with its own loader
    work = phone["daemon"].host_path("/data/local/tmp/qbench")
    head = (work / "qbench_runner").read_bytes()[:20]
    assert int.from_bytes(head[18:20], "little") == 183  # EM_AARCH64
    assert (work / "ld-linux-aarch64.so.1").is_file() and (work / "libc.so.6").is_file()

    for recipe in ("fp32", "int8-ptq"):
        arm, host = cells[("arm-phone", recipe)], cells[("host", recipe)]
        assert arm["runner_flavour"] == "android-bundle" and host["runner_flavour"] == "host"
        assert arm["latency_ms"]["samples"] >= 5 and arm["peak_rss_bytes"] > 0
        assert arm["energy"]["measured"] and 1.5 < arm["energy"]["avg_power_w"] < 2.0  # 0.45 A × 3.9 V
        for c in (arm, host):  # numerics from each device's own outputs, judged against the host's
            dn = c["device_numerics"]
            assert set(dn) >= {"sqnr_db", "max_abs_error", "cosine_similarity", "top1_agreement", "accuracy",
                               "agrees_with_host"}
            assert dn["agrees_with_host"] is True and dn["samples"] == 3, dn
        lo = 60 if recipe == "fp32" else 15
        assert arm["device_numerics"]["sqnr_db"] > lo
    con = sqlite3.connect(phone["root"] / "phone.db")
    rows = con.execute("SELECT c.device, c.device_info, t.thermal_before FROM cells c JOIN trials t USING (cell_id) "
                       "WHERE c.run_id=?", (doc["run_id"],)).fetchall()
    for device, info, thermal in rows:
        if device == "arm-phone":
            info = json.loads(info)
            assert info["model"] == "Pixel 8 (emulated)" and info["abi"] == "arm64-v8a"
            assert "bundle" in info["runner_choice"] and "qemu-aarch64 -cpu cortex-a76" in info["runner_choice"]
            assert thermal is not None
    ops = con.execute("SELECT count(*) FROM ops o JOIN cells c USING (cell_id) WHERE c.run_id=? AND c.device='arm-phone'",
                      (doc["run_id"],)).fetchone()[0]
    assert ops > 0  # per-op profile from the ARM runner's ETDump


def test_a_phone_whose_int8_numerics_disagree_with_the_host_is_flagged(phone):
    """qemu's `max` CPU (SVE2/I8MM) really computes wrong int8 outputs with XNNPACK (qemu 7.2): a device
    whose numerics differ from the host's, without any fake. fp32 there still agrees."""
    (phone["root"] / "device_profiles" / "odd-phone.yaml").write_text(textwrap.dedent(f"""
        transport: adb
        adb_server_port: {phone['port']}
        address: {phone['daemon'].address}
        workdir: /data/local/tmp/qbench-odd
        runner: {{kind: native, target: android-arm64-v8a, launcher: [qemu-aarch64, -cpu, max]}}
        """))
    suite = write_suite(phone["root"], SUITE.replace("[arm-phone, host]", "[odd-phone]")
                        .replace("profile_ops: true", "profile_ops: false"), "odd.yaml")
    proc = qbench("run", suite, "--db", "odd.db", env=phone["env"], cwd=phone["root"], timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 cell(s) whose numerics on the device disagree with the host's" in proc.stdout  # the summary's note
    assert "mlp/int8-ptq@odd-phone: SQNR" in proc.stdout
    doc = json.loads(qbench("results", "--db", "odd.db", "--format", "json", env=phone["env"],
                            cwd=phone["root"]).stdout)
    by_recipe = {r["recipe"]: json.loads(r["extra"]) if isinstance(r["extra"], str) else r["extra"] for r in doc}
    bad, good = by_recipe["int8-ptq"]["device_numerics"], by_recipe["fp32"]["device_numerics"]
    assert bad["agrees_with_host"] is False and "on the device vs" in bad["disagreement"]
    assert good["agrees_with_host"] is True
    page = max((phone["root"] / "reports").glob("*/index.html"), key=lambda p: p.stat().st_mtime).read_text()
    assert "⚠" in page and "disagrees with the host" in page
