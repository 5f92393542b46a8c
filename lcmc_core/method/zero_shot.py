"""CLIP's zero-shot classifier and the mapping's text memory, from text embeddings (tensors in, tensors out)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["zero_shot_classifier", "text_memory"]


def zero_shot_classifier(prompt_emb, n_classes: int | None = None) -> torch.Tensor:
    """CLIP's zero-shot weights (C x D): per class, the normalised mean of its L2-normalised prompt embeddings.

    ``prompt_emb`` is (C, T, D) or a list of (T_c, D), one entry per class, rows already unit
    vectors (as :func:`~lcmc_core.images.features.encode_texts` returns them).
    """
    if isinstance(prompt_emb, torch.Tensor) or isinstance(prompt_emb, np.ndarray):
        e = prompt_emb if isinstance(prompt_emb, torch.Tensor) else torch.as_tensor(prompt_emb)
        if e.ndim != 3:
            raise ValueError(f"prompt_emb: expected (C, T, D) or a list of (T, D), got shape {tuple(e.shape)}")
        prompt_emb = list(e)
    rows = [(e if isinstance(e, torch.Tensor) else torch.as_tensor(np.asarray(e))).float() for e in prompt_emb]
    if not rows or any(r.ndim != 2 or r.shape[0] == 0 for r in rows):
        raise ValueError("prompt_emb: expected one non-empty (T, D) matrix of prompt embeddings per class")
    weights = torch.stack([r.mean(0) for r in rows])
    if n_classes is not None and weights.shape[0] != n_classes:
        raise ValueError(f"prompt_emb: expected {n_classes} classes, got {weights.shape[0]}")
    return F.normalize(weights, dim=-1)


def text_memory(kind: str, prompt_emb: torch.Tensor, corpus_emb: torch.Tensor) -> torch.Tensor:
    """The mapping's text memory: class prompt embeddings ("prompts", official) or the corpus embeddings ("corpus")."""
    if kind == "prompts":
        return prompt_emb
    if kind == "corpus":
        return corpus_emb
    raise ValueError(f"memory={kind!r}: expected 'prompts' or 'corpus'")
