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
    It covers the test images only: every resample keeps all the seeds.

Seeds and images, :func:`two_level_bootstrap_maps`
    Rows given as ``{row: [scores of seed 0, seed 1, ...]}``: every resample draws the test images
    *and* the seeds with replacement, the same draws for every row (seed k of two rows shares the
    corpus), and gives each row the mean over the drawn seeds of its mAP on the drawn images. Its
    intervals (and those of differences of rows) hold the seed-to-seed variation as well as the
    images' luck. One seed: the image bootstrap exactly. Few seeds make it too narrow (measured
    numbers in the function's docstring). :func:`seed_mean_maps` is the estimate that goes with it.

Many comparisons at once, :func:`simultaneous_intervals` / :func:`family_wise_comparisons`
    K differences against one reference row get max-|t| bootstrap intervals that hold all
    together at the stated level, beside the unadjusted percentile interval of each, with the
    verdict read from the simultaneous one and bootstrap p-values (unadjusted, max-t, Holm).

Verdicts near 0, :func:`verdict_margin` / :func:`verdicts_agree`
    How far an interval's nearer end is from 0, and whether a rerun's verdict agrees with a
    committed one up to a tolerance on the interval ends (the rule is in the docstring).
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from ..checks import check_int, check_real
from ..errors import ConfigError

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
    "FewSeedsWarning",
    "per_seed_maps",
    "seed_mean_maps",
    "per_seed_bootstrap_maps",
    "resample_seed_counts",
    "two_level_means",
    "two_level_bootstrap_maps",
    "simultaneous_intervals",
    "family_wise_comparisons",
    "verdict_margin",
    "verdicts_agree",
    "verdict_direction",
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
    so one sparse (positives x images) matrix of the blocks gives the block sums of a batch of
    resamples in one product, and a cumulative sum per class turns them into every ``R - P``: the
    work per resample is one pass over the N x C entries, without sorting again.
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
        # 0/1 entries and integer counts: float32 sums are exact while every sum is <= N < 2**24
        self.blocks = sparse.csr_matrix((np.ones(cols.size, dtype=np.float32 if n < 2**24 else np.float64), cols,
                                         indptr.astype(np.int64)),
                                        shape=(self.pos_img.size, n))
        self.harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])

    def maps(self, counts: np.ndarray) -> np.ndarray:
        """mAP (fraction) for each row of ``counts`` (B x N image multiplicities)."""
        b = counts.shape[0]
        ap = np.zeros((self.c, b))
        if self.pos_img.size == 0:
            return ap.mean(axis=0)
        # (positives x resamples) layout: each class is a contiguous block of rows. Counts and their
        # sums are integers <= N, which float32 holds exactly below 2**24.
        exact = np.float32 if self.n < 2**24 else np.float64
        per_image = np.ascontiguousarray(np.asarray(counts).T, dtype=exact)   # (N, B)
        w = per_image[self.pos_img]                                 # (P, B) copies of each positive
        blocks = self.blocks @ per_image                            # (P, B) negative copies in each block
        h = self.harmonic
        for k, start, end in zip(self.classes, self.starts, np.append(self.starts[1:], self.pos_img.size)):
            w_k = w[start:end]
            neg_above = np.cumsum(blocks[start:end], axis=0)        # its own block and those of the positives above
            pos_through = np.cumsum(w_k, axis=0)                    # positive copies above and at each positive
            above = (pos_through - w_k + neg_above).astype(np.int64)
            contrib = w_k - neg_above * (h[above + w_k.astype(np.int64)] - h[above])   # float64
            n_pos = pos_through[-1].astype(np.float64)
            np.divide(contrib.sum(axis=0), n_pos, out=ap[k], where=n_pos > 0)
        return ap.mean(axis=0)


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


def _draw_batch_size(y: np.ndarray) -> int:
    """Resamples per batch: bounds the (positives x batch) work arrays (the positives depend on the labels only)."""
    return max(1, min(256, int(2_000_000 // max(1, int((y == 1).sum())))))


# image draws kept in memory and shared by every score matrix up to this many bytes (else drawn again for each)
SHARED_DRAWS_BYTES = 1 << 27


def _shared_draws(n: int, n_boot: int, seed: int, batch: int) -> list[np.ndarray] | None:
    """The batches of :func:`resample_counts`, kept compactly (smallest unsigned type) if they fit SHARED_DRAWS_BYTES."""
    if n * n_boot > SHARED_DRAWS_BYTES:
        return None
    return [c.astype(np.min_scalar_type(int(c.max()))) for c in resample_counts(n, n_boot, seed, batch)]


def _resampled_maps(s: np.ndarray, y: np.ndarray, n_boot: int, seed: int, difficult: str,
                    draws: list[np.ndarray] | None = None) -> np.ndarray:
    """mAP (percent) of checked scores on the ``n_boot`` image resamples of :func:`resample_counts` (``seed``).

    ``draws`` are those resamples already drawn (:func:`_shared_draws`); without them they are drawn here.
    """
    engine = _ResampledAP(s, y, difficult)
    batches = draws if draws is not None else resample_counts(s.shape[0], n_boot, seed, _draw_batch_size(y))
    return np.concatenate([engine.maps(c) for c in batches]) * 100.0


def bootstrap_maps(scores, labels, n_boot: int = 1000, seed: int = 0, difficult: str = "negative") -> np.ndarray:
    """mAP (percent) of each of ``n_boot`` bootstrap resamples of the images (see :func:`resample_counts`)."""
    s, y = _check_inputs(scores, labels, difficult)
    _check_boot_args(n_boot, 0.5)
    return _resampled_maps(s, y, n_boot, seed, difficult)


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


# ----------------------------------------------------------------------------------------------
# two-level bootstrap: seeds and test images
# ----------------------------------------------------------------------------------------------
class FewSeedsWarning(UserWarning):
    """Two seeds only: the seed level of a two-level bootstrap interval is about the range of the two seeds."""


def _seed_list(value, name) -> list:
    """The per-seed score matrices of one row (a list / tuple of (N, C) matrices or an (S, N, C) array)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if getattr(value, "ndim", None) == 3:
        return list(value)
    raise ConfigError(f"rows[{name!r}]: expected a list of (N, C) score matrices, one per seed, got {type(value).__name__}"
                      + (f" of shape {tuple(value.shape)}" if hasattr(value, "shape") else ""))


def _check_rows(rows, labels, difficult: str) -> tuple[list[str], int]:
    """Check ``{row: [scores of seed 0, seed 1, ...]}`` against ``labels``, every matrix before any work; return names, seeds."""
    if difficult not in DIFFICULT_MODES:
        raise ConfigError(f"difficult: expected one of {DIFFICULT_MODES}, got {difficult!r}")
    if not isinstance(rows, Mapping) or not rows:
        raise ConfigError("rows: expected a non-empty mapping {row name: [scores of seed 0, scores of seed 1, ...]}, got "
                          + (f"an empty {type(rows).__name__}" if isinstance(rows, Mapping) else type(rows).__name__))
    names = list(rows)
    n_seeds = None
    for name in names:
        seeds = _seed_list(rows[name], name)
        if not seeds:
            raise ConfigError(f"rows[{name!r}]: expected at least one score matrix (one per seed), got none")
        if n_seeds is None:
            n_seeds = len(seeds)
        elif len(seeds) != n_seeds:
            raise ConfigError(f"rows[{name!r}]: expected {n_seeds} score matrices (one per seed, as rows[{names[0]!r}]), "
                              f"got {len(seeds)}")
        for k, x in enumerate(seeds):
            try:
                _check_inputs(x, labels, difficult)
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"rows[{name!r}][{k}] (seed {k}): {exc}") from None
    return names, n_seeds


def per_seed_maps(rows, labels, difficult: str = "negative") -> dict[str, np.ndarray]:
    """mAP (percent) of every seed of every row on all the test images: ``{row: (S,) array}``."""
    names, _ = _check_rows(rows, labels, difficult)
    out, n_pos = {}, None
    for name in names:
        values = []
        for x in _seed_list(rows[name], name):
            s, y = _check_inputs(x, labels, difficult)
            ap, n_pos = _ap_columns(s, y, difficult)
            values.append(float(np.mean(ap * 100.0)))      # as mean_average_precision
        out[name] = np.array(values)
    _warn_no_positives(n_pos, "AP")                          # the labels are shared: warn once
    return out


def seed_mean_maps(rows, labels, difficult: str = "negative") -> dict[str, float]:
    """The plain estimate that goes with :func:`two_level_bootstrap_maps`: per row, the mean over seeds of mAP on all images."""
    return {name: float(v.mean()) for name, v in per_seed_maps(rows, labels, difficult).items()}


def per_seed_bootstrap_maps(rows, labels, n_boot: int = 1000, seed: int = 0,
                            difficult: str = "negative") -> dict[str, np.ndarray]:
    """mAP (percent) of every seed of every row on every image resample: ``{row: (S, n_boot) array}``.

    Every row and seed is evaluated on the same resamples (:func:`resample_counts` with ``seed``),
    so ``out[row].mean(axis=0)`` is :func:`seed_mean_bootstraps` of that row. One score matrix is
    in work at a time (memory: one matrix, its sort structure and a bounded batch of resamples);
    a seed whose scores equal an earlier seed's of the same row (a row that does not depend on the
    seed) reuses that seed's values instead of being evaluated again. The image draws are made
    once and shared while ``N * n_boot`` <= ``SHARED_DRAWS_BYTES`` (one byte per count: 40 MB
    for 40,000 images and 1,000 resamples), else drawn again for each matrix; the values are the same.
    """
    names, n_seeds = _check_rows(rows, labels, difficult)
    _check_boot_args(n_boot, 0.5)
    check_int("seed", seed, 0)
    y = _check_inputs(_seed_list(rows[names[0]], names[0])[0], labels, difficult)[1]
    draws = _shared_draws(y.shape[0], n_boot, seed, _draw_batch_size(y))
    out = {}
    for name in names:
        seeds = _seed_list(rows[name], name)
        maps = np.empty((n_seeds, n_boot))
        for k, x in enumerate(seeds):
            earlier = next((j for j in range(k) if seeds[j] is x or np.array_equal(_to_numpy(seeds[j], "scores"),
                                                                                   _to_numpy(x, "scores"))), None)
            if earlier is not None:
                maps[k] = maps[earlier]
                continue
            s, y = _check_inputs(x, labels, difficult)
            maps[k] = _resampled_maps(s, y, n_boot, seed, difficult, draws)
        out[name] = maps
    return out


def resample_seed_counts(n_seeds: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """``(n_boot, n_seeds)`` multiplicities of the seeds drawn (``n_seeds`` draws with replacement) for each resample.

    The draws come from ``numpy.random.default_rng(numpy.random.SeedSequence(seed, spawn_key=(1,)))``,
    a stream independent of the image draws of :func:`resample_counts` with the same ``seed``:
    resample ``b`` draws ``integers(0, n_seeds, size=n_seeds)``, in resample order.
    """
    check_int("n_seeds", n_seeds, 1)
    check_int("n_boot", n_boot, 1)
    check_int("seed", seed, 0)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    draws = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    offsets = n_seeds * np.arange(n_boot)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=n_boot * n_seeds).reshape(n_boot, n_seeds)


def two_level_means(per_seed: Mapping[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """Per row, the mean over the resampled seeds of its per-seed bootstrap mAPs: ``{row: (n_boot,)}``.

    ``per_seed`` is :func:`per_seed_bootstrap_maps`'s output (``{row: (S, n_boot)}``). Resample
    ``b`` draws seeds with :func:`resample_seed_counts` (``seed``), the same draws for every row,
    and averages ``per_seed[row][s, b]`` over them. See :func:`two_level_bootstrap_maps`.
    """
    if not isinstance(per_seed, Mapping) or not per_seed:
        raise ConfigError("per_seed: expected a non-empty mapping {row name: (seeds, n_boot) array}")
    arrays = {name: np.asarray(m, dtype=np.float64) for name, m in per_seed.items()}
    first = next(iter(arrays))
    shape = arrays[first].shape
    for name, m in arrays.items():
        if m.ndim != 2 or m.shape != shape or 0 in m.shape:
            raise ConfigError(f"per_seed[{name!r}]: expected a (seeds, n_boot) array of the shape of per_seed[{first!r}] "
                              f"{shape}, got {m.shape}")
    n_seeds, n_boot = shape
    if n_seeds == 2:
        warnings.warn("two seeds: every resample draws seed 0 twice, seed 1 twice or one of each, so the seed part of "
                      "a 95% interval is the range of the two seeds, which holds the mean over all seeds only half the time; "
                      "use 5 or more seeds for verdicts", FewSeedsWarning, stacklevel=2)
    weights = resample_seed_counts(n_seeds, n_boot, seed) / n_seeds
    return {name: np.einsum("bs,sb->b", weights, m) for name, m in arrays.items()}


def two_level_bootstrap_maps(rows, labels, n_boot: int = 1000, seed: int = 0,
                             difficult: str = "negative") -> dict[str, np.ndarray]:
    """Two-level bootstrap of the seed-mean mAP (percent), over seeds and test images: ``{row: (n_boot,)}``.

    ``rows`` is ``{row: [scores of seed 0 (N, C), scores of seed 1, ...]}`` (every row the same
    number of seeds; seed k of every row shares the corpus), ``labels`` one (N, C) matrix.
    Resample ``b`` draws N images with replacement (:func:`resample_counts`, ``seed``) and S seeds
    with replacement (:func:`resample_seed_counts`, ``seed``), **the same draws for every row**, and
    gives each row the mean over the drawn seeds of its mAP on the drawn images. Differences of two
    rows per resample are therefore paired on both levels, and their spread holds the seed-to-seed
    variation as well as the test images' luck. The plain estimate is :func:`seed_mean_maps`.

    * One seed: the seed draw is always that seed, so this is the image bootstrap,
      :func:`bootstrap_maps` / :func:`seed_mean_bootstraps`, value for value. The interval then
      covers the test images only; say so next to it.
    * Two seeds: computed the same way, with a :class:`FewSeedsWarning`. Each resample uses seed
      0 twice, seed 1 twice or one of each (1/4, 1/4, 1/2), so the seed part of a 95% interval is
      the range of the two seeds, which misses the mean over all seeds half the time (both draws
      fall on the same side of a symmetric distribution's centre with probability 1/2). It is
      kept rather than refused because it is still the more honest of the two computable
      intervals: the image-only one leaves the seeds out altogether.
    * Few seeds in general: the bootstrap of S seeds spreads the seed mean by ``(S-1)/S`` of its
      variance and has normal-like, not t-like, tails. Measured (2,000 simulations of normal seed
      effects, no image noise, 1,000 resamples): a 95% percentile interval of the seed mean misses
      in 50% / 25% / 20% / 15% / 9.5% / 6% of simulations with 2 / 3 / 4 / 5 / 10 / 20 seeds. With
      the image noise also in play the miss rate lies between that and 5%.

    Cost: one image bootstrap per (row, seed) whose scores differ from the row's earlier seeds,
    :func:`per_seed_bootstrap_maps`; memory is bounded by one score matrix at a time.
    """
    return two_level_means(per_seed_bootstrap_maps(rows, labels, n_boot, seed, difficult), seed)


# ----------------------------------------------------------------------------------------------
# family-wise intervals for K paired differences
# ----------------------------------------------------------------------------------------------
def _check_differences(estimates, boot_differences) -> tuple[np.ndarray, np.ndarray]:
    """Validate K estimates and their (K, B) bootstrap differences; return them as float64."""
    est = np.asarray(estimates, dtype=np.float64)
    diffs = np.asarray(boot_differences, dtype=np.float64)
    if est.ndim != 1 or est.size == 0:
        raise ConfigError(f"estimates: expected a 1-D array of K >= 1 differences, got shape {est.shape}")
    if diffs.ndim != 2 or diffs.shape[0] != est.size or diffs.shape[1] < 2:
        raise ConfigError(f"boot_differences: expected a (K={est.size}, B>=2) array (one row per estimate), "
                          f"got shape {diffs.shape}")
    if not (np.isfinite(est).all() and np.isfinite(diffs).all()):
        raise ConfigError("estimates / boot_differences: expected finite values, found NaN or inf")
    return est, diffs


def simultaneous_intervals(estimates, boot_differences, confidence: float = 0.95) -> dict:
    """Max-|t| bootstrap intervals of K differences that hold **all together** with probability ``confidence``.

    ``estimates`` (K,) are the differences on the full sample, ``boot_differences`` (K, B) the same
    differences on B paired resamples (e.g. of :func:`two_level_bootstrap_maps`). Each resample
    is studentised per comparison, ``t[k, b] = |d[k, b] - estimate[k]| / se[k]`` with ``se[k]``
    the bootstrap std of comparison k; ``q`` is the ``confidence`` quantile over b of
    ``max_k t[k, b]``, and comparison k gets ``estimate[k] +- q * se[k]``.

    Guarantee: to the extent that the bootstrap reproduces the joint sampling distribution of the
    K differences (asymptotically; see :func:`two_level_bootstrap_maps` on few seeds), all K
    intervals hold their true values at once with probability ``confidence``, so the chance that
    *any* verdict read from them has the wrong sign is at most ``1 - confidence`` (family-wise).

    Why this and not Bonferroni or Holm: the K comparisons share the reference row, the images and
    the seeds, so they are strongly correlated (a duplicated comparison is perfectly so); the max
    statistic uses that correlation from the resamples themselves, where Bonferroni (level
    ``1 - alpha / K`` each) assumes the worst case and widens every interval more than needed, and
    Holm is a step-down test that gives adjusted decisions and p-values but no intervals. Why
    studentised rather than a percentile (rank) max statistic: the studentised quantile is one
    quantile of B maxima and ``se`` uses all B values, whereas simultaneous percentile ends at
    K = 17 sit about 1 or 2 resamples from the extreme of 1,000, so they would move a lot between
    runs; and studentising keeps the noisiest comparison from setting ``q`` alone.

    A comparison with ``se == 0`` (no variation in any resample, e.g. two rows that rank every
    image alike) gets the point interval ``[estimate, estimate]`` and stays out of the maximum.
    Returns ``{"low", "high", "se", "p", "p family-wise"}`` ((K,) arrays) and ``"q"`` (float):
    ``p`` is the two-sided bootstrap p-value of difference 0, ``(1 + #{b: |d[k, b] - estimate[k]|
    >= |estimate[k]|}) / (B + 1)``, and ``p family-wise`` the single-step max-t adjusted one,
    ``(1 + #{b: max_j t[j, b] >= |estimate[k]| / se[k]}) / (B + 1)``, which is below
    ``1 - confidence`` about exactly when the simultaneous interval excludes 0.
    """
    est, diffs = _check_differences(estimates, boot_differences)
    check_real("confidence", confidence, 0, 1, low_open=True, high_open=True)
    n_boot = diffs.shape[1]
    se = diffs.std(axis=1, ddof=1)
    live = se > 0
    deviation = np.abs(diffs - est[:, None])
    t = np.zeros_like(deviation)
    np.divide(deviation, se[:, None], out=t, where=live[:, None])
    max_t = t.max(axis=0)
    q = float(np.quantile(max_t, confidence))
    t_obs = np.full(est.size, np.inf)
    t_obs[est == 0] = 0.0
    t_obs[live] = np.abs(est[live]) / se[live]
    p = (1 + (deviation >= np.abs(est)[:, None]).sum(axis=1)) / (n_boot + 1)
    p_family = (1 + (max_t[None, :] >= t_obs[:, None]).sum(axis=1)) / (n_boot + 1)
    return {"low": est - q * se, "high": est + q * se, "se": se, "q": q, "p": p, "p family-wise": p_family}


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (valid under any dependence)."""
    order = np.argsort(p, kind="stable")
    k = p.size
    adjusted = np.minimum(1.0, np.maximum.accumulate((k - np.arange(k)) * p[order]))
    out = np.empty(k)
    out[order] = adjusted
    return out


def family_wise_comparisons(names, estimates, boot_differences, confidence: float = 0.95, better: str = "higher",
                            worse: str = "lower", same: str = "not distinguishable") -> list[dict]:
    """One record per comparison: estimate, unadjusted and simultaneous intervals, the family-wise verdict, p-values.

    ``names`` (K unique), ``estimates`` (K,) and ``boot_differences`` (K, B) as in
    :func:`simultaneous_intervals`. Each record holds ``comparison``, ``difference``,
    ``bootstrap std``, ``CI low`` / ``CI high`` (the unadjusted central percentile interval at
    ``confidence``, :func:`percentile_interval`, for that comparison alone), ``family-wise low`` /
    ``family-wise high`` (simultaneous over all K at ``confidence``), ``verdict``
    (:func:`interval_verdict` of the family-wise interval, with ``better`` / ``worse`` / ``same``),
    ``unadjusted verdict`` (of the percentile interval), ``margin`` (:func:`verdict_margin` of the
    family-wise interval), ``p`` (two-sided bootstrap p of difference 0), ``p family-wise``
    (max-t adjusted, agrees with ``verdict``) and ``p Holm`` (Holm's adjustment of ``p``).
    """
    est, diffs = _check_differences(estimates, boot_differences)
    names = [str(n) for n in names]
    if len(names) != est.size or len(set(names)) != len(names):
        raise ConfigError(f"names: expected {est.size} distinct comparison names (one per estimate), got {names!r}")
    fw = simultaneous_intervals(est, diffs, confidence)
    p_holm = _holm(fw["p"])
    records = []
    for k, name in enumerate(names):
        low, high = percentile_interval(diffs[k], confidence)
        fw_low, fw_high = float(fw["low"][k]), float(fw["high"][k])
        records.append({
            "comparison": name, "difference": float(est[k]), "bootstrap std": float(fw["se"][k]),
            "CI low": low, "CI high": high, "family-wise low": fw_low, "family-wise high": fw_high,
            "verdict": interval_verdict(fw_low, fw_high, better, worse, same),
            "unadjusted verdict": interval_verdict(low, high, better, worse, same),
            "margin": verdict_margin(fw_low, fw_high),
            "p": float(fw["p"][k]), "p family-wise": float(fw["p family-wise"][k]), "p Holm": float(p_holm[k])})
    return records


# ----------------------------------------------------------------------------------------------
# verdicts near their boundary
# ----------------------------------------------------------------------------------------------
def _interval(value, name: str) -> tuple[float, float]:
    """``(low, high)`` with finite ends and ``low <= high``, or an error naming ``name``."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected an interval (low, high), got {value!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and low <= high):
        raise ConfigError(f"{name}: expected finite ends with low <= high, got ({low}, {high})")
    return low, high


def verdict_margin(low: float, high: float) -> float:
    """How far the interval's nearer end lies from 0: how much the ends could move before the verdict changes."""
    low, high = _interval((low, high), "interval")
    return min(abs(low), abs(high))


def verdict_direction(verdict: str) -> int:
    """+1 for a verdict that says "higher" / "helps", -1 for "lower" / "hurts", 0 for "not distinguishable"."""
    text = str(verdict).strip().lower()
    if text.endswith(("higher", "helps")):
        return 1
    if text.endswith(("lower", "hurts")):
        return -1
    if "not distinguishable" in text or text.endswith("zero"):
        return 0
    raise ConfigError(f"verdict {verdict!r}: expected one ending in higher/helps, lower/hurts, or 'not distinguishable'")


def verdicts_agree(committed, rerun, tolerance: float) -> bool:
    """Whether a rerun's verdict supports the committed one, up to ``tolerance`` on the interval ends.

    ``committed`` / ``rerun`` are intervals ``(low, high)`` (the verdict is :func:`interval_verdict`'s:
    "higher" above 0, "lower" below, else "not distinguishable") or ``(verdict, low, high)`` with the
    verdict as written in a table (read by :func:`verdict_direction`). Equal verdicts agree. "higher"
    (or "lower") against "not distinguishable" agree only when the end that decides that side (the low
    end for "higher", the high end for "lower") lies within ``tolerance`` of 0 in the committed or in
    the rerun interval: moving the ends by at most ``tolerance`` could then give both the same verdict.
    "higher" against "lower" never agree. This judges the verdict only; whether the numbers themselves
    reproduce is a separate check of the ends against their own tolerance.
    """
    def read(value, name):
        if isinstance(value, (tuple, list)) and len(value) == 3:
            low, high = _interval(value[1:], name)
            return verdict_direction(value[0]), low, high
        low, high = _interval(value, name)
        return (1 if low > 0 else -1 if high < 0 else 0), low, high

    c_dir, c_low, c_high = read(committed, "committed")
    r_dir, r_low, r_high = read(rerun, "rerun")
    tol = check_real("tolerance", tolerance, 0)
    if c_dir == r_dir:
        return True
    if c_dir * r_dir < 0:
        return False
    decisive = c_dir or r_dir
    ends = (c_low, r_low) if decisive > 0 else (c_high, r_high)
    return min(abs(e) for e in ends) <= tol


