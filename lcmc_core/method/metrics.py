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

Paired differences, :func:`paired_bootstrap`
    Two methods (or two groups of seeds of each) scored on the *same* images: every resample
    draws the same images for both (:func:`resample_counts` with one seed), the difference of
    their mAPs is taken per resample (averaged over seeds first when several runs are given),
    and the percentile interval of those differences is reported. Because the image sample's
    luck is shared, this interval is far narrower than the difference of two unpaired intervals.
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
    "bootstrap_maps",
    "resample_counts",
    "percentile_interval",
    "paired_bootstrap",
    "seed_mean_bootstraps",
    "interval_verdict",
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
    """AP per class (fractions, not percent) and number of positives per class (one class at a time: O(N) memory)."""
    n, c = s.shape
    ap = np.zeros(c)
    n_pos = np.zeros(c, dtype=np.int64)
    for k in range(c):
        order = np.argsort(-s[:, k], kind="stable")        # descending, ties keep input order
        lab = y[order, k]
        pos = lab == 1
        n_pos[k] = pos.sum()
        if not n_pos[k]:
            continue
        rank = np.cumsum(lab != -1) if difficult == "ignore" else np.arange(1, n + 1)   # rank among kept entries
        hits = np.cumsum(pos)
        ap[k] = float((hits[pos] / np.maximum(rank[pos], 1)).sum() / n_pos[k])
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
class _ResampledAP:
    """mAP of resampled images, from one sort per class (TaI-DPT convention, as :func:`mean_average_precision`).

    A resample is a vector of multiplicities ``counts`` (how often each image was drawn). The
    images are sorted once per class (stable, as in :func:`mean_average_precision`). For positive
    ``j`` of class ``c`` (in rank order), let ``w`` be its multiplicity, ``P`` the copies of the
    positives ranked above it and ``R`` all kept copies ranked above it; its ``w`` copies then
    contribute ``sum_{i=1..w} (P + i) / (R + i) = w - (R - P) * (H(R + w) - H(R))`` (``H``:
    harmonic numbers). ``R - P`` is a sum of negative multiplicities over the negatives ranked
    above ``j``; those negatives form, per class, disjoint blocks between consecutive positives,
    so one sparse (positives x images) matrix of the blocks gives every ``R - P`` of a batch of
    resamples in one product: the work per resample is one pass over the N x C entries, without
    sorting again.
    """

    def __init__(self, s: np.ndarray, y: np.ndarray, difficult: str):
        from scipy import sparse

        n, c = s.shape
        indices, row_counts, pos_img, pos_class = [], [], [], []
        for k in range(c):                                       # one stable sort per class, O(N) memory
            order = np.argsort(-s[:, k], kind="stable")
            lk = y[order, k]
            ranks = np.flatnonzero(lk == 1)
            if ranks.size == 0:
                continue
            neg = (lk == 0) | (lk == -1) if difficult == "negative" else (lk == 0)
            neg_ranks = np.flatnonzero(neg[:ranks[-1]])
            # the block of a negative is the first positive ranked below it; blocks come in rank order
            block = np.searchsorted(ranks, neg_ranks, side="right")
            indices.append(order[neg_ranks].astype(np.int32))
            row_counts.append(np.bincount(block, minlength=ranks.size))
            pos_img.append(order[ranks])
            pos_class.append(np.full(ranks.size, k))
        self.n, self.c = n, c
        self.pos_img = np.concatenate(pos_img) if pos_img else np.zeros(0, dtype=np.int64)
        pos_class = np.concatenate(pos_class) if pos_class else np.zeros(0, dtype=np.int64)
        self.classes, self.starts = np.unique(pos_class, return_index=True)
        cols = np.concatenate(indices) if indices else np.zeros(0, dtype=np.int32)
        indptr = np.concatenate([[0], np.cumsum(np.concatenate(row_counts))]) if row_counts else np.zeros(1)
        # 0/1 entries and integer counts: float32 sums are exact (every sum is <= N < 2**24)
        self.blocks = sparse.csr_matrix((np.ones(cols.size, dtype=np.float32), cols, indptr.astype(np.int64)),
                                        shape=(self.pos_img.size, n))
        self.harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])

    def _segment_cumsum(self, x: np.ndarray, inclusive: bool) -> np.ndarray:
        """Per class (column segments of a B x P array), the sum of the entries before (and, if ``inclusive``, at) each."""
        total = np.cumsum(x, axis=1)
        before = total - x
        offsets = np.repeat(before[:, self.starts], np.diff(np.append(self.starts, x.shape[1])), axis=1)
        out = total if inclusive else before
        out -= offsets
        return out

    def maps(self, counts: np.ndarray) -> np.ndarray:
        """mAP (fraction) for each row of ``counts`` (B x N image multiplicities)."""
        b = counts.shape[0]
        if self.pos_img.size == 0:
            return np.zeros(b)
        w = np.asarray(counts, dtype=np.float64)[:, self.pos_img]   # (B, P) copies of each positive
        # negatives above positive j: its own block and the blocks of the positives above it
        blocks = np.ascontiguousarray((self.blocks @ np.asarray(counts, dtype=np.float32).T).T, dtype=np.float64)
        neg_above = self._segment_cumsum(blocks, inclusive=True)
        above = self._segment_cumsum(w, inclusive=False)
        above += neg_above
        above_i = above.astype(np.int64)
        h = self.harmonic
        contrib = w - neg_above * (h[above_i + w.astype(np.int64)] - h[above_i])
        ap = np.zeros((b, self.c))
        n_pos = np.add.reduceat(w, self.starts, axis=1)
        sums = np.add.reduceat(contrib, self.starts, axis=1)
        ap[:, self.classes] = np.divide(sums, n_pos, out=np.zeros_like(sums), where=n_pos > 0)
        return ap.mean(axis=1)


def _maps_from_counts(s: np.ndarray, y: np.ndarray, counts: np.ndarray, difficult: str) -> np.ndarray:
    """mAP (fraction) for each row of ``counts`` (B x N multiplicities of the images); see :class:`_ResampledAP`."""
    return _ResampledAP(s, y, difficult).maps(counts)


def _check_boot_args(n_boot, confidence) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot: expected a positive integer, got {n_boot!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a number strictly between 0 and 1, got {confidence!r}")


def resample_counts(n: int, n_boot: int, seed: int = 0, batch: int = 64):
    """Yield B x N image multiplicities of ``n_boot`` resamples (N draws with replacement each), in batches.

    The draws come from ``numpy.random.default_rng(seed)`` in resample order, so every score
    matrix of the same N gets the same resamples from the same seed: that is what makes
    intervals of differences *paired*.
    """
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, batch):
        b = min(batch, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        yield np.bincount((idx + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n)


def bootstrap_maps(scores, labels, n_boot: int = 1000, seed: int = 0, difficult: str = "negative") -> np.ndarray:
    """mAP (percent) of each of ``n_boot`` bootstrap resamples of the images (see :func:`resample_counts`)."""
    s, y = _check_inputs(scores, labels, difficult)
    _check_boot_args(n_boot, 0.5)
    n = s.shape[0]
    engine = _ResampledAP(s, y, difficult)
    batch = max(1, min(256, int(2_000_000 // max(1, engine.pos_img.size))))   # bounds the B x P work arrays
    return np.concatenate([engine.maps(c) for c in resample_counts(n, n_boot, seed, batch)]) * 100.0


def percentile_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """The central ``confidence`` percentile interval (low, high) of bootstrap values."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a number strictly between 0 and 1, got {confidence!r}")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(np.asarray(values, dtype=np.float64), [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_map_ci(scores, labels, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
                     difficult: str = "negative") -> tuple[float, float]:
    """Return a percentile bootstrap interval (low, high) of mAP in percent, resampling images.

    Each of ``n_boot`` resamples draws N images with replacement (numpy ``default_rng(seed)``);
    a class with no positive in a resample gets AP 0, as in :func:`mean_average_precision`.
    """
    _check_boot_args(n_boot, confidence)
    return percentile_interval(bootstrap_maps(scores, labels, n_boot, seed, difficult), confidence)


def paired_bootstrap(scores_a, scores_b, labels, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
                     difficult: str = "negative") -> dict:
    """mAP(a) - mAP(b) in points, with a paired bootstrap interval (the same resampled images for a and b).

    ``scores_a`` / ``scores_b`` are each an (N, C) score matrix or a list of them (one per seed,
    the same N images and labels); with lists, each resample's difference is that of the seed
    means (``mean_s mAP(a_s) - mean_s mAP(b_s)`` on the same images), so the interval is that of the
    seed-averaged difference. Returns ``{"diff", "low", "high", "per_seed"}``: the difference of
    the seed means on the full sample, the interval, and each seed pair's own difference
    (``a_s - b_s``; a and b must then have the same number of seeds).
    """
    many_a = isinstance(scores_a, (list, tuple))
    many_b = isinstance(scores_b, (list, tuple))
    a = list(scores_a) if many_a else [scores_a]
    b = list(scores_b) if many_b else [scores_b]
    if not a or not b:
        raise ValueError("paired_bootstrap: expected at least one score matrix on each side")
    _check_boot_args(n_boot, confidence)
    full_a = [mean_average_precision(x, labels, difficult) for x in a]
    full_b = [mean_average_precision(x, labels, difficult) for x in b]
    boot_a = seed_mean_bootstraps(a, labels, n_boot, seed, difficult)
    boot_b = seed_mean_bootstraps(b, labels, n_boot, seed, difficult)
    low, high = percentile_interval(boot_a - boot_b, confidence)
    per_seed = [fa - fb for fa, fb in zip(full_a, full_b)] if len(a) == len(b) else []
    return {"diff": float(np.mean(full_a) - np.mean(full_b)), "low": low, "high": high, "per_seed": per_seed}


def seed_mean_bootstraps(score_list, labels, n_boot: int = 1000, seed: int = 0,
                         difficult: str = "negative") -> np.ndarray:
    """Per resample, the mean over seeds of mAP (percent): one (n_boot,) vector, the same images for every seed.

    Differences of two such vectors (same ``seed``) are paired: that is all :func:`paired_bootstrap` does.
    """
    return np.mean([bootstrap_maps(x, labels, n_boot, seed, difficult) for x in score_list], axis=0)


def interval_verdict(low: float, high: float, better: str = "higher", worse: str = "lower",
                     same: str = "not distinguishable") -> str:
    """What an interval of a difference supports: ``better`` if it lies above 0, ``worse`` below, else ``same``."""
    if low > 0:
        return better
    if high < 0:
        return worse
    return same
