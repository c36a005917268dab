"""A tiny random-weight Llama (qbench/testing/tiny_llm.py), built offline once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    from qbench.testing.tiny_llm import make_tiny_llama

    # smaller than suites/llm.yaml's: one layer, so each export stays short on a busy machine
    return make_tiny_llama(tmp_path_factory.mktemp("llm") / "tiny-llama", num_hidden_layers=1)


@pytest.fixture(scope="session")
def tiny_llama_params(tmp_path_factory):
    """ExecuTorch's params.json of a one-layer tiny Llama, with a consolidated.00.pth checkpoint beside it."""
    from qbench.testing.tiny_llm import make_tiny_llama_params

    return make_tiny_llama_params(tmp_path_factory.mktemp("llm") / "tiny-llama-et", checkpoint=True, n_layers=1)


def llm_suite(model_dir, *, generate: str = "{prompt_tokens: 8, new_tokens: 6, max_seq_len: 32}",
              recipes: str = "[{name: fp32, kind: fp32}]", runner: str = "native", extra_model: str = "",
              trials: int = 2, source: str | None = None) -> str:
    """`source` (default hf:MODEL_DIR) may carry further keys of the model on its next lines (weights:)."""
    return f"""
        name: llm
        models:
          - name: tiny_llama
            source: {source or f"hf:{model_dir}"}
            task: text-generation
            generate: {generate}
        {extra_model}
        recipes: {recipes}
        devices: [host]
        benchmark: {{warmup: 1, warmup_seconds: 0, iterations: 2, min_seconds: 0, trials: {trials}, threads: 1,
                    runner: {runner}, quiet_start: {{max_wait_s: 0}}}}
        """
