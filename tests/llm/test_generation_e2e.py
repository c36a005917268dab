"""`qbench run` on a text-generation suite: the tiny Llama exported with its KV cache for fp32,
8da4w and int8-dynamic, measured by the native runner, and the `--json` `generation` contract;
a causal LM whose cache cannot be made (Mamba: no attention) fails its cell in one line."""

from __future__ import annotations

import json

import pytest

from tests.helpers import qbench, write_suite
from tests.llm.conftest import llm_suite

pytestmark = pytest.mark.slow
KEYS = {"prompt_tokens", "new_tokens", "ttft_ms", "prefill_tokens_per_s", "decode_tokens_per_s",
        "decode_ms_per_token", "load_ms", "kv_cache_bytes", "token_agreement"}


@pytest.fixture(scope="module")
def tiny_mamba(tmp_path_factory):
    import torch
    from transformers import MambaConfig, MambaForCausalLM

    folder = tmp_path_factory.mktemp("mamba") / "tiny-mamba"
    torch.manual_seed(0)
    MambaForCausalLM(MambaConfig(vocab_size=128, hidden_size=32, num_hidden_layers=1, state_size=4)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def doc(tiny_llama, tiny_mamba, tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e")
    mamba = (f"- name: tiny_mamba\n            source: hf:{tiny_mamba}\n            task: text-generation\n"
             "            generate: {prompt_tokens: 8, new_tokens: 6, max_seq_len: 32}")
    suite = write_suite(folder, llm_suite(tiny_llama, extra_model=f"  {mamba}", recipes=(
        "[{name: fp32, kind: fp32}, {name: 8da4w, kind: int4-weight, group_size: 32}, "
        "{name: int8-dynamic, kind: dynamic}]")))
    proc = qbench("run", suite, "--db", folder / "q.db", "--json", "--reports-dir", folder / "reports",
                  cwd=folder, timeout=3000)
    assert proc.returncode == 1, proc.stderr[-3000:]  # the Mamba cells fail, the Llama ones run
    return json.loads(proc.stdout)


def cells(doc, model):
    return {c["recipe"]: c for c in doc["cells"] if c["model"] == model}


def test_every_recipe_exports_with_its_cache_and_runs(doc):
    llama = cells(doc, "tiny_llama")
    assert {r: c["status"] for r, c in llama.items()} == {"fp32": "ok", "8da4w": "ok", "int8-dynamic": "ok"}, doc
    assert all(c["runner"] == "native" for c in llama.values())


def test_the_json_generation_block(doc):
    for recipe, c in cells(doc, "tiny_llama").items():
        gen = c["generation"]
        assert KEYS <= set(gen), gen
        assert gen["prompt_tokens"] == 8 and gen["new_tokens"] == 6
        assert set(gen["decode_ms_per_token"]) == {"median", "p90"}
        # one figure, one definition: decode ms per token is the cell's latency (every decode step a sample)
        assert gen["decode_ms_per_token"]["median"] == c["latency_ms"]["median"]
        assert gen["decode_tokens_per_s"] == pytest.approx(1000 / c["latency_ms"]["median"])
        low, high = gen["ci"]["decode_tokens_per_s"]
        assert low <= gen["decode_tokens_per_s"] <= high
        for name in ("ttft_ms", "prefill_tokens_per_s", "load_ms"):
            low, high = gen["ci"][name]
            assert low <= gen[name] <= high, (name, gen)
        assert gen["kv_cache_bytes"] == 2 * 1 * 2 * 32 * 32 * 4  # K and V × 1 layer × 2 kv heads × 32 dims × 32 positions × fp32
        assert gen["cache"] == "static cache, mutable buffers"
        assert 0 <= gen["token_agreement"] <= 1
        assert c["latency_ms"]["samples"] % 6 == 0 and c["stability"]["verdict"] in ("stable", "disturbed", "imprecise")
    assert cells(doc, "tiny_llama")["fp32"]["generation"]["token_agreement"] == 1.0


def test_a_model_without_a_usable_kv_cache_fails_in_one_line(doc):
    for c in cells(doc, "tiny_mamba").values():
        assert c["status"] == "failed"
        assert c["error"].startswith("export: cannot export with a KV cache: AttributeError: ")
        assert "measure its single forward pass instead (task: other" in c["error"]
        assert "\n" not in c["error"]


def test_the_page_and_the_summary_show_the_generation_figures(doc):
    from pathlib import Path

    from qbench.cli.summary import render_plain

    page = Path(doc["report"]).read_text()
    assert 'id="plot-tokens-section"' in page and 'id="plot-positions-section"' in page
    assert "Decode tokens/s · host" in page and "Decode step time by position · host" in page
    head = render_plain(doc).splitlines()[1]
    assert "decode tok/s" in head and "TTFT ms" in head and "tok agree" in head
