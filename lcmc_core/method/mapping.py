"""CoMC's inference side: cross-modal mapping of image embeddings and the global + local scoring.

The classifier is trained on CLIP *text* embeddings only. Image embeddings live elsewhere on the
sphere (the modality gap), so CoMC moves each image embedding ``f`` towards the text modality
with a *text memory* ``T`` (M x D, rows L2-normalised; the official code uses one prompt embedding
per class, i.e. M = C)::

    m  = softmax(f @ T.T / temperature) @ T      # attention over the memory
    m  = m / |m|
    f' = alpha * f + (1 - alpha) * m             # NOT renormalised

with ``temperature = 0.01`` (CLIP's logit scale 100) and ``alpha = 0.7`` in the official code (the defaults
of the estimator :class:`~lcmc_core.method.comc.CoMC`, which owns every hyperparameter: the functions
here take them as arguments).
``alpha = 0`` is DeCap's projection onto the text memory (ICLR 2023).

A large memory (every corpus sentence, ~100k rows) makes the exact mapping expensive:
``top_k`` keeps, per query, the ``k`` memory rows of highest similarity (found exactly) and
renormalises the softmax over them. The error this makes is bounded per query (see
:func:`cross_modal_map`); at temperature 0.01 the bound is tiny whenever the k-th similarity is a
few hundredths below the best one.

:func:`score_images` applies the classifier to the mapped global embedding (one per image) and to
the mapped local embeddings (P per image, e.g. the 7 x 7 = 49 positions of a ResNet-50 map),
pools the local logits over positions (max, as CoMC; or softmax-weighted, as the official dense
zero-shot and TaI-DPT), and merges ``(1 - local_weight) * global + local_weight * local``
(official: 0.5 / 0.5, raw logits, no sigmoid). Local embeddings are streamed ``image_chunk`` images
at a time from a tensor or a :class:`~lcmc_core.images.features.FeatureFile`, so memory does not grow
with their size, and several classifiers are scored in the same pass. :func:`mean_shift` is the C3
"collapse" baseline (subtract a modality mean, re-normalise); :func:`embedding_mean` computes a
mean over (streamed) local embeddings.

Everything here is inference: it runs under ``torch.no_grad()`` and returns tensors without
autograd history. Inputs may be torch tensors or numpy arrays (converted with
``torch.as_tensor``); results are torch tensors on CPU, except :func:`cross_modal_map` (on the
device of the embeddings) and :func:`mean_shift` (the type it was given).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import as_tensor
from ..memory import release_freed_memory

__all__ = ["cross_modal_map", "score_images", "mean_shift", "embedding_mean", "DEFAULT_CHUNK_ELEMENTS",
           "LOCAL_POOLS", "UNIT_NORM_TOLERANCE", "check_unit_rows"]

#: With ``chunk_size=None`` the rows are processed in chunks of ``DEFAULT_CHUNK_ELEMENTS // M``,
#: so each chunk's similarity matrix holds at most ~16.8 M floats (64 MiB in float32).
DEFAULT_CHUNK_ELEMENTS = 2 ** 24
LOCAL_POOLS = ("max", "softmax")
_GLOBAL_CHUNK = 8192  # global embeddings are scored in blocks of this many rows
#: How far a row's norm may be from 1 for ``check_unit`` (float16 local features are within ~1e-3).
UNIT_NORM_TOLERANCE = 1e-2


def _as_float_tensor(x, name: str) -> torch.Tensor:
    """Convert to a floating torch tensor or raise a clear error."""
    return as_tensor(x, name, floating=True)


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and bool(np.isfinite(x))


def _is_count(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _check_temperature_alpha(temperature: float, alpha: float) -> None:
    if not (_is_real(temperature) and temperature > 0):
        raise ValueError(f"temperature: expected a finite number > 0, got {temperature!r}")
    if not (_is_real(alpha) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha!r}")


def cross_modal_map(emb, memory, temperature: float, alpha: float,
                    chunk_size: int | None = None, top_k: int | None = None, return_bound: bool = False):
    """Map embeddings ``emb`` (..., D) towards the text modality using the text ``memory`` (M, D).

    Returns ``alpha * emb + (1 - alpha) * normalize(softmax(emb @ memory.T / temperature) @ memory)``
    with the shape and dtype of ``emb`` (not renormalised). ``emb`` is expected L2-normalised and
    ``memory`` to have unit rows, as in the official code; neither is normalised here. Rows are
    processed ``chunk_size`` at a time over the flattened leading dims (default: chunk so that
    chunk x M <= 2**24). ``alpha = 1`` returns ``emb`` unchanged.

    ``top_k`` (< M) keeps the k most similar memory rows of each query (exactly, by
    ``torch.topk``) and renormalises the softmax over them. With ``return_bound=True`` the result is
    ``(mapped, bound)``, ``bound`` (leading dims of ``emb``) an upper bound of
    ``|mapped_exact - mapped|`` per row: with ``delta`` the softmax mass left out,
    ``delta <= (M - k) exp((s_k - s_1) / temperature) / sum_{i<=k} exp((s_i - s_1) / temperature)``
    (``s_1 >= ... >= s_k`` the kept similarities), the unnormalised mix moves by at most
    ``2 delta``, its direction by at most ``4 delta / |m_k|``, and the mapped embedding by
    ``(1 - alpha)`` times that (never more than ``2 (1 - alpha)``). Without ``top_k`` the bound is 0.
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
    m_rows = memory.shape[0]
    if top_k is not None and (not _is_count(top_k) or top_k < 1):
        raise ValueError(f"top_k: expected a positive integer or None, got {top_k!r}")
    k = None if top_k is None or top_k >= m_rows else int(top_k)
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_CHUNK_ELEMENTS // m_rows)
    if not _is_count(chunk_size) or chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive integer or None, got {chunk_size!r}")

    memory = memory.to(device=emb.device, dtype=emb.dtype)
    flat = emb.reshape(-1, emb.shape[-1])
    out = torch.empty_like(flat)
    bound = torch.zeros(flat.shape[0], dtype=torch.float32, device=emb.device)
    with torch.no_grad():
        for start in range(0, flat.shape[0], int(chunk_size)):
            x = flat[start:start + chunk_size]
            logits = x @ memory.T
            if k is None:
                logits.div_(temperature)                      # in place: one chunk x M buffer
                attn = torch.softmax(logits, dim=-1)
                del logits
                mixed = attn @ memory
            else:
                top, idx = torch.topk(logits, k, dim=-1)       # exact: the k largest similarities
                del logits
                z = (top - top[:, :1]) / temperature           # <= 0, first column 0
                attn = torch.softmax(z, dim=-1)
                mixed = torch.einsum("qk,qkd->qd", attn, memory[idx])
                kept = torch.exp(z).sum(dim=-1)                # sum_{i<=k} exp((s_i - s_1) / t) >= 1
                delta = ((m_rows - k) * torch.exp(z[:, -1]) / kept).clamp(max=1.0)
                norm = mixed.norm(dim=-1).clamp(min=1e-12)
                direction = torch.minimum(4 * delta / norm, torch.full_like(norm, 2.0))
                bound[start:start + chunk_size] = ((1.0 - alpha) * direction).float()
            mapped = F.normalize(mixed, dim=-1)
            del mixed
            # alpha x + (1 - alpha) mapped, written into out: the same products and sum, two fewer chunk-sized buffers
            torch.add(alpha * x, mapped.mul_(1.0 - alpha), out=out[start:start + chunk_size])
            del mapped
    out = out.reshape(emb.shape)
    if return_bound:
        return out, bound.reshape(emb.shape[:-1])
    return out


def _upcast_half(x: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 to float32 (the mapping's softmax at temperature 0.01 needs the range); others unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _classifier_fn(classifier, name: str = "classifier_weight_or_fn") -> tuple[Callable, torch.Tensor | None]:
    """``(x -> logits, weight or None)`` from a (C, D) weight matrix or a callable (e.g. an nn.Module)."""
    if callable(classifier) and not isinstance(classifier, (torch.Tensor, np.ndarray)):
        weight = getattr(classifier, "weight", None)
        return classifier, (weight.detach() if isinstance(weight, torch.Tensor) and weight.ndim == 2 else None)
    weight = _as_float_tensor(classifier, name)
    if weight.ndim != 2:
        raise ValueError(f"{name}: expected a (C, D) weight matrix or a callable, got a tensor of shape "
                         f"{tuple(weight.shape)}")
    return (lambda x: x @ weight.to(device=x.device, dtype=x.dtype).T), weight


def _row_store(x) -> bool:
    """A tensor, or an object read by row slices (``shape``, a torch ``dtype``, ``x[a:b]`` -> tensor; a FeatureFile)."""
    return isinstance(x, torch.Tensor) or (hasattr(x, "shape") and isinstance(getattr(x, "dtype", None), torch.dtype)
                                           and hasattr(x, "__getitem__"))


def _check_local(local_emb, n: int, d: int):
    if local_emb is None:
        return None
    loc = local_emb if _row_store(local_emb) else _as_float_tensor(local_emb, "local_emb")
    shape = tuple(loc.shape)
    if len(shape) != 3 or shape[0] != n or shape[2] != d or shape[1] == 0:
        raise ValueError(f"local_emb: expected shape (N, P, D) = ({n}, P >= 1, {d}), got {shape}")
    if not loc.dtype.is_floating_point:
        raise TypeError(f"local_emb: expected floating-point embeddings, got dtype {loc.dtype}")
    return loc


def _pool(logits: torch.Tensor, how: str, temperature: float) -> torch.Tensor:
    """Pool (B, P, C) logits over the positions P: max, or the softmax-weighted sum ``sum_p s_p softmax_p(s_p / t)``."""
    if how == "max":
        return logits.amax(dim=1)
    weights = torch.softmax(logits / temperature, dim=1)
    return (weights * logits).sum(dim=1)


def check_unit_rows(x: torch.Tensor, name: str, tolerance: float = UNIT_NORM_TOLERANCE) -> None:
    """Raise a one-line error when a row of ``x`` (..., D) is not a unit vector (within ``tolerance``)."""
    norms = x.float().norm(dim=-1).reshape(-1)
    bad = (norms - 1).abs() > tolerance
    if bool(bad.any()):
        i = int(torch.nonzero(bad)[0])
        raise ValueError(f"{name}: expected L2-normalised rows (CLIP embeddings on the unit sphere), but row {i} of "
                         f"this block has norm {float(norms[i]):.4g}; normalise them first, e.g. "
                         f"torch.nn.functional.normalize(x, dim=-1)")


def score_images(classifier_weight_or_fn, global_emb, local_emb=None, memory=None,
                 temperature: float | None = None, alpha: float | None = None, local_weight: float | None = None,
                 map_global: bool = True, map_local: bool = True, image_chunk: int = 256, *,
                 local_pool: str = "max", pool_temperature: float | None = None, top_k: int | None = None,
                 global_transform: Callable | None = None, local_transform: Callable | None = None,
                 device: str | torch.device | None = None, check_unit: bool = False):
    """Score images with a text-trained classifier: CoMC's mapped global + pooled local logits.

    ``classifier_weight_or_fn`` is a (C, D) weight (logits = x @ W.T, bias-free as in CoMC), any
    callable mapping (..., D) to (..., C) (e.g. a :class:`~lcmc_core.method.classifier.TextClassifier`),
    or a dict ``name -> weight or callable`` to score several classifiers in one pass (the
    result is then a dict ``name -> result``). ``global_emb`` is (N, D); ``local_emb`` is (N, P, D)
    (a tensor, array or :class:`~lcmc_core.images.features.FeatureFile`) or None. ``global_transform`` /
    ``local_transform`` are applied to the embeddings first (e.g. a mean shift). With
    ``memory=None`` (or ``alpha = 1``) nothing is mapped; otherwise the global / local embeddings are
    passed through :func:`cross_modal_map` (``temperature``, ``alpha`` and ``top_k`` as there; the
    estimator :class:`~lcmc_core.method.comc.CoMC` holds their values) when ``map_global`` /
    ``map_local`` is true. ``local_pool`` is ``"max"`` (CoMC) or ``"softmax"`` (weights
    ``softmax_p(s_p / pool_temperature)``). With ``check_unit`` every raw input row (before any
    transform) must be a unit vector, else a one-line error. Work runs on ``device`` (default: that of
    ``global_emb``), results on CPU.

    Returns a dict of (N, C) tensors: ``"global"``, ``"local"`` (pooled over the P positions; None
    without ``local_emb``), ``"merged"`` = ``(1 - local_weight) * global + local_weight * local``
    (just ``global`` when there is no local branch) and, when the mapping used ``top_k``,
    ``"bound"``: an upper bound (float) on how far any merged score is from the exact mapping's,
    when the classifier is a weight matrix (``(1 - alpha) * 4 delta / |m_k|`` times the largest
    row norm of the weight, see :func:`cross_modal_map`).
    """
    many = isinstance(classifier_weight_or_fn, Mapping)
    items = dict(classifier_weight_or_fn) if many else {"_": classifier_weight_or_fn}
    if not items:
        raise ValueError("classifier_weight_or_fn: expected at least one classifier")
    fns = {name: _classifier_fn(c, f"classifier {name!r}" if many else "classifier_weight_or_fn")
           for name, c in items.items()}
    g = _as_float_tensor(global_emb, "global_emb")
    if g.ndim != 2:
        raise ValueError(f"global_emb: expected shape (N, D), got {tuple(g.shape)}")
    n, d = g.shape
    loc = _check_local(local_emb, n, d)
    if loc is not None and not (_is_real(local_weight) and 0.0 <= local_weight <= 1.0):
        raise ValueError(f"local_weight: expected a number in [0, 1] to merge the local branch, got {local_weight!r}")
    if not _is_count(image_chunk) or image_chunk < 1:
        raise ValueError(f"image_chunk: expected a positive integer, got {image_chunk!r}")
    if local_pool not in LOCAL_POOLS:
        raise ValueError(f"local_pool: expected one of {LOCAL_POOLS}, got {local_pool!r}")
    if loc is not None and local_pool == "softmax" and not (_is_real(pool_temperature) and pool_temperature > 0):
        raise ValueError(f"pool_temperature: expected a finite number > 0 for softmax pooling, got {pool_temperature!r}")
    device = torch.device(device) if device is not None else g.device
    if memory is not None:
        _check_temperature_alpha(temperature, alpha)
        memory = _as_float_tensor(memory, "memory").to(device)
        if alpha == 1.0:  # alpha 1 keeps every embedding as it is: no mapping to compute
            memory = None
    mapping = _Mapping(memory, temperature, alpha, top_k, device)
    with torch.no_grad():
        global_logits, g_bound = _score_global(fns, g, mapping, global_transform, map_global, check_unit)
        local_logits, l_bound = (None, None) if loc is None else _score_local(
            fns, loc, mapping, local_transform, map_local, check_unit, int(image_chunk), local_pool, pool_temperature)
    results = {}
    for name, (_, weight) in fns.items():
        gl = global_logits[name]
        ll = local_logits[name] if local_logits is not None else None
        merged = (1.0 - local_weight) * gl + local_weight * ll if ll is not None else gl
        res = {"global": gl, "local": ll, "merged": merged}
        if mapping.uses_top_k:
            w_norm = float(weight.norm(dim=1).max()) if weight is not None else math.nan
            gb = float(g_bound.max()) if (g_bound is not None and map_global) else 0.0
            lb = float(l_bound.max()) if l_bound is not None else 0.0
            res["bound"] = w_norm * ((1.0 - local_weight) * gb + local_weight * lb if ll is not None else gb)
        results[name] = res
    return results if many else results["_"]


class _Mapping:
    """The mapping of one :func:`score_images` call: the memory (None: no mapping) and its settings."""

    def __init__(self, memory, temperature, alpha, top_k, device):
        self.memory, self.temperature, self.alpha, self.top_k, self.device = memory, temperature, alpha, top_k, device
        self.uses_top_k = memory is not None and top_k is not None and top_k < memory.shape[0]

    def embed(self, x: torch.Tensor, transform, mapped: bool, check_unit: bool, name: str):
        """``x`` on the device, upcast, checked, transformed and (if ``mapped``) mapped; with the top-k bound or None."""
        x = _upcast_half(x.to(self.device))
        if check_unit:
            check_unit_rows(x, name)
        if transform is not None:
            x = transform(x)
        if self.memory is None or not mapped:
            return x, None
        if self.uses_top_k:
            return cross_modal_map(x, self.memory, self.temperature, self.alpha, top_k=self.top_k, return_bound=True)
        return cross_modal_map(x, self.memory, self.temperature, self.alpha), None


class _FilledRows:
    """An (N, ...) CPU tensor filled a block of rows at a time: no list of blocks to concatenate (half the peak)."""

    def __init__(self, n: int):
        self.n, self.filled, self.out = int(n), 0, None

    def add(self, block: torch.Tensor) -> None:
        """Append the next rows (moved to the CPU)."""
        block = block.cpu()
        if self.out is None:
            self.out = torch.empty((self.n,) + tuple(block.shape[1:]), dtype=block.dtype)
        self.out[self.filled:self.filled + block.shape[0]] = block
        self.filled += block.shape[0]

    def tensor(self) -> torch.Tensor:
        """The filled tensor (every row must have been added)."""
        if self.out is None or self.filled != self.n:
            raise RuntimeError(f"_FilledRows: {self.filled} of {self.n} rows were filled")
        return self.out


def _score_global(fns: dict, g: torch.Tensor, mapping: _Mapping, transform, mapped: bool, check_unit: bool):
    """Logits of the global embeddings per classifier, in blocks (no transformed N x D copy is ever held)."""
    parts = {name: _FilledRows(g.shape[0]) for name in fns}
    bounds = []
    for start in range(0, g.shape[0], _GLOBAL_CHUNK):
        gx, b = mapping.embed(g[start:start + _GLOBAL_CHUNK], transform, mapped, check_unit, "global_emb")
        if b is not None:
            bounds.append(b.cpu())
        for name, (fn, _) in fns.items():
            logits = fn(gx)
            if logits.ndim != 2 or logits.shape[0] != gx.shape[0]:
                raise ValueError(f"classifier {name!r}: expected (N, D) -> (N, C) logits, got shape "
                                 f"{tuple(logits.shape)}")
            parts[name].add(logits)
        del gx
    return {name: p.tensor() for name, p in parts.items()}, (torch.cat(bounds) if bounds else None)


def _score_local(fns: dict, loc, mapping: _Mapping, transform, mapped: bool, check_unit: bool, image_chunk: int,
                 local_pool: str, pool_temperature):
    """Pooled logits of the local embeddings per classifier, streamed ``image_chunk`` images at a time."""
    parts = {name: _FilledRows(loc.shape[0]) for name in fns}
    bounds = []
    for i, start in enumerate(range(0, loc.shape[0], image_chunk)):
        if i % 8 == 7:
            release_freed_memory()  # chunk buffers would otherwise pile up in malloc's arenas
        x, b = mapping.embed(loc[start:start + image_chunk], transform, mapped, check_unit, "local_emb")
        if b is not None:
            bounds.append(b.amax(dim=1).cpu())
        for name, (fn, _) in fns.items():
            parts[name].add(_pool(fn(x), local_pool, pool_temperature))
        del x
    release_freed_memory()
    return {name: p.tensor() for name, p in parts.items()}, (torch.cat(bounds) if bounds else None)


def embedding_mean(emb, image_chunk: int = 1024, chunk_bytes: int = 64 * 2**20) -> torch.Tensor:
    """Mean of embeddings over every leading dimension, (D,) float32; local (N, P, D) ones are streamed in chunks.

    A chunk holds at most ``image_chunk`` images and ``chunk_bytes`` of float64 (RN50's 49 x 1024 local
    features: 163 images, 64 MB, where 1,024 images took 0.4 GB plus their conversion).
    """
    if emb is None:
        raise ValueError("embedding_mean: emb is None")
    x = emb if _row_store(emb) else _as_float_tensor(emb, "emb")
    shape = tuple(x.shape)
    if len(shape) < 2 or shape[0] == 0:
        raise ValueError(f"embedding_mean: expected a non-empty (N, ..., D) array, got shape {shape}")
    total = torch.zeros(shape[-1], dtype=torch.float64)
    count = 0
    step = max(1, min(image_chunk, chunk_bytes // (8 * math.prod(shape[1:]))))
    for start in range(0, shape[0], step):
        block = x[start:start + step].to(torch.float64).reshape(-1, shape[-1])
        total += block.sum(dim=0)
        count += block.shape[0]
    return (total / count).float()


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
