"""Measuring the modality gap between CLIP image and text embeddings.

CLIP puts images and texts on the same unit sphere but in different regions of it (Liang et al.,
*Mind the Gap*, NeurIPS 2022). CoMC exists because of this gap: a classifier trained on text
embeddings meets image embeddings that sit elsewhere. The views offered here:

* :func:`gap_vector` / :func:`gap_norm`: mean of the L2-normalised image embeddings minus mean of
  the L2-normalised text embeddings, and its length (about 0.82 for CLIP on MSCOCO pairs).
* :func:`matched_unmatched_cosines`: for paired rows (image i described by text i), cosines of
  matched pairs and of a seeded random sample of unmatched pairs (for histograms).
* :func:`modality_separability`: held-out balanced accuracy of a logistic-regression probe that
  tells image from text embeddings (0.5 = indistinguishable, 1.0 = fully separated).
* :func:`pca_2d`: one 2-D PCA fitted on all given arrays together, for scatter plots.
* :func:`gap_report`: the scalar figures in one JSON-friendly dict.

All functions accept numpy arrays or torch tensors of shape (n, D), compute in float64 numpy,
normalise rows to unit length first (zero rows are an error) and are deterministic given ``seed``.
"""
from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = [
    "gap_vector",
    "gap_norm",
    "matched_unmatched_cosines",
    "modality_separability",
    "pca_2d",
    "gap_report",
]


def _as_matrix(x, name: str, normalize: bool = True) -> np.ndarray:
    """Convert to a float64 (n, D) numpy matrix, optionally with unit rows; raise on bad input."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty 2-D (n, D) array, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise TypeError(f"{name}: expected numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: expected finite values, found NaN or inf")
    if normalize:
        norms = np.linalg.norm(a, axis=1, keepdims=True)
        if (norms == 0).any():
            raise ValueError(f"{name}: found {int((norms == 0).sum())} zero row(s), which cannot be normalised")
        a = a / norms
    return a


def _pair(image_emb, text_emb) -> tuple[np.ndarray, np.ndarray]:
    img = _as_matrix(image_emb, "image_emb")
    txt = _as_matrix(text_emb, "text_emb")
    if img.shape[1] != txt.shape[1]:
        raise ValueError(f"text_emb: dimension {txt.shape[1]} does not match image_emb's {img.shape[1]}")
    return img, txt


def gap_vector(image_emb, text_emb) -> np.ndarray:
    """Return the gap vector (D,): mean of normalised image rows minus mean of normalised text rows."""
    img, txt = _pair(image_emb, text_emb)
    return img.mean(axis=0) - txt.mean(axis=0)


def gap_norm(image_emb, text_emb) -> float:
    """Return the Euclidean length of :func:`gap_vector`, the usual one-number "gap"."""
    return float(np.linalg.norm(gap_vector(image_emb, text_emb)))


def matched_unmatched_cosines(image_emb, text_emb, n_unmatched: int | None = None, seed: int = 0) -> dict:
    """Return cosines of matched pairs (row i with row i) and of a seeded sample of unmatched pairs.

    Rows of ``image_emb`` and ``text_emb`` must be paired (same n >= 2). Unmatched pairs (i, j),
    j != i, are drawn uniformly with replacement, ``n_unmatched`` of them (default n). Returns
    ``{"matched": (n,), "unmatched": (n_unmatched,), "matched_mean": float, "unmatched_mean": float}``.
    """
    img, txt = _pair(image_emb, text_emb)
    n = img.shape[0]
    if txt.shape[0] != n:
        raise ValueError(f"text_emb: expected {n} rows paired with image_emb's, got {txt.shape[0]}")
    if n < 2:
        raise ValueError("image_emb: need at least 2 paired rows to form unmatched pairs")
    if n_unmatched is None:
        n_unmatched = n
    if isinstance(n_unmatched, bool) or not isinstance(n_unmatched, (int, np.integer)) or n_unmatched < 1:
        raise ValueError(f"n_unmatched: expected a positive integer or None, got {n_unmatched!r}")
    matched = np.einsum("ij,ij->i", img, txt)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=n_unmatched)
    j = (i + rng.integers(1, n, size=n_unmatched)) % n      # uniform over j != i
    unmatched = np.einsum("ij,ij->i", img[i], txt[j])
    return {"matched": matched, "unmatched": unmatched,
            "matched_mean": float(matched.mean()), "unmatched_mean": float(unmatched.mean())}


def modality_separability(image_emb, text_emb, seed: int = 0, test_fraction: float = 0.3,
                          max_per_modality: int | None = 10000) -> float:
    """Return the held-out balanced accuracy of a linear probe telling images from texts (0.5 = chance).

    Rows are normalised, at most ``max_per_modality`` rows of each modality are kept (seeded
    subsample), a stratified ``test_fraction`` split is held out, and a standardised
    scikit-learn ``LogisticRegression`` is fitted on the rest. Balanced accuracy (mean recall of
    the two modalities) keeps chance at 0.5 whatever the two sizes.
    """
    img, txt = _pair(image_emb, text_emb)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number strictly between 0 and 1, got {test_fraction!r}")
    if max_per_modality is not None and (isinstance(max_per_modality, bool)
                                         or not isinstance(max_per_modality, (int, np.integer))
                                         or max_per_modality < 2):
        raise ValueError(f"max_per_modality: expected an integer >= 2 or None, got {max_per_modality!r}")
    rng = np.random.default_rng(seed)
    if max_per_modality is not None:
        if img.shape[0] > max_per_modality:
            img = img[np.sort(rng.choice(img.shape[0], max_per_modality, replace=False))]
        if txt.shape[0] > max_per_modality:
            txt = txt[np.sort(rng.choice(txt.shape[0], max_per_modality, replace=False))]
    x = np.concatenate([img, txt])
    y = np.concatenate([np.ones(len(img), dtype=int), np.zeros(len(txt), dtype=int)])
    for name, count in (("image_emb", len(img)), ("text_emb", len(txt))):
        if count * min(test_fraction, 1 - test_fraction) < 1:
            raise ValueError(f"{name}: too few rows ({count}) to hold out a stratified test_fraction={test_fraction}")
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, stratify=y,
                                              random_state=int(seed))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(x_tr, y_tr)
    return float(balanced_accuracy_score(y_te, probe.predict(x_te)))


def pca_2d(*arrays, normalize: bool = True) -> list[np.ndarray]:
    """Fit one 2-D PCA on the concatenation of ``arrays`` and return each array projected, (n_i, 2).

    Rows are L2-normalised first unless ``normalize=False``. Signs of the axes are fixed by
    scikit-learn's deterministic sign convention.
    """
    if not arrays:
        raise ValueError("arrays: expected at least one (n, D) array")
    mats = [_as_matrix(a, f"arrays[{k}]", normalize=normalize) for k, a in enumerate(arrays)]
    dims = {m.shape[1] for m in mats}
    if len(dims) != 1:
        raise ValueError(f"arrays: expected the same dimension D in every array, got {sorted(dims)}")
    x = np.concatenate(mats)
    if x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"arrays: need at least 2 rows and 2 dimensions in total for a 2-D PCA, got {x.shape}")
    pca = PCA(n_components=2, svd_solver="full").fit(x)
    return [pca.transform(m) for m in mats]


def gap_report(image_emb, text_emb, paired: bool = False, seed: int = 0,
               max_per_modality: int | None = 10000) -> dict:
    """Return the modality-gap figures of two embedding sets as a dict of plain Python numbers.

    Keys: ``n_image``, ``n_text``, ``dim``, ``gap_norm``, ``image_centroid_norm``,
    ``text_centroid_norm`` (lengths of the two means; 1 = all rows identical), ``centroid_cosine``
    (cosine between the two means) and ``separability`` (:func:`modality_separability`); with
    ``paired=True`` also ``matched_cosine_mean`` and ``unmatched_cosine_mean``.
    """
    img, txt = _pair(image_emb, text_emb)
    mi, mt = img.mean(axis=0), txt.mean(axis=0)
    ni, nt = float(np.linalg.norm(mi)), float(np.linalg.norm(mt))
    report = {
        "n_image": int(img.shape[0]),
        "n_text": int(txt.shape[0]),
        "dim": int(img.shape[1]),
        "gap_norm": float(np.linalg.norm(mi - mt)),
        "image_centroid_norm": ni,
        "text_centroid_norm": nt,
        "centroid_cosine": float(mi @ mt / (ni * nt)) if ni > 0 and nt > 0 else 0.0,
        "separability": modality_separability(img, txt, seed=seed, max_per_modality=max_per_modality),
    }
    if paired:
        cos = matched_unmatched_cosines(img, txt, seed=seed)
        report["matched_cosine_mean"] = cos["matched_mean"]
        report["unmatched_cosine_mean"] = cos["unmatched_mean"]
    return report
