"""The generation loop in both runners, on a real exported tiny Llama with its KV cache in the
program: token counts, one timing per decode step, greedy tokens equal across runners and to the
uncached fp32 model (so the cache really holds the earlier positions, across generations too)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from qbench.runners.native_build import build_runner
from tests.runners.test_native_runner import shared_cache

PROMPT, NEW, MAX_SEQ = 8, 6, 32


@pytest.fixture(scope="module")
def program(tiny_llama, tmp_path_factory):
    from qbench.export.generation import lower_generator
    from qbench.models.causal_lm import generation_module, load_causal_lm

    path = tmp_path_factory.mktemp("gen") / "fp32.pte"
    lower_generator(generation_module(load_causal_lm(tiny_llama), MAX_SEQ), PROMPT, MAX_SEQ, path)
    return path


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    return build_runner("host", cache_dir=shared_cache(tmp_path_factory))


def runner_argv(kind, native):
    if kind == "native":
        return [str(native)]
    from qbench.runners import python_runner

    return [sys.executable, python_runner.__file__]


def generate(argv, program, *extra) -> dict:
    proc = subprocess.run([*argv, "--model", str(program), "--prompt-tokens", str(PROMPT), "--new-tokens", str(NEW),
                           "--warmup", "1", "--warmup-seconds", "0", "--iterations", "3", "--min-seconds", "0",
                           "--json", *map(str, extra)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def reports(program, native, tmp_path_factory):
    folder = tmp_path_factory.mktemp("logits")
    out = {}
    for kind in ("native", "python"):
        report = generate(runner_argv(kind, native), program, "--outputs", folder / f"{kind}.bin")
        out[kind] = (report, np.fromfile(folder / f"{kind}.bin", dtype=np.float32))
    return out


@pytest.mark.parametrize("kind", ["native", "python"])
def test_counts_and_one_timing_per_decode_step(reports, kind):
    report, _ = reports[kind]
    gen = report["generation"]
    assert gen["prompt_tokens"] == PROMPT and gen["new_tokens"] == NEW
    assert gen["generations"] == 3  # --iterations counts whole generations
    assert len(gen["tokens"]) == NEW + 1  # the prefill's token, then one per decode step
    assert len(report["samples_ns"]) == len(report["thread_cpu_ns"]) == 3 * NEW
    assert all(ns > 0 for ns in report["samples_ns"] + gen["prefill_ns"])
    assert len(gen["prefill_ns"]) == len(gen["decode_ns"]) == 3
    assert gen["decode_ns"] == [sum(report["samples_ns"][g * NEW:(g + 1) * NEW]) for g in range(3)]
    assert report["warmup_iterations"] == 1 and report["outputs"][0]["shape"][0] == 1


def test_both_runners_generate_the_same_tokens(reports):
    assert reports["native"][0]["generation"]["tokens"] == reports["python"][0]["generation"]["tokens"]
    np.testing.assert_allclose(reports["native"][1], reports["python"][1], rtol=1e-5, atol=1e-5)


def test_the_kv_cache_holds_earlier_positions_across_generations(reports, tiny_llama):
    """Each step's token equals the argmax of the fp32 model run on the whole sequence without a
    cache; the --outputs generation ran after four others, so the cache is reset by each prefill."""
    import torch

    from qbench.models.causal_lm import load_causal_lm, prompt_ids

    report, logits = reports["native"]
    tokens = report["generation"]["tokens"]
    vocab = report["outputs"][0]["shape"][-1]
    prompt = prompt_ids(report["generation"]["seed"], PROMPT, vocab)
    with torch.no_grad():
        full = load_causal_lm(tiny_llama)(torch.tensor([prompt + tokens[:-1]])).logits[0]
    assert full[PROMPT - 1:].argmax(-1).tolist() == tokens
    steps = logits.reshape(NEW + 1, vocab)
    assert steps.argmax(-1).tolist() == tokens
    np.testing.assert_allclose(steps, full[PROMPT - 1:].numpy(), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("kind", ["native", "python"])
def test_prompt_without_new_tokens_is_a_usage_error(program, native, kind):
    proc = subprocess.run([*runner_argv(kind, native), "--model", str(program), "--prompt-tokens", "4", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "--prompt-tokens and --new-tokens go together" in proc.stderr.strip().splitlines()[-1]
