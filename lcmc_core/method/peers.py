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
* **SPARC itself** (same paper, official code ``run_SPARC.py`` of GitHub kjmillerCURIS/SPARC):
  that standardisation, plus *compound prompts* (prompts naming several classes, "a dog and a
  cat on a sofa") whose per-image sorted scores are fused with the class's own score by a
  first-principal-component projection; :func:`sparc_scores`, with the fusion weights of one
  class in :func:`sparc_fusion_weights`. Which compound prompt belongs to which class is text
  work: :func:`lcmc_core.text.compound.assign_compound_prompts`.
"""
from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import as_tensor
from ..errors import ConfigError
from ..memory import release_freed_memory
from .mapping import mean_shift

__all__ = ["DECAP_ALPHA", "standardize_modality", "i0t_scores", "sparc_standardize", "sparc_scores", "sparc_fusion_weights",
           "ScoreColumns", "image_text_scores"]

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


def i0t_scores(images, class_emb, image_mean, text_mean, rows: int = 8192) -> torch.Tensor:
    """I0T's post-hoc scores (N, C): standardised images against standardised class embeddings, ``rows`` images at a time.

    Equals ``standardize_modality(images, image_mean) @ standardize_modality(class_emb, text_mean).T``
    without the two (N, D) copies that form would hold (0.9 GB at NUS-WIDE size with RN50).
    """
    images = as_tensor(images, "images", floating=True)
    if images.ndim != 2:
        raise ValueError(f"images: expected an (N, D) matrix, got shape {tuple(images.shape)}")
    cls = standardize_modality(as_tensor(class_emb, "class_emb", floating=True), text_mean)
    return torch.cat([standardize_modality(block, image_mean) @ cls.T for block in images.split(rows)])


def sparc_standardize(scores) -> np.ndarray:
    """SPARC's score standardisation of an (N, C) score matrix: per-image z-score over classes, then per-class over images.

    ``z1[i, c] = (s[i, c] - mean_c s[i, :]) / std_c s[i, :]``, then ``z[i, c] = (z1[i, c] -
    mean_i z1[:, c]) / std_i z1[:, c]``, both stds with ``ddof = 1``. Needs N >= 2, C >= 2 and no
    constant row or column (the z-score is undefined there; an error names it).
    """
    s = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    if s.ndim != 2 or s.shape[0] < 2 or s.shape[1] < 2:
        raise ValueError(f"scores: expected an (N, C) matrix with N >= 2 and C >= 2, got shape {s.shape}")
    s = s.astype(np.float64)   # always a copy
    if not np.isfinite(s).all():
        raise ValueError("scores: expected finite values, found NaN or inf")
    row_sd = s.std(axis=1, ddof=1, keepdims=True)
    if (row_sd == 0).any():
        raise ValueError(f"scores: image {int(np.flatnonzero(row_sd[:, 0] == 0)[0])} has the same score for "
                         "every class; its z-score is undefined")
    z = s   # the float64 copy, standardised in place
    z -= s.mean(axis=1, keepdims=True)
    z /= row_sd
    col_sd = z.std(axis=0, ddof=1, keepdims=True)
    if (col_sd == 0).any():
        raise ValueError(f"scores: class {int(np.flatnonzero(col_sd[0] == 0)[0])} has the same standardised score "
                         "for every image; its z-score is undefined")
    z -= z.mean(axis=0, keepdims=True)
    z /= col_sd
    return z


# Columns of the compound-score matrix converted to float64 at a time while computing column
# statistics: about 16 MB whatever N is, so the extra memory does not grow with P.
_BLOCK_BYTES = 16 * 2**20


class ScoreColumns:
    """Image-text scores ``images @ texts.T`` (N, P) that hand out columns on demand, never the whole matrix.

    What :func:`sparc_scores` reads of its compound scores (blocks of columns, then each class's
    columns), so that SPARC at NUS-WIDE size (~108k images x ~1,200 prompts, 0.5 GB as float32)
    holds only a block at a time. Built by :func:`image_text_scores` when the matrix would be large.
    """

    def __init__(self, images, texts):
        self.images = torch.as_tensor(images).detach().cpu()
        self.texts = torch.as_tensor(texts).detach().cpu().to(self.images.dtype)
        if self.images.ndim != 2 or self.texts.ndim != 2 or self.images.shape[1] != self.texts.shape[1]:
            raise ConfigError(f"ScoreColumns: expected (N, D) images and (P, D) texts, got shapes "
                              f"{tuple(self.images.shape)} and {tuple(self.texts.shape)}")
        self.shape = (self.images.shape[0], self.texts.shape[0])

    def __getitem__(self, key) -> np.ndarray:
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        if rows != slice(None):
            raise IndexError("ScoreColumns: only whole columns ([:, cols]) can be read")
        if not isinstance(cols, slice):
            cols = torch.as_tensor(np.asarray(cols, dtype=np.int64))
        return (self.images @ self.texts[cols].T).numpy()


def image_text_scores(images, texts, max_bytes: int = 64 * 2**20):
    """``images @ texts.T``: the whole matrix when it fits ``max_bytes``, else :class:`ScoreColumns` (columns on demand)."""
    images, texts = torch.as_tensor(images), torch.as_tensor(texts)
    if images.shape[0] * texts.shape[0] * images.element_size() <= max_bytes:
        return images @ texts.T
    return ScoreColumns(images, texts)


def _score_matrix(x, name: str) -> np.ndarray:
    """``x`` (numpy array or torch tensor) as a 2-D real numpy array, without copying when possible."""
    if isinstance(x, ScoreColumns):
        return x
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim != 2:
        raise ConfigError(f"{name}: expected a 2-D (images x columns) score matrix, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)) or a.dtype == bool:
        raise ConfigError(f"{name}: expected real scores, got dtype {a.dtype}")
    return a


def _row_standardize(s: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-image mean and std (ddof 1) over the columns of ``s``; an image with constant scores is an error."""
    s = s.astype(np.float64, copy=False)
    if not np.isfinite(s).all():
        i, j = np.argwhere(~np.isfinite(s))[0]
        raise ConfigError(f"{name}: expected finite scores, found {s[i, j]} at image {i}, column {j}")
    mean, sd = s.mean(axis=1), s.std(axis=1, ddof=1)
    if (sd == 0).any():
        raise ConfigError(f"{name}: image {int(np.flatnonzero(sd == 0)[0])} has the same score in every column; "
                          "its per-image z-score is undefined")
    return mean, sd


def _column_z(z: np.ndarray, name: str, what: str = "class") -> np.ndarray:
    """``z`` (float64, overwritten) with every column z-scored over the images (ddof 1); a constant column is an error."""
    sd = z.std(axis=0, ddof=1)
    if (sd == 0).any():
        raise ConfigError(f"{name}: {what} {int(np.flatnonzero(sd == 0)[0])} has the same per-image standardised "
                          "score in every image; its z-score over images is undefined")
    z -= z.mean(axis=0)   # in place: no second (N, C) float64 copy
    z /= sd
    return z


def _check_class_compound(class_compound, n_classes: int, n_prompts: int) -> list[np.ndarray]:
    if isinstance(class_compound, (str, bytes)) or not hasattr(class_compound, "__len__"):
        raise ConfigError(f"class_compound: expected a list of {n_classes} lists of compound-prompt column indices, "
                          f"got {type(class_compound).__name__}")
    if len(class_compound) != n_classes:
        raise ConfigError(f"class_compound: expected one list per class ({n_classes}), got {len(class_compound)}")
    out = []
    for c, cols in enumerate(class_compound):
        a = np.asarray(list(cols) if not isinstance(cols, np.ndarray) else cols)
        if a.size == 0:
            out.append(np.zeros(0, dtype=np.intp))
            continue
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
            raise ConfigError(f"class_compound[{c}]: expected a flat list of integer column indices, got {cols!r}"[:300])
        bad = a[(a < 0) | (a >= n_prompts)]
        if bad.size:
            raise ConfigError(f"class_compound[{c}]: column index {int(bad[0])} is out of range; compound_scores has "
                              f"{n_prompts} columns (0..{n_prompts - 1})")
        if len(np.unique(a)) != len(a):
            dup = int(next(v for v in a if (a == v).sum() > 1))
            raise ConfigError(f"class_compound[{c}]: column {dup} is listed more than once")
        out.append(a.astype(np.intp))
    return out


def sparc_fusion_weights(features) -> np.ndarray:
    """SPARC's fusion weights for one class: the first principal direction of an (N, F) feature matrix, signed and L1-normalised.

    The direction is scikit-learn's ``PCA`` first component (the data are centred for the fit)
    from an exact solver: the eigendecomposition of the (F, F) covariance (scikit-learn >= 1.5;
    ~25x faster than an SVD of the (N, F) data at N = 100k) or else the full SVD. Its sign is
    chosen so that the mean weight is positive (left as it is when the mean is exactly 0, as
    ``run_SPARC.py``), and it is divided by the sum of the absolute weights. When the two
    largest variances are equal the direction is not unique and follows the numerical routine
    (as in the official code).
    """
    import sklearn
    from sklearn.decomposition import PCA

    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 1 or x.shape[0] <= x.shape[1]:
        raise ConfigError(f"features: expected an (N, F) matrix with more images than features (N > F >= 1), "
                          f"got shape {x.shape}")
    solver = "covariance_eigh" if tuple(map(int, re.findall(r"\d+", sklearn.__version__)[:2])) >= (1, 5) else "full"
    direction = PCA(n_components=1, svd_solver=solver).fit(x).components_[0].astype(np.float64)
    if direction.mean() < 0:
        direction = -direction
    return direction / np.abs(direction).sum()


def sparc_scores(ensemble_scores, simple_scores, compound_scores, class_compound) -> np.ndarray:
    """SPARC's final (N, C) scores from raw image-text scores: calibration, then per-class PCA fusion of compound-prompt scores.

    Inputs (numpy arrays or torch tensors; raw cosine similarities or logits, any real dtype):
    ``ensemble_scores`` (N, C), the class scores to improve (SPARC: CLIP's 80-template ensemble);
    ``simple_scores`` (N, C), each class's score for one plain prompt (the statistics that put
    compound scores on a per-image scale; the official data embedded the bare class name, "dog",
    not "a photo of a dog.", and the compound prompts as written); ``compound_scores`` (N, P),
    one column per compound prompt (or :class:`ScoreColumns`, which computes them a block at a
    time); ``class_compound``, C lists of the compound columns that name each class (from
    :func:`lcmc_core.text.compound.assign_compound_prompts`). Returns float64 (N, C).

    Steps, as ``run_SPARC.py`` (``calibrate_data``, ``predict_oneclass``, ``do_PCA_oneclass``):

    1. per image: ``E = (ensemble - mean_c) / std_c`` over the C classes; ``Q = (compound -
       mean_c(simple)) / std_c(simple)``, i.e. compound scores use the mean and std of that
       image's *simple* class scores (std with ``ddof = 1`` throughout, no epsilon);
    2. per column, over the N images: every class column of ``E`` and every compound column of
       ``Q`` is z-scored;
    3. per class ``c`` with ``k >= 1`` compound prompts: each image's ``k`` calibrated compound
       scores sorted in ascending order, plus ``E[:, c]``, form an (N, k + 1) matrix; its first
       principal direction (:func:`sparc_fusion_weights`: sign so the mean weight is positive,
       weights divided by their L1 norm) projects each image's *uncentred* row to one number
       ``f``; the score is ``0.5 f + 0.5 E[:, c]``. A class with one compound prompt gets a
       2-feature PCA; a class with none keeps ``E[:, c]`` (official code: the same).

    Sorting makes feature ``j`` "the j-th smallest compound score" whatever prompt gave it, so
    the fusion can weight the second-highest score more than the highest (the paper's finding);
    ties change nothing (equal values sort to the same row). Not centring before the projection
    adds one constant per class (``mean(X) @ w``): no effect on AP, but it shifts classes against
    each other, which matters for per-image top-k metrics; kept as the official code does it.

    **Other scores in place of the ensemble** (SPARC on top of another method, e.g. CoMC's
    ablation "CoMC + SPARC fusion"): pass that method's (N, C) scores as ``ensemble_scores``; the
    function is the same (``simple_scores`` still calibrate the compound prompts). The paper
    reports SPARC on top of other zero-shot methods; its code for that is not public, so this
    reading (swap the ensemble, keep the rest) is ours.

    Where this departs from ``run_SPARC.py``: errors instead of NaN for a constant image row or a
    constant used column, non-finite input, and a class with ``N <= k + 1`` (the official code
    asserts ``N > k + 1``), but a constant compound column that no class uses is allowed (never
    read, in either); the official code keeps scores in per-image dicts and loops over images in
    Python, this one works on arrays. Memory beyond the inputs: O(N (C +
    k_max)) float64 plus a fixed ~16 MB block (the compound matrix is never copied whole).
    """
    ens = _score_matrix(ensemble_scores, "ensemble_scores")
    simple = _score_matrix(simple_scores, "simple_scores")
    comp = _score_matrix(compound_scores, "compound_scores")
    n, c = ens.shape
    if n < 3 or c < 2:
        raise ConfigError(f"ensemble_scores: expected an (N, C) matrix with N >= 3 images and C >= 2 classes, "
                          f"got shape {ens.shape}")
    if simple.shape != ens.shape:
        raise ConfigError(f"simple_scores: expected shape {ens.shape} (as ensemble_scores), got {simple.shape}")
    if comp.shape[0] != n:
        raise ConfigError(f"compound_scores: expected {n} rows (images, as ensemble_scores), got shape {comp.shape}")
    groups = _check_class_compound(class_compound, c, comp.shape[1])
    for cls, cols in enumerate(groups):
        if n <= len(cols) + 1:
            raise ConfigError(f"class_compound[{cls}]: {len(cols)} compound prompts need more than {len(cols) + 1} "
                              f"images for the PCA, got N = {n}")

    ens_mean, ens_sd = _row_standardize(ens, "ensemble_scores")
    simple_mean, simple_sd = _row_standardize(simple, "simple_scores")
    e = ens.astype(np.float64)   # a copy, standardised in place
    e -= ens_mean[:, None]
    e /= ens_sd[:, None]
    e = _column_z(e, "ensemble_scores")

    # Column statistics of the row-calibrated compound scores, a block of columns at a time (the
    # N x P matrix is never copied whole); every column is checked for NaN / inf on the way.
    n_prompts = comp.shape[1]
    col_mean, col_sd = np.zeros(n_prompts), np.ones(n_prompts)
    step = max(1, _BLOCK_BYTES // (8 * n))
    for start in range(0, n_prompts, step):
        block = comp[:, start:start + step].astype(np.float64)
        if not np.isfinite(block).all():
            i, j = np.argwhere(~np.isfinite(block))[0]
            raise ConfigError(f"compound_scores: expected finite scores, found {block[i, j]} at image {i}, "
                              f"column {start + j}")
        block -= simple_mean[:, None]
        block /= simple_sd[:, None]
        col_mean[start:start + step], col_sd[start:start + step] = block.mean(axis=0), block.std(axis=0, ddof=1)
        del block
    used = np.unique(np.concatenate([np.zeros(0, dtype=np.intp), *groups]))
    constant = used[col_sd[used] == 0]
    if constant.size:
        raise ConfigError(f"compound_scores: column {int(constant[0])} has the same calibrated score in every image; "
                          "its z-score over images is undefined")

    out = e   # class columns are replaced in place: each reads only its own column of e, copied into x first
    for cls, cols in enumerate(groups):
        k = len(cols)
        if k == 0:
            continue
        x = np.empty((n, k + 1))
        x[:, :k] = comp[:, cols]
        x[:, :k] -= simple_mean[:, None]
        x[:, :k] /= simple_sd[:, None]
        x[:, :k] -= col_mean[cols]
        x[:, :k] /= col_sd[cols]
        x[:, :k].sort(axis=1)
        x[:, k] = e[:, cls]
        fused = x @ sparc_fusion_weights(x)
        out[:, cls] = 0.5 * fused + 0.5 * x[:, k]
        del x, fused
        release_freed_memory()   # each class's buffers (tens of MB at NUS-WIDE size), else kept by malloc
    return out
