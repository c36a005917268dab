"""`hf:PATH` or `hf:ORG/NAME`: a Hugging Face transformers model, loaded offline.

PATH is a `save_pretrained` folder (config.json + weights), relative to the suite; ORG/NAME must
already be in the local Hugging Face cache (qbench never downloads). The class is the one the
config names (`architectures`, e.g. BertForSequenceClassification), else AutoModel, with the plain
"eager" attention so torch.export sees matmul/softmax. The model's inputs are positional, in its
forward's order (e.g. input_ids, attention_mask); a cell's output is the model's first output
(logits, or last_hidden_state for a bare encoder). A suite's `weights:` is a state_dict of the
transformers model itself.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from qbench.models.base import SOURCES
from qbench.hashing import file_sha256

_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


def _hub_name(ref: str) -> bool:
    return ref.count("/") == 1 and not ref.startswith((".", "/", "~"))


def _folder(ref: str) -> Path | None:
    """The model's folder: a local path, or the snapshot of ORG/NAME in the Hugging Face cache."""
    path = Path(ref).expanduser()
    if (path / "config.json").is_file():
        return path
    if _hub_name(ref):
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(ref, "config.json")
        if isinstance(cached, str):
            return Path(cached).parent
    return None


def _first_output(model):
    """The transformers model as a module returning one tensor (built here so importing qbench
    never imports torch)."""
    import torch

    from qbench.models.causal_lm import CACHE_HINT

    class FirstOutput(torch.nn.Module):
        cache_hint = CACHE_HINT  # what to try when its KV-cache export fails (task: text-generation)

        def __init__(self, inner):
            super().__init__()
            self.model = inner

        def forward(self, *inputs):
            return self.model(*inputs, return_dict=False)[0]

        def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
            return self.model.load_state_dict(state_dict, strict=strict, assign=assign)  # `weights:`

        def with_kv_cache(self, max_seq_len: int):
            """`task: text-generation`: the causal LM with a static KV cache (models/causal_lm.py)."""
            from qbench.models.causal_lm import generator_for

            return generator_for(self.model, max_seq_len)

    return FirstOutput(model).eval()


class HfSource:
    def resolve(self, ref: str, base_dir: Path) -> str:
        """A folder relative to the suite; ORG/NAME stays a hub name unless such a folder exists."""
        local = base_dir / ref
        if Path(ref).expanduser().is_absolute() or (_hub_name(ref) and not local.is_dir()):
            return ref
        return str(local)

    def check(self, ref: str) -> str | None:
        if importlib.util.find_spec("transformers") is None:
            return "transformers is not installed (pip install transformers)"
        if _folder(ref) is None:
            name = ref if _hub_name(ref) else Path(ref).name  # as the user wrote it (the path is resolved)
            return (f"no Hugging Face model at {ref} (a save_pretrained folder with config.json) and "
                    f"{name!r} is not in the local Hugging Face cache; qbench does not download models")
        return None

    def build(self, ref: str):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import transformers

        folder = _folder(ref)
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
        names = [a for a in (config.architectures or []) if hasattr(transformers, a)]
        cls = getattr(transformers, names[0]) if names else transformers.AutoModel
        model = cls.from_pretrained(folder, local_files_only=True, attn_implementation="eager")
        return _first_output(model)

    def fingerprint(self, ref: str) -> str:
        import importlib.metadata

        folder = _folder(ref)
        files = sorted({p for pattern in ("config.json", *_WEIGHT_FILES) for p in folder.glob(pattern)})
        digests = ",".join(f"{p.name}={file_sha256(p)[:16]}" for p in files)
        return f"hf-transformers-{importlib.metadata.version('transformers')}:{digests}"


SOURCES.register("hf")(HfSource())
