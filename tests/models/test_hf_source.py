"""`hf:` sources: a real (tiny, random) BERT saved with save_pretrained, loaded offline, quantized,
lowered and measured like any other model; a missing folder is a suite error naming file and line."""

from __future__ import annotations

import json

import pytest
import torch

from qbench.cli import main
from qbench.models.loading import build_model, model_fingerprint
from qbench.suite.schema import ModelSpec
from tests.helpers import write_suite

transformers = pytest.importorskip("transformers")

SUITE = """
name: hf
models:
  - name: tiny_bert
    source: hf:{ref}
    inputs:
      - {{shape: [1, 16], dtype: int64, range: [0, 1000]}}   # input_ids
      - {{shape: [1, 16], dtype: int64, range: [1, 2]}}      # attention_mask
    task: other
recipes:
  - {{name: fp32, kind: fp32}}
  - {{name: int8-dynamic, kind: dynamic}}
  - {{name: int8-ptq, kind: ptq}}
calibration: {{kind: random, samples: 4, seed: 0}}
devices: [host]
benchmark: {{warmup: 1, warmup_seconds: 0, iterations: 3, min_seconds: 0, trials: 1, threads: 1}}
"""


def save_tiny_bert(folder, seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=128, max_position_embeddings=32)
    transformers.BertModel(config).save_pretrained(folder)
    return folder


def test_a_saved_transformers_model_runs_every_stage(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the run writes reports/<run>/ here, not into the checkout
    save_tiny_bert(tmp_path / "tiny-bert")
    suite = write_suite(tmp_path, SUITE.format(ref="tiny-bert"))
    code = main(["run", str(suite), "--db", str(tmp_path / "r.db"), "--json"])
    cells = {c["recipe"]: c for c in json.loads(capsys.readouterr().out)["cells"]}
    assert code == 0, cells
    assert cells["fp32"]["sqnr_db"] > 80
    # int8 works through BERT's integer position/mask arithmetic (see qbench/quantize/xnnpack.py)
    for name in ("int8-dynamic", "int8-ptq"):
        assert cells[name]["sqnr_db"] > 20 and cells[name]["pte_bytes"] < cells["fp32"]["pte_bytes"]
        assert cells[name]["delegated_ops"] > cells["fp32"]["delegated_ops"]


def test_output_is_the_models_first_output_and_weights_follow_the_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = save_tiny_bert(tmp_path / "m")
    spec = ModelSpec(name="m", source="hf:m", inputs=[{"shape": [1, 8], "dtype": "int64", "range": [0, 1000]}])
    model = build_model(spec)
    ids = torch.randint(0, 1000, (1, 8))
    reference = transformers.BertModel.from_pretrained(folder).eval()
    torch.testing.assert_close(model(ids), reference(ids).last_hidden_state)
    before = model_fingerprint(spec)["source"]
    save_tiny_bert(folder, seed=1)
    assert model_fingerprint(spec)["source"] != before  # new weights: a new cache key


def test_missing_model_is_a_suite_error_with_file_and_line(tmp_path, capsys):
    suite = write_suite(tmp_path, SUITE.format(ref="no-such-model"))
    code = main(["run", str(suite), "--check"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{suite}:4: models[0].source: no Hugging Face model at {tmp_path / 'no-such-model'} (a save_pretrained " \
           f"folder with config.json) and 'no-such-model' is not in the local Hugging Face cache; qbench does not " \
           f"download models" in err.replace("\n", " ")
