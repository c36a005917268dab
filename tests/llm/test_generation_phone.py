"""Generation mode on the emulated ARM phone: the NDK-free bundle (generate.h cross-built) pushed by
the real adb client and run under qemu-aarch64 as a Cortex-A76; its greedy tokens and logits are
the device's own, judged against the fp32 eager model. fp32 only, one trial: qemu is slow."""

from __future__ import annotations

import json

import pytest

from tests.helpers import qbench, write_suite
from tests.llm.conftest import llm_suite
from tests.pipeline.test_phone_arm_e2e import phone  # noqa: F401  (the emulated phone fixture)

pytestmark = [pytest.mark.slow, *__import__("tests.pipeline.test_phone_arm_e2e", fromlist=["x"]).pytestmark]


def test_a_generation_runs_on_the_emulated_phone(phone, tiny_llama):  # noqa: F811
    suite = write_suite(phone["root"], llm_suite(tiny_llama, trials=1).replace("devices: [host]", "devices: [arm-phone]")
                        .replace("runner: native,", "runner: native, timeout_seconds: 600,"), "llm.yaml")
    proc = qbench("run", suite, "--db", "llm.db", "--json", env=phone["env"], cwd=phone["root"], timeout=2400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cell = json.loads(proc.stdout)["cells"][0]
    assert cell["status"] == "ok" and cell["runner_flavour"] == "android-bundle"
    gen = cell["generation"]
    assert gen["quality_from"] == "device" and gen["token_agreement"] == 1.0 and gen["logits_sqnr_db"] > 60
    assert cell["latency_ms"]["samples"] == gen["generations"] * 6
    assert gen["decode_tokens_per_s"] > 0 and gen["ttft_ms"] > 0
