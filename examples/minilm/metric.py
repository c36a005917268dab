"""Mean cosine similarity between a cell's sentence embeddings and sentence-transformers' fp32 ones."""

import torch


def mean_cosine(outputs: torch.Tensor, labels: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(outputs.float(), labels.float(), dim=1).mean().item()
