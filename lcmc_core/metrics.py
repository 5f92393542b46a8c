"""Multi-label evaluation metrics with the conventions of TaI-DPT / CoMC and ML-GCN.

Inputs everywhere are an ``N x C`` score matrix (N images, C classes; any real numbers, higher
means "more likely present"; numpy arrays or torch tensors) and an ``N x C`` label matrix
holding ``1`` (present), ``0`` (absent) or ``-1`` (difficult / ignored, as in VOC2007).

Average precision (AP), the TaI-DPT / CoMC / DualCoOp convention
    For each class, sort the images by score (descending), take the precision at the rank of
    every positive, sum, and divide by the number of positives. mAP is the mean over **all**
    classes, in percent. This equals ``sklearn.metrics.average_precision_score`` when no two
    scores of a class are tied.

    * Ties: the sort is *stable*, so among equal scores the image that comes first in the input
      is ranked first. The result is then deterministic but depends on row order; scikit-learn
      instead treats a tied group as one threshold. Real-valued model scores rarely tie.
    * ``difficult="negative"`` (default; TaI-DPT and CoMC on VOC2007) counts ``-1`` as a
      negative. ``difficult="ignore"`` (ML-GCN's meter) drops the ``-1`` entries of each class
      from that class's ranking altogether.
    * A class with no positive gives AP = 0 (as in the reference code and scikit-learn >= 1.1)
      and still counts in the mean, which pulls mAP down; a :class:`NoPositivesWarning` names
      such classes.

F1 at top-k (ML-GCN definition), :func:`f1_at_top_k`
    A label is *predicted* for an image if it is among the image's k highest scores **and** its
    score is >= ``threshold``. Per class c: ``Nc`` correct predictions, ``Np`` predictions,
    ``Ng`` ground-truth positives. CP / CR are the means over classes of ``Nc/Np`` and
    ``Nc/Ng``; OP / OR pool the counts (``sum Nc / sum Np``, ``sum Nc / sum Ng``);
    ``F1 = 2 P R / (P + R)``. All in percent. Other papers use per-class-F1 means or micro-F1;
    state the definition next to any table.

Bootstrap confidence interval, :func:`bootstrap_map_ci`
    Resamples images with replacement and reports a percentile interval of mAP.
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "NoPositivesWarning",
    "DIFFICULT_MODES",
    "average_precision_per_class",
    "mean_average_precision",
    "f1_at_top_k",
    "bootstrap_map_ci",
]

DIFFICULT_MODES = ("negative", "ignore")


class NoPositivesWarning(UserWarning):
    """Some class has no positive label, so its AP (or recall) is 0 by convention."""


# ----------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------
def _to_numpy(x, name: str) -> np.ndarray:
    """Convert a numpy array / torch tensor / nested list to a numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name}: expected an array-like N x C matrix, got {type(x).__name__}") from exc


def _check_inputs(scores, labels, difficult: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert (scores, labels); return float64 scores and int8 labels."""
    if difficult not in DIFFICULT_MODES:
        raise ValueError(f"difficult: expected one of {DIFFICULT_MODES}, got {difficult!r}")
    s = _to_numpy(scores, "scores")
    y = _to_numpy(labels, "labels")
    if s.ndim != 2:
        raise ValueError(f"scores: expected a 2-D N x C array, got shape {s.shape}")
    if y.shape != s.shape:
        raise ValueError(f"labels: expected the same shape as scores {s.shape}, got {y.shape}")
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"scores: expected at least one image and one class, got shape {s.shape}")
    if not (np.issubdtype(s.dtype, np.number) or s.dtype == bool):
        raise TypeError(f"scores: expected numbers, got dtype {s.dtype}")
    s = s.astype(np.float64, copy=False)
    if not np.isfinite(s).all():
        raise ValueError("scores: expected finite values, found NaN or inf")
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise TypeError(f"labels: expected numbers 1/0/-1, got dtype {y.dtype}")
    bad = ~np.isin(y, (-1, 0, 1))
    if bad.any():
        raise ValueError(f"labels: expected only 1, 0 or -1; found {np.unique(y[bad])[:5].tolist()}")
    return s, y.astype(np.int8)


def _warn_no_positives(n_pos: np.ndarray, what: str) -> None:
    empty = np.flatnonzero(n_pos == 0)
    if empty.size:
        shown = empty[:10].tolist()
        more = f" (+{empty.size - 10} more)" if empty.size > 10 else ""
        warnings.warn(
            f"{empty.size} class(es) have no positive label (indices {shown}{more}); "
            f"their {what} is 0 and still counts in the mean",
            NoPositivesWarning, stacklevel=3)


# ----------------------------------------------------------------------------------------------
# average precision
# ----------------------------------------------------------------------------------------------
def _ap_columns(s: np.ndarray, y: np.ndarray, difficult: str) -> tuple[np.ndarray, np.ndarray]:
    """AP per class (fractions, not percent) and number of positives per class."""
    order = np.argsort(-s, axis=0, kind="stable")           # descending, ties keep input order
    lab = np.take_along_axis(y, order, axis=0)
    pos = lab == 1
    valid = lab != -1 if difficult == "ignore" else np.ones_like(pos)
    rank = np.cumsum(valid, axis=0)                          # rank among the kept entries
    hits = np.cumsum(pos, axis=0)
    prec_at_pos = np.where(pos, hits / np.maximum(rank, 1), 0.0)
    n_pos = pos.sum(axis=0)
    ap = np.where(n_pos > 0, prec_at_pos.sum(axis=0) / np.maximum(n_pos, 1), 0.0)
    return ap, n_pos


def average_precision_per_class(scores, labels, difficult: str = "negative") -> np.ndarray:
    """Return the AP of each class (shape ``(C,)``, percent) under the TaI-DPT/CoMC convention."""
    s, y = _check_inputs(scores, labels, difficult)
    ap, n_pos = _ap_columns(s, y, difficult)
    _warn_no_positives(n_pos, "AP")
    return ap * 100.0


def mean_average_precision(scores, labels, difficult: str = "negative") -> float:
    """Return mAP in percent: the mean of :func:`average_precision_per_class` over all classes."""
    return float(np.mean(average_precision_per_class(scores, labels, difficult)))


# ----------------------------------------------------------------------------------------------
# F1 at top-k
# ----------------------------------------------------------------------------------------------
def f1_at_top_k(scores, labels, k: int = 3, threshold: float | None = 0.5,
                difficult: str = "negative") -> dict:
    """Return ML-GCN's CP, CR, CF1, OP, OR, OF1 (percent) for labels in the top-k with score >= threshold.

    ``threshold`` applies to the scores as given (pass probabilities if 0.5 should mean p = 0.5;
    ``None`` means top-k only). Ties in the top-k are broken by lower class index. With
    ``difficult="negative"`` (default) ``-1`` counts as absent; with ``"ignore"`` such entries are
    neither predictions nor ground truth. A class never predicted has precision 0 (as in ML-GCN);
    a class with no positive has recall 0 (ML-GCN would give NaN) and triggers a warning.
    """
    s, y = _check_inputs(scores, labels, difficult)
    n, c = s.shape
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= c:
        raise ValueError(f"k: expected an integer between 1 and the number of classes ({c}), got {k!r}")
    if threshold is not None and not np.isfinite(threshold):
        raise ValueError(f"threshold: expected a finite number or None, got {threshold!r}")
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    pred = np.zeros_like(s, dtype=bool)
    np.put_along_axis(pred, top, True, axis=1)
    if threshold is not None:
        pred &= s >= threshold
    gt = y == 1
    if difficult == "ignore":
        pred &= y != -1
    n_correct = (pred & gt).sum(axis=0).astype(np.float64)
    n_pred = pred.sum(axis=0).astype(np.float64)
    n_gt = gt.sum(axis=0).astype(np.float64)
    _warn_no_positives(n_gt, "recall")

    def ratio(a, b):
        return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)

    def f1(p, r):
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    cp = float(ratio(n_correct, n_pred).mean())
    cr = float(ratio(n_correct, n_gt).mean())
    op = float(n_correct.sum() / n_pred.sum()) if n_pred.sum() > 0 else 0.0
    orr = float(n_correct.sum() / n_gt.sum()) if n_gt.sum() > 0 else 0.0
    return {"CP": 100 * cp, "CR": 100 * cr, "CF1": 100 * f1(cp, cr),
            "OP": 100 * op, "OR": 100 * orr, "OF1": 100 * f1(op, orr)}


# ----------------------------------------------------------------------------------------------
# bootstrap
# ----------------------------------------------------------------------------------------------
def _maps_from_counts(s: np.ndarray, y: np.ndarray, counts: np.ndarray, difficult: str) -> np.ndarray:
    """mAP (fraction) for each row of ``counts`` (B x N multiplicities of the images).

    Equivalent to :func:`mean_average_precision` on the resampled matrix with its rows in original
    image order (so ties break as in the original data), but without sorting per resample: the
    images are sorted once per class, and the ``w`` copies of a positive image preceded by ``R``
    kept copies of which ``P`` are positive contribute
    ``sum_{j=1..w} (P + j) / (R + j) = w - (R - P) * (H(R + w) - H(R))`` with H the harmonic numbers.
    """
    n, c = s.shape
    order = np.argsort(-s, axis=0, kind="stable")            # (N, C)
    lab = np.take_along_axis(y, order, axis=0)
    pos = (lab == 1).astype(np.float64)                       # (N, C)
    valid = (lab != -1) if difficult == "ignore" else np.ones((n, c), dtype=bool)
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])
    w = counts[:, order] * valid                              # (B, N, C) copies, sorted per class
    cum = np.cumsum(w, axis=1)
    before = cum - w                                          # kept copies ranked above
    wpos = w * pos
    pos_before = np.cumsum(wpos, axis=1) - wpos
    contrib = wpos - pos * (before - pos_before) * (harmonic[cum] - harmonic[before])
    n_pos = wpos.sum(axis=1)                                  # (B, C)
    ap = np.divide(contrib.sum(axis=1), n_pos, out=np.zeros_like(n_pos), where=n_pos > 0)
    return ap.mean(axis=1)


def bootstrap_map_ci(scores, labels, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
                     difficult: str = "negative") -> tuple[float, float]:
    """Return a percentile bootstrap interval (low, high) of mAP in percent, resampling images.

    Each of ``n_boot`` resamples draws N images with replacement (numpy ``default_rng(seed)``);
    a class with no positive in a resample gets AP 0, as in :func:`mean_average_precision`.
    """
    s, y = _check_inputs(scores, labels, difficult)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot: expected a positive integer, got {n_boot!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a number strictly between 0 and 1, got {confidence!r}")
    n, c = s.shape
    rng = np.random.default_rng(seed)
    chunk = max(1, int(4_000_000 // (n * c)))                 # bounds the B x N x C work arrays
    maps = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        counts = np.bincount((idx + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n)
        maps.append(_maps_from_counts(s, y, counts, difficult))
    maps = np.concatenate(maps) * 100.0
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(maps, [tail, 100 - tail])
    return float(low), float(high)
