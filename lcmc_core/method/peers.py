"""The training-free peers of CoMC's mapping, as functions on the same embeddings and scores.

Each function transforms embeddings or scores that the rest of the method already computes, so
every peer is scored on the same cached features by the same metrics:

* **DeCap** (Li et al., ICLR 2023, "DeCap: Decoding CLIP Latents for Zero-Shot Captioning via
  Text-Only Training"): project an image embedding onto a text memory, ``softmax(f T^T / tau) T``;
  that is CoMC's :func:`~lcmc_core.method.mapping.cross_modal_map` with ``alpha = 0`` (nothing of
  the image embedding kept), so it needs no function of its own: :data:`DECAP_ALPHA`.
* **C3 collapse** (Zhang et al., ICLR 2024, "Connect, Collapse, Corrupt"): subtract each
  modality's mean and re-normalise, :func:`~lcmc_core.method.mapping.mean_shift`.
* **I0T post-hoc** (An et al., ACL 2025, "I0T: Embedding Standardization Method Towards Zero
  Modality Gap"), its training-free variant ``I0T_post``: standardise each modality with its own
  statistics, ``normalize((x - mean_modality) / std_modality)``; :func:`standardize_modality`.
  The public code subtracts the per-modality mean and re-normalises (``std=None`` here, the
  default); dividing by a per-dimension std as well is the option ``std=...``.
* **SPARC's score standardisation** (Miller et al., CVPR 2025, "SPARC: Score Prompting and
  Adaptive Fusion for Zero-Shot Multi-Label Recognition in Vision-Language Models"): on raw
  scores, a z-score of each image's scores over the classes, then of each class's scores over the
  images (``ddof = 1``, no epsilon, as its public code); :func:`sparc_standardize`. The second
  step is an affine map of each class column, so on its own it cannot change AP: the gain comes
  from the per-image step, which removes each image's overall score level and spread.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import as_tensor
from .mapping import mean_shift

__all__ = ["DECAP_ALPHA", "standardize_modality", "sparc_standardize"]

#: CoMC's mapping with this ``alpha`` is DeCap's projection onto the text memory.
DECAP_ALPHA = 0.0


def standardize_modality(emb, mean, std=None, renormalize: bool = True):
    """I0T's post-hoc standardisation of one modality: ``normalize((emb - mean) / std)`` over the last dim.

    ``mean`` (D,) is the modality's mean embedding (images: the evaluated images' mean; text: the
    text corpus's mean), ``std`` (D,) an optional per-dimension std (None: centring only, as I0T's
    public post-hoc code). Returns the type (numpy or torch) of ``emb``.
    """
    is_numpy = not isinstance(emb, torch.Tensor)
    x = as_tensor(emb, "emb", floating=True)
    mu = as_tensor(mean, "mean", floating=True)
    if x.ndim < 1 or mu.ndim != 1 or mu.shape[0] != x.shape[-1]:
        raise ValueError(f"mean: expected shape ({x.shape[-1] if x.ndim else '?'},), got {tuple(mu.shape)}")
    if std is None:                                 # centring only: C3's collapse, the same function
        return mean_shift(emb, mean, renormalize=renormalize)
    sd = as_tensor(std, "std", floating=True)
    if sd.shape != mu.shape or not bool((sd > 0).all()):
        raise ValueError(f"std: expected shape {tuple(mu.shape)} with every entry > 0")
    out = (x - mu.to(device=x.device, dtype=x.dtype)) / sd.to(device=x.device, dtype=x.dtype)
    if renormalize:
        out = F.normalize(out, dim=-1)
    return out.numpy() if is_numpy else out


def sparc_standardize(scores) -> np.ndarray:
    """SPARC's score standardisation of an (N, C) score matrix: per-image z-score over classes, then per-class over images.

    ``z1[i, c] = (s[i, c] - mean_c s[i, :]) / std_c s[i, :]``, then ``z[i, c] = (z1[i, c] -
    mean_i z1[:, c]) / std_i z1[:, c]``, both stds with ``ddof = 1``. Needs N >= 2, C >= 2 and no
    constant row or column (the z-score is undefined there; an error names it).
    """
    s = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    if s.ndim != 2 or s.shape[0] < 2 or s.shape[1] < 2:
        raise ValueError(f"scores: expected an (N, C) matrix with N >= 2 and C >= 2, got shape {s.shape}")
    s = s.astype(np.float64)
    if not np.isfinite(s).all():
        raise ValueError("scores: expected finite values, found NaN or inf")
    row_sd = s.std(axis=1, ddof=1, keepdims=True)
    if (row_sd == 0).any():
        raise ValueError(f"scores: image {int(np.flatnonzero(row_sd[:, 0] == 0)[0])} has the same score for "
                         "every class; its z-score is undefined")
    z = (s - s.mean(axis=1, keepdims=True)) / row_sd
    col_sd = z.std(axis=0, ddof=1, keepdims=True)
    if (col_sd == 0).any():
        raise ValueError(f"scores: class {int(np.flatnonzero(col_sd[0] == 0)[0])} has the same standardised score "
                         "for every image; its z-score is undefined")
    return (z - z.mean(axis=0, keepdims=True)) / col_sd
