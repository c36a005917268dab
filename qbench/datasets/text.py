"""Local text for a causal LM's perplexity (`kind: text` in `datasets:`): a .txt file or a folder of
.txt files, tokenized with the model folder's `tokenizer.json` (HF tokenizers), cut into windows.

Windows: consecutive, non-overlapping runs of `max_seq_len` token ids from the start of the text
(stride = window); at most `windows:` of them; a remainder shorter than a window is not scored.
Each window scores its tokens after the first (docs/llm.md, "Perplexity").
"""

from __future__ import annotations

from pathlib import Path

TOKENIZER = "tokenizer.json"


def text_files(spec) -> list[Path]:
    root = Path(spec.path).expanduser()
    return sorted(root.glob("*.txt")) if root.is_dir() else [root]


def check_text(spec) -> str | None:
    """What is wrong with the files themselves, without a tokenizer (one line), else None."""
    root = Path(spec.path).expanduser()
    if not root.exists():
        return f"dataset {spec.name!r}: {root}: no such file or folder"
    if root.is_dir() and not text_files(spec):
        return f"dataset {spec.name!r}: {root} has no .txt files"
    return None


def read_text(spec) -> str:
    """The files' text, in name order, joined by blank lines (undecodable bytes replaced)."""
    return "\n\n".join(p.read_text(encoding="utf-8", errors="replace") for p in text_files(spec))


def text_digest(spec) -> str:
    import hashlib

    return hashlib.sha256(read_text(spec).encode("utf-8")).hexdigest()


def tokenizer_file(model_folder) -> Path:
    return Path(model_folder).expanduser() / TOKENIZER


def token_ids(spec, model_folder) -> list[int]:
    """The whole text's token ids under the folder's tokenizer (no special tokens added)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file(model_folder)))
    return tokenizer.encode(read_text(spec), add_special_tokens=False).ids


def tokenizer_vocab(model_folder) -> int:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tokenizer_file(model_folder))).get_vocab_size(with_added_tokens=True)


def windows(ids: list[int], window: int, limit: int) -> list[list[int]]:
    """Up to `limit` consecutive non-overlapping windows of `window` ids."""
    count = min(len(ids) // window, limit)
    return [ids[k * window:(k + 1) * window] for k in range(count)]


def text_problem(spec, model_folder, window: int, model_vocab: int | None) -> str | None:
    """Why this text cannot be scored by this model (no tokenizer, too short, a tokenizer larger
    than the model's vocabulary), else None; one line each."""
    folder = Path(model_folder).expanduser()
    if not tokenizer_file(folder).is_file():
        return (f"dataset {spec.name!r} needs the model's tokenizer: {folder} has no {TOKENIZER}; "
                "save the model's tokenizer there (tokenizer.save_pretrained(FOLDER))")
    try:
        vocab = tokenizer_vocab(folder)
        count = len(token_ids(spec, folder))
    except Exception as exc:
        return f"dataset {spec.name!r}: cannot tokenize with {tokenizer_file(folder)}: {str(exc).splitlines()[0][:200]}"
    if model_vocab is not None and vocab > model_vocab:
        return (f"{tokenizer_file(folder)} has {vocab} tokens but the model's vocabulary is {model_vocab}: "
                "it is not this model's tokenizer; put the model's own tokenizer.json in the folder")
    if count < window:
        return (f"dataset {spec.name!r}: {spec.path} is {count} tokens, shorter than one window of "
                f"{window} (generate.max_seq_len); give more text or lower max_seq_len")
    return None
