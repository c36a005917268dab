"""Bad text-generation suites are refused before the first cell: exit 2, one line, file:line:key."""

from __future__ import annotations

import json

from qbench.cli import main
from tests.helpers import write_suite
from tests.llm.conftest import llm_suite


def check(capsys, path) -> tuple[int, str]:
    code = main(["run", str(path), "--check"])
    return code, capsys.readouterr().err


def test_a_prompt_and_new_tokens_beyond_the_cache_is_one_line(tiny_llama, tmp_path, capsys):
    path = write_suite(tmp_path, llm_suite(tiny_llama, generate="{prompt_tokens: 24, new_tokens: 16, max_seq_len: 32}"))
    code, err = check(capsys, path)
    assert code == 2
    lines = [line for line in err.splitlines() if "max_seq_len" in line]
    assert len(lines) == 1, err
    assert lines[0].strip().startswith(f"{path}:6: models[0].generate: ")
    assert "prompt_tokens + new_tokens (24 + 16) exceed max_seq_len 32" in lines[0]


def test_a_model_that_is_not_causal_is_one_line(tmp_path, capsys):
    encoder = tmp_path / "bert"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"],
                                                     "model_type": "bert"}))
    path = write_suite(tmp_path, llm_suite(encoder))
    code, err = check(capsys, path)
    assert code == 2
    assert (f"{path}:5: models[0].task: model 'tiny_llama': BertForSequenceClassification is not a causal "
            "language model (no *ForCausalLM architecture); task text-generation needs a decoder-only causal LM") in err


def test_a_recipe_the_cache_export_does_not_support_is_one_line(tiny_llama, tmp_path, capsys):
    path = write_suite(tmp_path, llm_suite(tiny_llama, recipes="[{name: fp32, kind: fp32}, {name: int8, kind: ptq}]"))
    code, err = check(capsys, path)
    assert code == 2
    assert ("recipes[1].kind: recipe kind 'ptq' is not supported for text-generation model(s) 'tiny_llama': "
            "use one of fp32, int4-weight, dynamic") in err


def test_generate_on_a_model_that_does_not_generate_is_refused(tmp_path, capsys):
    path = write_suite(tmp_path, """
        name: s
        models:
          - name: m
            source: python:models/tiny.py:tiny_mlp
            inputs: [{shape: [1, 64]}]
            generate: {prompt_tokens: 8}
        recipes: [{name: fp32, kind: fp32}]
        """)
    code, err = check(capsys, path)
    assert code == 2 and "`generate:` is for `task: text-generation` models" in err


def test_a_good_generation_suite_passes_the_check(tiny_llama, tmp_path, capsys):
    code, err = check(capsys, write_suite(tmp_path, llm_suite(tiny_llama)))
    assert code == 0, err


def test_generate_lists_sweep_like_threads(tiny_llama, tmp_path):
    from qbench.pipeline import grid
    from qbench.pipeline.check import check_suite
    from qbench.suite.loader import load_suite

    path = write_suite(tmp_path, llm_suite(tiny_llama, generate="{prompt_tokens: [8, 16], new_tokens: [4, 6], max_seq_len: 32}",
                                           recipes="[{name: fp32, kind: fp32}, {name: 8da4w, kind: int4-weight}]"))
    checked = check_suite(load_suite(path), preflight=False)
    cells = grid.cells(checked)
    assert [c.sweep for c in cells if c.variant.recipe.name == "fp32"] == [
        "prompt_tokens=8 new_tokens=4", "prompt_tokens=8 new_tokens=6",
        "prompt_tokens=16 new_tokens=4", "prompt_tokens=16 new_tokens=6"]
    assert len(cells) == 8 and len({c.variant for c in cells}) == 8
    point = [c for c in cells if c.variant.recipe.name == "fp32"][-1].variant.model.generate  # single values
    assert (point.prompt_tokens, point.new_tokens, point.max_seq_len) == (16, 6, 32)


def test_a_sweep_point_beyond_the_cache_is_refused(tiny_llama, tmp_path, capsys):
    path = write_suite(tmp_path, llm_suite(tiny_llama, generate="{prompt_tokens: [8, 24], new_tokens: 10, max_seq_len: 32}"))
    code, err = check(capsys, path)
    assert code == 2 and "prompt_tokens + new_tokens (24 + 10) exceed max_seq_len 32" in err
