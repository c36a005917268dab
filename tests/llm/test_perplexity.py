"""Perplexity with a `kind: text` data set: both runners' teacher-forced scoring (scoring mode)
equals the host runtime's NLLs on the same .pte, and the fp32 program's equals the fp32 eager
model's; bad inputs are refused before the first cell, one line each."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from qbench.cli import main
from tests.helpers import qbench as qbench_cli
from tests.helpers import write_suite
from tests.llm.conftest import llm_suite
from tests.llm.test_generation_runners import native, runner_argv  # noqa: F401 (fixture)

TEXT = Path(__file__).resolve().parents[2] / "suites" / "data" / "llm-text.txt"
WINDOW = 32


@pytest.fixture(scope="module")
def tokenized(tiny_llama, tmp_path_factory):
    """The tiny Llama's folder with a word-level tokenizer learnt from the suite's text."""
    from qbench.testing.tiny_llm import make_tiny_llama

    folder = tmp_path_factory.mktemp("tok") / "tiny-llama"
    shutil.copytree(tiny_llama, folder)
    return make_tiny_llama(folder, text=TEXT)


@pytest.fixture(scope="module")
def windows(tokenized):
    from qbench.datasets.text import token_ids, windows
    from qbench.suite.schema import TextDataset

    return windows(token_ids(TextDataset(kind="text", name="t", path=str(TEXT)), tokenized), WINDOW, 3)


@pytest.fixture(scope="module")
def program(tokenized, tmp_path_factory):
    from qbench.export.generation import lower_generator
    from qbench.models.causal_lm import generation_module, load_causal_lm

    path = tmp_path_factory.mktemp("ppl") / "fp32.pte"
    lower_generator(generation_module(load_causal_lm(tokenized), WINDOW), 8, WINDOW, path)
    return path


def score(argv, program, tokens: Path, outputs: Path) -> dict:
    proc = subprocess.run([*argv, "--model", str(program), "--score-tokens", str(tokens), "--window", str(WINDOW),
                           "--outputs", str(outputs), "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["native", "python"])
def test_the_runners_score_as_the_host_runtime_and_the_eager_model(kind, native, program, windows, tokenized,  # noqa: F811
                                                                    tmp_path):
    from executorch.runtime import Runtime

    from qbench.collectors.generation_quality import method_step
    from qbench.collectors.perplexity import eager_nlls, step_nlls, write_tokens
    from qbench.models.causal_lm import load_causal_lm

    write_tokens(tmp_path, windows)
    report = score(runner_argv(kind, native), program, tmp_path / "perplexity_tokens.bin", tmp_path / "nll.bin")
    gen = report["generation"]
    assert gen["mode"] == "score" and gen["windows"] == 3 and gen["scored_tokens"] == 3 * (WINDOW - 1)
    assert len(report["samples_ns"]) == 3 * (WINDOW - 1)  # every step timed
    device = np.fromfile(tmp_path / "nll.bin", dtype=np.float32)
    host = np.asarray(step_nlls(method_step(Runtime.get().load_program(str(program)).load_method("forward")), windows))
    eager = np.asarray(eager_nlls(load_causal_lm(tokenized), windows))
    np.testing.assert_allclose(device, host, atol=1e-3)
    np.testing.assert_allclose(device, eager, atol=1e-2)
    assert gen["nll_sum"] == pytest.approx(float(host.sum()), rel=1e-4)


@pytest.mark.parametrize("kind", ["native", "python"])
def test_a_token_outside_the_vocabulary_is_one_line(kind, native, program, tmp_path):  # noqa: F811
    np.full(WINDOW, 5000, dtype="<i8").tofile(tmp_path / "bad.bin")
    proc = subprocess.run([*runner_argv(kind, native), "--model", str(program), "--score-tokens",
                           str(tmp_path / "bad.bin"), "--window", str(WINDOW), "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "score token id 5000 is outside the program's vocabulary (1024)" in proc.stderr.strip().splitlines()[-1]


def text_suite(model_dir, text: Path, max_seq_len: int = 32) -> str:
    return llm_suite(model_dir, generate=f"{{prompt_tokens: 8, new_tokens: 6, max_seq_len: {max_seq_len}}}",
                     extra_model=f"    dataset: prose\n        datasets: [{{name: prose, kind: text, path: {text}}}]")


def check(capsys, path) -> tuple[int, str]:
    code = main(["run", str(path), "--check"])
    return code, capsys.readouterr().err


def test_a_good_text_suite_passes_the_check(tokenized, tmp_path, capsys):
    assert check(capsys, write_suite(tmp_path, text_suite(tokenized, TEXT)))[0] == 0


def test_no_tokenizer_in_the_folder_is_one_line(tiny_llama, tmp_path, capsys):
    code, err = check(capsys, write_suite(tmp_path, text_suite(tiny_llama, TEXT)))
    assert code == 2
    assert (f"models[0].dataset: dataset 'prose' needs the model's tokenizer: {tiny_llama} has no tokenizer.json; "
            "save the model's tokenizer there") in err


def test_a_text_shorter_than_one_window_is_one_line(tokenized, tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("a benchmark is a promise")
    code, err = check(capsys, write_suite(tmp_path, text_suite(tokenized, short)))
    assert code == 2
    assert (f"models[0].dataset: dataset 'prose': {short} is 5 tokens, shorter than one window of 32 "
            "(generate.max_seq_len); give more text or lower max_seq_len") in err


def test_a_tokenizer_larger_than_the_model_is_one_line(tokenized, tmp_path, capsys):
    from qbench.testing.tiny_llm import write_word_tokenizer

    folder = tmp_path / "big"
    shutil.copytree(tokenized, folder)
    words = " ".join(f"w{i}" for i in range(2000))
    write_word_tokenizer(folder, words, 2000)
    code, err = check(capsys, write_suite(tmp_path, text_suite(folder, TEXT)))
    assert code == 2
    assert (f"models[0].dataset: {folder}/tokenizer.json has 2000 tokens but the model's vocabulary is 1024: it is "
            "not this model's tokenizer; put the model's own tokenizer.json in the folder") in err


def test_a_text_set_on_a_model_that_does_not_generate_is_refused(tmp_path, capsys):
    path = write_suite(tmp_path, f"""
        name: s
        models:
          - {{name: m, source: "python:{tmp_path}/m.py:make", inputs: [{{shape: [1, 4]}}], dataset: prose}}
        datasets: [{{name: prose, kind: text, path: {TEXT}}}]
        recipes: [{{name: fp32, kind: fp32}}]
        devices: [host]
        """)
    (tmp_path / "m.py").write_text("import torch\ndef make():\n    return torch.nn.Linear(4, 2)\n")
    code, err = check(capsys, path)
    assert code == 2
    assert "models[0].dataset: dataset 'prose' is kind text: a `kind: text` data set (perplexity) goes with" in err


@pytest.mark.slow
def test_qbench_run_reports_the_device_perplexity_beside_fp32_eager(tokenized, tmp_path):
    from qbench.cli.summary import render_plain

    suite = write_suite(tmp_path, text_suite(tokenized, TEXT).replace(
        "recipes: [{name: fp32, kind: fp32}]",
        "recipes: [{name: fp32, kind: fp32}, {name: 8da4w, kind: int4-weight, group_size: 32}]").replace(
        "trials: 2", "trials: 1"))
    proc = qbench_cli("run", suite, "--db", tmp_path / "q.db", "--json", "--reports-dir", tmp_path / "reports",
                      cwd=tmp_path, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    gens = {c["recipe"]: c["generation"] for c in doc["cells"]}
    for gen in gens.values():
        assert gen["perplexity_from"] == "device"
        assert gen["perplexity_tokens"] == 8 * (WINDOW - 1)  # the text holds more than the default 8 windows
        assert gen["perplexity"] > 1
    assert gens["fp32"]["perplexity"] == pytest.approx(gens["fp32"]["perplexity_fp32_eager"], rel=1e-3)
    assert gens["8da4w"]["perplexity_fp32_eager"] == gens["fp32"]["perplexity_fp32_eager"]
    assert "Perplexity · host" in Path(doc["report"]).read_text()
    head, *rows = render_plain(doc).splitlines()[1:]
    assert "perplexity" in head and any("(fp32 eager " in r for r in rows)
