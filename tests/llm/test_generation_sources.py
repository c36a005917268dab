"""Text-generation sources beyond hf:FOLDER: ExecuTorch's own Llama definition (`llama:params.json`,
its checkpoint as `weights:`) and `python:` factories (a transformers causal LM, ExecuTorch's Llama
Transformer, or a module already exposing the cached forward). Bad inputs are one line before the
first cell; good ones export with their KV cache and run in the native runner."""

from __future__ import annotations

import json
import textwrap

import pytest

from qbench.cli import main
from tests.helpers import qbench as qbench_cli
from tests.helpers import write_suite
from tests.llm.conftest import llm_suite

FACTORIES = textwrap.dedent('''
    import torch

    from qbench.testing.tiny_llm import TINY_LLAMA, TINY_PARAMS


    def _args(**overrides):
        from executorch.examples.models.llama.model_args import ModelArgs

        return ModelArgs(**{**TINY_PARAMS, "n_layers": 1, **overrides})


    def hf_causal_lm():
        from transformers import LlamaConfig, LlamaForCausalLM

        config = LlamaConfig(**{**TINY_LLAMA, "num_hidden_layers": 1})
        config.architectures = ["LlamaForCausalLM"]
        return LlamaForCausalLM(config)


    def et_transformer():
        from executorch.examples.models.llama.llama_transformer import construct_transformer

        return construct_transformer(_args())


    class Cached(torch.nn.Module):
        """A user's own cached module: forward(input_ids, cache_position) -> logits [1, vocab]."""

        def __init__(self, data_dependent=False):
            super().__init__()
            from executorch.examples.models.llama.llama_transformer import construct_transformer

            self.max_seq_len, self.vocab_size, self.data_dependent = 32, TINY_PARAMS["vocab_size"], data_dependent
            self.inner = construct_transformer(_args(use_kv_cache=True, enable_dynamic_shape=True, max_seq_len=32,
                                                     max_context_len=32))

        def forward(self, input_ids, cache_position):
            if self.data_dependent and int(cache_position[0]) > 0:  # python control flow on a value: no export
                input_ids = input_ids + 0
            return self.inner(input_ids, {"input_pos": cache_position[:1]})


    def cached_module():
        return Cached()


    def data_dependent_module():
        return Cached(data_dependent=True)


    def not_a_generator():
        return torch.nn.Linear(8, 8)


    def an_encoder():
        from transformers import BertConfig, BertForSequenceClassification

        config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32)
        config.architectures = ["BertForSequenceClassification"]
        return BertForSequenceClassification(config)
''')


def check(capsys, path) -> tuple[int, str]:
    code = main(["run", str(path), "--check"])
    return code, capsys.readouterr().err


def lines_with(err: str, text: str) -> list[str]:
    return [line for line in err.splitlines() if text in line]


@pytest.fixture
def factories(tmp_path):
    (tmp_path / "factories.py").write_text(FACTORIES)
    return tmp_path / "factories.py"


def test_a_llama_params_file_passes_the_check(tiny_llama_params, tmp_path, capsys):
    source = f"llama:{tiny_llama_params}\n            weights: {tiny_llama_params.parent / 'consolidated.00.pth'}"
    code, err = check(capsys, write_suite(tmp_path, llm_suite(None, source=source)))
    assert code == 0, err


@pytest.mark.parametrize("params, expected", [
    ({"dim": 128, "n_layers": 1, "vocab_size": 64}, "missing key 'n_heads': add it"),
    ({"dim": 128, "n_layers": 1, "n_heads": 4, "vocab_size": -1}, "key 'vocab_size' is -1: set it to a positive integer"),
    ({"dim": 128, "n_layers": 1, "n_heads": 4, "n_kv_heads": 3, "vocab_size": 64},
     "key 'n_kv_heads' is 3: set it to a positive divisor of n_heads (4)"),
    ({"dim": 100, "n_layers": 1, "n_heads": 3, "vocab_size": 64}, "key 'dim' (100) is not a multiple of n_heads (3)"),
])
def test_a_params_file_with_a_missing_or_bad_key_is_one_line(params, expected, tmp_path, capsys):
    (tmp_path / "params.json").write_text(json.dumps(params))
    path = write_suite(tmp_path, llm_suite(None, source="llama:params.json"))
    code, err = check(capsys, path)
    assert code == 2
    found = lines_with(err, expected)
    assert len(found) == 1, err
    assert found[0].strip().startswith(f"{path}:4: models[0].source: {tmp_path / 'params.json'}: "), err


def test_a_params_file_with_an_unknown_key_names_it(tmp_path, capsys):
    (tmp_path / "params.json").write_text(json.dumps({"dim": 64, "n_layers": 1, "n_heads": 4, "vocab_size": 64,
                                                      "n_layer": 2}))
    code, err = check(capsys, write_suite(tmp_path, llm_suite(None, source="llama:params.json")))
    assert code == 2
    found = lines_with(err, "unknown key 'n_layer' (not a field of ExecuTorch's ModelArgs")
    assert len(found) == 1 and "remove it or correct its spelling" in found[0], err


def test_no_params_file_is_one_line(tmp_path, capsys):
    code, err = check(capsys, write_suite(tmp_path, llm_suite(None, source="llama:nowhere/params.json")))
    assert code == 2 and len(lines_with(err, "nowhere/params.json: no such params file")) == 1, err


def test_a_checkpoint_of_another_model_names_the_tensor_and_shapes(tiny_llama_params, tmp_path, capsys):
    from qbench.testing.tiny_llm import make_tiny_llama_params

    other = make_tiny_llama_params(tmp_path / "other", checkpoint=True, n_layers=1, dim=64, hidden_dim=192)
    source = f"llama:{tiny_llama_params}\n            weights: {other.parent / 'consolidated.00.pth'}"
    code, err = check(capsys, write_suite(tmp_path, llm_suite(None, source=source)))
    assert code == 2
    found = lines_with(err, "checkpoint tensor 'tok_embeddings.weight' is [1024, 64], the params file gives [1024, 128]")
    assert len(found) == 1, err


def test_a_factory_that_cannot_generate_says_what_it_gave(factories, tmp_path, capsys):
    code, err = check(capsys, write_suite(tmp_path, llm_suite(None, source=f"python:{factories}:not_a_generator")))
    assert code == 2
    found = lines_with(err, "models[0].source: model 'tiny_llama': it gave a torch.nn.modules.linear.Linear, "
                            "which cannot generate: a text-generation model is a transformers causal LM")
    assert len(found) == 1 and "forward(input_ids int64 [1, T], cache_position int64 [T])" in found[0], err


def test_a_factory_giving_an_encoder_is_not_causal(factories, tmp_path, capsys):
    code, err = check(capsys, write_suite(tmp_path, llm_suite(None, source=f"python:{factories}:an_encoder")))
    assert code == 2
    assert len(lines_with(err, "models[0].task: model 'tiny_llama': BertForSequenceClassification is not a causal "
                               "language model (no *ForCausalLM architecture); task text-generation needs")) == 1, err


def test_another_source_kind_is_one_line(tmp_path, capsys):
    code, err = check(capsys, write_suite(tmp_path, llm_suite(None, source="torchvision:mobilenet_v2")))
    assert code == 2
    assert len(lines_with(err, "models[0].source: task text-generation needs an hf:FOLDER causal LM (a transformers "
                               "save_pretrained folder), llama:PARAMS.json (ExecuTorch's Llama definition) or a "
                               "python: factory, got torchvision:")) == 1, err


def run_json(folder, suite_text: str) -> tuple[int, dict, str]:
    suite = write_suite(folder, suite_text)
    proc = qbench_cli("run", suite, "--db", folder / "q.db", "--json", "--reports-dir", folder / "reports",
                      cwd=folder, timeout=3000)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def by_cell(doc) -> dict:
    return {(c["model"], c["recipe"]): c for c in doc["cells"]}


@pytest.fixture(scope="module")
def llama_run(tiny_llama_params, tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama-e2e")
    random = (f"- name: random_llama\n            source: llama:{tiny_llama_params}\n            task: text-generation\n"
              "            generate: {prompt_tokens: 8, new_tokens: 6, max_seq_len: 32}")
    source = f"llama:{tiny_llama_params}\n            weights: {tiny_llama_params.parent / 'consolidated.00.pth'}"
    code, doc, err = run_json(folder, llm_suite(None, source=source, extra_model=f"  {random}", recipes=(
        "[{name: fp32, kind: fp32}, {name: 8da4w, kind: int4-weight, group_size: 32}]")))
    assert code == 0, err[-3000:]
    return doc


@pytest.mark.slow
def test_the_llama_source_runs_fp32_and_8da4w_in_the_native_runner(llama_run):
    cells = by_cell(llama_run)
    assert set(cells) == {(m, r) for m in ("tiny_llama", "random_llama") for r in ("fp32", "8da4w")}
    for cell in cells.values():
        gen = cell["generation"]
        assert cell["status"] == "ok" and cell["runner"] == "native", cell
        assert gen["cache"] == "static cache, mutable buffers" and gen["quality_from"] == "device"
        # K and V × 1 layer × 2 KV heads × 32 dims × 32 positions × fp32
        assert gen["kv_cache_bytes"] == 2 * 1 * 2 * 32 * 32 * 4
        assert gen["new_tokens"] == 6 and gen["decode_tokens_per_s"] > 0
    assert cells["tiny_llama", "fp32"]["generation"]["token_agreement"] == 1.0


@pytest.mark.slow
def test_without_a_checkpoint_the_weights_are_said_to_be_random(llama_run):
    cells = by_cell(llama_run)
    assert all(cells["random_llama", r]["generation"]["weights"] == "random" for r in ("fp32", "8da4w"))
    assert all("weights" not in cells["tiny_llama", r]["generation"] for r in ("fp32", "8da4w"))


@pytest.mark.slow
def test_python_factories_generate_or_say_why_not(tmp_path_factory):
    folder = tmp_path_factory.mktemp("python-e2e")
    (folder / "factories.py").write_text(FACTORIES)
    models = "".join(f"  - name: {name}\n            source: python:factories.py:{name}\n"
                     "            task: text-generation\n"
                     "            generate: {prompt_tokens: 8, new_tokens: 6, max_seq_len: 32}\n        "
                     for name in ("et_transformer", "cached_module", "data_dependent_module"))
    code, doc, err = run_json(folder, llm_suite(None, source="python:factories.py:hf_causal_lm", extra_model=models))
    assert code == 1, err[-3000:]  # the data-dependent module fails its cell, the others run
    cells = {model: c for (model, _), c in by_cell(doc).items()}
    for name in ("tiny_llama", "et_transformer", "cached_module"):
        assert cells[name]["status"] == "ok" and cells[name]["runner"] == "native", cells[name]
        assert cells[name]["generation"]["token_agreement"] == 1.0
    failed = cells["data_dependent_module"]
    assert failed["status"] == "failed", failed
    assert failed["error"].startswith("export: cannot export with a KV cache: ") and "\n" not in failed["error"]
    assert failed["error"].endswith("a cached module must pass torch.export.export(module, (input_ids, "
                                    "cache_position), strict=True) with a dynamic sequence length (1 … max_seq_len-1); "
                                    "try that on it")


def test_the_cached_llama_holds_the_checkpoint_and_computes_what_the_definition_does(tiny_llama_params):
    """The checkpoint reaches the cached generator a cell exports: its prefill and a decode step give
    the logits the cache-free definition gives for the same tokens."""
    import torch

    from qbench.models.causal_lm import generator_for
    from qbench.models.llama_source import LlamaSource

    built = LlamaSource().build(str(tiny_llama_params))
    checkpoint = torch.load(tiny_llama_params.parent / "consolidated.00.pth", weights_only=True)
    built.load_state_dict(checkpoint)
    cached = generator_for(built, 32)
    assert torch.equal(cached.transformer.tok_embeddings.weight, checkpoint["tok_embeddings.weight"])
    ids = torch.tensor([[5, 17, 300, 2, 999, 41]])
    with torch.no_grad():
        prefill = cached(ids[:, :5], torch.arange(5))
        step = cached(ids[:, 5:], torch.tensor([5]))
        assert torch.allclose(prefill, built(ids[:, :5]), atol=1e-5)
        assert torch.allclose(step, built(ids), atol=1e-5)
