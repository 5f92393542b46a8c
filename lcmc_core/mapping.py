"""CoMC's inference side: cross-modal mapping of image embeddings and the global + local scoring.

The classifier is trained on CLIP *text* embeddings only. Image embeddings live elsewhere on the
sphere (the modality gap), so CoMC moves each image embedding ``f`` towards the text modality
with a *text memory* ``T`` (M x D, rows L2-normalised; the official code uses one prompt embedding
per class, i.e. M = C)::

    m  = softmax(f @ T.T / temperature) @ T      # attention over the memory
    m  = m / |m|
    f' = alpha * f + (1 - alpha) * m             # NOT renormalised

with ``temperature = 0.01`` (CLIP's logit scale 100) and ``alpha = 0.7`` in the official code.

:func:`score_images` applies the classifier to the mapped global embedding (one per image) and to
the mapped local embeddings (P per image, e.g. the 7 x 7 = 49 positions of a ResNet-50 map),
max-pools the local logits over positions, and merges
``(1 - local_weight) * global + local_weight * local`` (official: 0.5 / 0.5, raw logits, no
sigmoid). :func:`mean_shift` is the C3 "collapse" baseline (subtract a modality mean,
re-normalise) to compare the mapping with.

Everything here is inference: it runs under ``torch.no_grad()`` and returns tensors without
autograd history. Inputs may be torch tensors or numpy arrays (converted with
``torch.as_tensor``); results are torch tensors on the device of the embeddings, except
:func:`mean_shift`, which returns the type it was given.
"""
from __future__ import annotations

import numbers
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["cross_modal_map", "score_images", "mean_shift", "DEFAULT_CHUNK_ELEMENTS"]

#: With ``chunk_size=None`` the rows are processed in chunks of ``DEFAULT_CHUNK_ELEMENTS // M``,
#: so each chunk's similarity matrix holds at most ~16.8 M floats (64 MiB in float32).
DEFAULT_CHUNK_ELEMENTS = 2 ** 24


def _as_float_tensor(x, name: str) -> torch.Tensor:
    """Convert to a floating torch tensor or raise a clear error."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(np.asarray(x))
        except Exception as exc:
            raise TypeError(f"{name}: expected a torch tensor or numpy array, got {type(x).__name__}") from exc
    if not torch.is_floating_point(x):
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    return x


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and bool(np.isfinite(x))


def _check_temperature_alpha(temperature: float, alpha: float) -> None:
    if not (_is_real(temperature) and temperature > 0):
        raise ValueError(f"temperature: expected a finite number > 0, got {temperature!r}")
    if not (_is_real(alpha) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha!r}")


def cross_modal_map(emb, memory, temperature: float = 0.01, alpha: float = 0.7,
                    chunk_size: int | None = None) -> torch.Tensor:
    """Map embeddings ``emb`` (..., D) towards the text modality using the text ``memory`` (M, D).

    Returns ``alpha * emb + (1 - alpha) * normalize(softmax(emb @ memory.T / temperature) @ memory)``
    with the shape and dtype of ``emb`` (not renormalised). ``emb`` is expected L2-normalised and
    ``memory`` to have unit rows, as in the official code; neither is normalised here. Rows are
    processed ``chunk_size`` at a time over the flattened leading dims, so the extra memory is
    about 2 x chunk_size x M floats (default: chunk so that chunk x M <= 2**24). ``alpha = 1``
    returns ``emb`` unchanged.
    """
    emb = _as_float_tensor(emb, "emb")
    memory = _as_float_tensor(memory, "memory")
    if emb.ndim < 1:
        raise ValueError("emb: expected shape (..., D), got a scalar")
    if memory.ndim != 2 or memory.shape[0] == 0:
        raise ValueError(f"memory: expected a 2-D (M, D) tensor with M >= 1, got shape {tuple(memory.shape)}")
    if emb.shape[-1] != memory.shape[1]:
        raise ValueError(f"emb: last dimension {emb.shape[-1]} does not match memory's D = {memory.shape[1]}")
    _check_temperature_alpha(temperature, alpha)
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_CHUNK_ELEMENTS // memory.shape[0])
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive integer or None, got {chunk_size!r}")

    memory = memory.to(device=emb.device, dtype=emb.dtype)
    flat = emb.reshape(-1, emb.shape[-1])
    out = torch.empty_like(flat)
    with torch.no_grad():
        for start in range(0, flat.shape[0], int(chunk_size)):
            x = flat[start:start + chunk_size]
            logits = x @ memory.T
            logits.div_(temperature)                          # in place: one chunk x M buffer
            attn = torch.softmax(logits, dim=-1)
            del logits
            mapped = F.normalize(attn @ memory, dim=-1)
            out[start:start + chunk_size] = alpha * x + (1.0 - alpha) * mapped
    return out.reshape(emb.shape)


def _upcast_half(x: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 to float32 (the mapping's softmax at temperature 0.01 needs the range); others unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _classifier_fn(classifier) -> Callable[[torch.Tensor], torch.Tensor]:
    """Turn a (C, D) weight matrix or a callable (e.g. an nn.Module) into ``x -> logits``."""
    if callable(classifier) and not isinstance(classifier, (torch.Tensor, np.ndarray)):
        return classifier
    weight = _as_float_tensor(classifier, "classifier_weight_or_fn")
    if weight.ndim != 2:
        raise ValueError("classifier_weight_or_fn: expected a (C, D) weight matrix or a callable, "
                         f"got a tensor of shape {tuple(weight.shape)}")
    return lambda x: x @ weight.to(device=x.device, dtype=x.dtype).T


def score_images(classifier_weight_or_fn, global_emb, local_emb=None, memory=None,
                 temperature: float = 0.01, alpha: float = 0.7, local_weight: float = 0.5,
                 map_global: bool = True, map_local: bool = True,
                 image_chunk: int = 256) -> dict[str, torch.Tensor | None]:
    """Score images with a text-trained classifier: CoMC's mapped global + max-pooled local logits.

    ``classifier_weight_or_fn`` is a (C, D) weight (logits = x @ W.T, bias-free as in CoMC) or
    any callable mapping (..., D) to (..., C), e.g. a :class:`~lcmc_core.classifier.TextClassifier`.
    ``global_emb`` is (N, D); ``local_emb`` is (N, P, D) or None. With ``memory=None`` nothing is
    mapped; otherwise the global / local embeddings are passed through :func:`cross_modal_map`
    when ``map_global`` / ``map_local`` is true. Returns a dict of (N, C) tensors:
    ``"global"``, ``"local"`` (max over the P positions; None without ``local_emb``) and
    ``"merged"`` = ``(1 - local_weight) * global + local_weight * local`` (just ``global`` when
    there is no local branch). Local embeddings are processed ``image_chunk`` images at a time.
    """
    fn = _classifier_fn(classifier_weight_or_fn)
    g = _as_float_tensor(global_emb, "global_emb")
    if g.ndim != 2:
        raise ValueError(f"global_emb: expected shape (N, D), got {tuple(g.shape)}")
    n, d = g.shape
    loc = None
    if local_emb is not None:
        loc = _as_float_tensor(local_emb, "local_emb")
        if loc.ndim != 3 or loc.shape[0] != n or loc.shape[2] != d or loc.shape[1] == 0:
            raise ValueError(f"local_emb: expected shape (N, P, D) = ({n}, P >= 1, {d}), got {tuple(loc.shape)}")
    if not (_is_real(local_weight) and 0.0 <= local_weight <= 1.0):
        raise ValueError(f"local_weight: expected a number in [0, 1], got {local_weight!r}")
    if isinstance(image_chunk, bool) or not isinstance(image_chunk, (int, np.integer)) or image_chunk < 1:
        raise ValueError(f"image_chunk: expected a positive integer, got {image_chunk!r}")
    _check_temperature_alpha(temperature, alpha)
    if memory is not None:
        memory = _as_float_tensor(memory, "memory")

    with torch.no_grad():
        g = _upcast_half(g)
        if memory is not None and map_global:
            g = cross_modal_map(g, memory, temperature, alpha)
        global_logits = fn(g)
        if global_logits.ndim != 2 or global_logits.shape[0] != n:
            raise ValueError("classifier_weight_or_fn: expected (N, D) -> (N, C) logits, "
                             f"got shape {tuple(global_logits.shape)}")
        local_logits = None
        if loc is not None:
            parts = []
            for start in range(0, n, int(image_chunk)):
                x = _upcast_half(loc[start:start + image_chunk])  # caches store local features in float16
                if memory is not None and map_local:
                    x = cross_modal_map(x, memory, temperature, alpha)
                parts.append(fn(x).amax(dim=1))
            local_logits = torch.cat(parts, dim=0)
            merged = (1.0 - local_weight) * global_logits + local_weight * local_logits
        else:
            merged = global_logits
    return {"global": global_logits, "local": local_logits, "merged": merged}


def mean_shift(emb, modality_mean, renormalize: bool = True):
    """Subtract a modality mean from embeddings (..., D) and re-normalise: the C3 "collapse" baseline.

    Why re-normalise: for a bias-free linear classifier W, ``(x - mu) @ W.T = x @ W.T - mu @ W.T``,
    i.e. without re-normalisation the shift only adds the same constant to every image's logit of
    a class. Each class's ranking of the images, hence AP and mAP, cannot change (top-k F1 can).
    C3 re-normalises after subtracting, which rescales each image differently. Returns the type
    (numpy or torch) of ``emb``. Rows that become zero stay zero.
    """
    is_numpy = not isinstance(emb, torch.Tensor)
    x = _as_float_tensor(emb, "emb")
    mu = _as_float_tensor(modality_mean, "modality_mean")
    if x.ndim < 1:
        raise ValueError("emb: expected shape (..., D), got a scalar")
    if mu.ndim != 1 or mu.shape[0] != x.shape[-1]:
        raise ValueError(f"modality_mean: expected shape ({x.shape[-1]},), got {tuple(mu.shape)}")
    out = x - mu.to(device=x.device, dtype=x.dtype)
    if renormalize:
        out = F.normalize(out, dim=-1)
    return out.numpy() if is_numpy else out
