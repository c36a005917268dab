"""Generation mode on the emulated ARM phone: the NDK-free bundle (generate.h cross-built) pushed by
the real adb client and run under qemu-aarch64 as a Cortex-A76; its greedy tokens and logits are
the device's own, judged against the fp32 eager model, and so is its perplexity on a text (the runner's
scoring mode on the phone). fp32 only, one trial, two short windows: qemu is slow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import qbench, write_suite
from tests.llm.conftest import llm_suite
from tests.pipeline.test_phone_arm_e2e import phone  # noqa: F401  (the emulated phone fixture)

pytestmark = [pytest.mark.slow, *__import__("tests.pipeline.test_phone_arm_e2e", fromlist=["x"]).pytestmark]


TEXT = Path(__file__).resolve().parents[2] / "suites" / "data" / "llm-text.txt"


def test_a_generation_runs_on_the_emulated_phone(phone, tiny_llama, tmp_path):  # noqa: F811
    from qbench.testing.tiny_llm import make_tiny_llama

    model = tmp_path / "tiny-llama"  # the session's model with a tokenizer learnt from the text
    shutil.copytree(tiny_llama, model)
    make_tiny_llama(model, text=TEXT)
    text_set = f"    dataset: prose\n        datasets: [{{name: prose, kind: text, path: {TEXT}, windows: 2}}]"
    suite = write_suite(phone["root"], llm_suite(model, trials=1, extra_model=text_set)
                        .replace("devices: [host]", "devices: [arm-phone]")
                        .replace("runner: native,", "runner: native, timeout_seconds: 600,"), "llm.yaml")
    proc = qbench("run", suite, "--db", "llm.db", "--json", env=phone["env"], cwd=phone["root"], timeout=2400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cell = json.loads(proc.stdout)["cells"][0]
    assert cell["status"] == "ok" and cell["runner_flavour"] == "android-bundle"
    gen = cell["generation"]
    assert gen["quality_from"] == "device" and gen["token_agreement"] == 1.0 and gen["logits_sqnr_db"] > 60
    assert cell["latency_ms"]["samples"] == gen["generations"] * 6
    assert gen["decode_tokens_per_s"] > 0 and gen["ttft_ms"] > 0
    # the phone's runner scored the text itself: its perplexity is the fp32 eager model's
    assert gen["perplexity_from"] == "device" and gen["perplexity_tokens"] == 2 * (32 - 1)
    assert gen["perplexity"] == pytest.approx(gen["perplexity_fp32_eager"], rel=1e-3)
