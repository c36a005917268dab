"""Sentences for the MiniLM suite: inputs are token ids + attention mask, labels are the embeddings
sentence-transformers itself computes with the fp32 model (so the score of a cell is how close its
.pte's embeddings are to the real thing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def sentences() -> list[str]:
    lines = (HERE / "sentences.txt").read_text().splitlines()
    return [s.strip() for s in lines if s.strip() and not s.startswith("#")]


def sentence_pairs():
    """(inputs, labels): inputs = [input_ids, attention_mask], int64 [N, SEQ_LEN]; labels float32 [N, 384]."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    model = _sibling("model")
    SEQ_LEN, model_dir = model.SEQ_LEN, model.model_dir
    texts = sentences()
    tok = AutoTokenizer.from_pretrained(str(model_dir()))
    enc = tok(texts, padding="max_length", truncation=True, max_length=SEQ_LEN, return_tensors="np")
    reference = SentenceTransformer(str(model_dir()), device="cpu")
    reference.max_seq_length = SEQ_LEN  # the same truncation as the inputs
    labels = reference.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    return [enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)], labels.astype(np.float32)


def _sibling(name: str):
    """model.py beside this file (the suite imports files by path, so this folder is not on sys.path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"minilm_example_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
