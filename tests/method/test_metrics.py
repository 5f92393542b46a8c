"""Tests for lcmc_core.method.metrics: AP/mAP conventions, ML-GCN F1 at top-k, bootstrap interval."""
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from lcmc_core.method.metrics import (
    NoPositivesWarning,
    _maps_from_counts,
    average_precision_per_class,
    bootstrap_map_ci,
    bootstrap_maps,
    f1_at_top_k,
    mean_average_precision,
    resample_counts,
)


def _random_problem(n=300, c=7, seed=0, difficult_rate=0.0):
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, c)) < 0.2).astype(int)
    labels[0] = 1                                    # every class has a positive
    scores = rng.normal(size=(n, c)) + 1.5 * labels  # continuous: no ties
    if difficult_rate:
        labels[(rng.random((n, c)) < difficult_rate) & (labels == 0)] = -1
        labels[1] = 1
    return scores, labels


# ---------------------------------------------------------------- AP by hand
def test_ap_five_items_by_hand():
    scores = np.array([[0.9], [0.8], [0.7], [0.6], [0.5]])
    labels = np.array([[1], [0], [1], [0], [1]])
    # positives at ranks 1, 3, 5: precisions 1/1, 2/3, 3/5
    expected = (1 + 2 / 3 + 3 / 5) / 3 * 100
    assert average_precision_per_class(scores, labels)[0] == pytest.approx(expected)
    assert mean_average_precision(scores, labels) == pytest.approx(expected)


def test_ap_difficult_negative_vs_ignore_by_hand():
    scores = np.array([[0.9], [0.8], [0.7], [0.6], [0.5]])
    labels = np.array([[1], [-1], [1], [0], [1]])
    # "negative": the -1 at rank 2 is a negative -> same as the previous case
    assert mean_average_precision(scores, labels, "negative") == pytest.approx((1 + 2 / 3 + 3 / 5) / 3 * 100)
    # "ignore": the -1 is dropped -> positives at ranks 1, 2, 4 of the remaining 4 items
    assert mean_average_precision(scores, labels, "ignore") == pytest.approx((1 + 2 / 2 + 3 / 4) / 3 * 100)


def test_ties_are_broken_by_input_order():
    # stable sort: among equal scores the earlier row is ranked first
    assert mean_average_precision([[0.5], [0.5]], [[0], [1]]) == pytest.approx(50.0)
    assert mean_average_precision([[0.5], [0.5]], [[1], [0]]) == pytest.approx(100.0)


def test_class_without_positives_gives_zero_and_counts_in_mean():
    scores = np.array([[0.9, 0.1], [0.2, 0.8]])
    labels = np.array([[1, 0], [0, 0]])
    with pytest.warns(NoPositivesWarning, match="indices \\[1\\]"):
        ap = average_precision_per_class(scores, labels)
    np.testing.assert_allclose(ap, [100.0, 0.0])
    with pytest.warns(NoPositivesWarning):
        assert mean_average_precision(scores, labels) == pytest.approx(50.0)


# ---------------------------------------------------------------- parity with scikit-learn
def test_parity_with_sklearn_without_ties():
    scores, labels = _random_problem()
    ours = average_precision_per_class(scores, labels)
    ref = [average_precision_score(labels[:, j], scores[:, j]) * 100 for j in range(labels.shape[1])]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_parity_with_sklearn_difficult_modes():
    scores, labels = _random_problem(difficult_rate=0.1, seed=3)
    neg = average_precision_per_class(scores, labels, "negative")
    ign = average_precision_per_class(scores, labels, "ignore")
    for j in range(labels.shape[1]):
        keep = labels[:, j] != -1
        assert neg[j] == pytest.approx(average_precision_score(labels[:, j] == 1, scores[:, j]) * 100)
        assert ign[j] == pytest.approx(average_precision_score(labels[keep, j], scores[keep, j]) * 100)


def test_accepts_torch_tensors():
    scores, labels = _random_problem()
    assert mean_average_precision(torch.from_numpy(scores), torch.from_numpy(labels)) == \
        pytest.approx(mean_average_precision(scores, labels))


@pytest.mark.parametrize("scores, labels, difficult, match", [
    (np.zeros((3,)), np.zeros((3,)), "negative", "scores: expected a 2-D"),
    (np.zeros((3, 2)), np.zeros((3, 3)), "negative", "labels: expected the same shape"),
    (np.zeros((3, 2)), np.full((3, 2), 2), "negative", "labels: expected only 1, 0 or -1"),
    (np.full((3, 2), np.nan), np.zeros((3, 2)), "negative", "scores: expected finite"),
    (np.zeros((0, 2)), np.zeros((0, 2)), "negative", "at least one image"),
    (np.zeros((3, 2)), np.zeros((3, 2)), "drop", "difficult: expected one of"),
])
def test_bad_inputs_are_refused(scores, labels, difficult, match):
    with pytest.raises(ValueError, match=match):
        mean_average_precision(scores, labels, difficult)


# ---------------------------------------------------------------- F1 at top-k
def test_f1_at_top_k_by_hand():
    scores = np.array([[0.9, 0.6, 0.1],
                       [0.2, 0.8, 0.7],
                       [0.4, 0.3, 0.95]])
    labels = np.array([[1, 0, 1],
                       [0, 1, 1],
                       [1, 0, 1]])
    # top-2 and >= 0.5: img0 -> {0, 1}; img1 -> {1, 2}; img2 -> {2} (class 0 has 0.4 < 0.5)
    # per class: Nc = [1, 1, 2], Np = [1, 2, 2], Ng = [2, 1, 3]
    cp = (1 / 1 + 1 / 2 + 2 / 2) / 3
    cr = (1 / 2 + 1 / 1 + 2 / 3) / 3
    op, orr = 4 / 5, 4 / 6
    out = f1_at_top_k(scores, labels, k=2, threshold=0.5)
    assert set(out) == {"CP", "CR", "CF1", "OP", "OR", "OF1"}
    assert out["CP"] == pytest.approx(100 * cp)
    assert out["CR"] == pytest.approx(100 * cr)
    assert out["CF1"] == pytest.approx(100 * 2 * cp * cr / (cp + cr))
    assert out["OP"] == pytest.approx(100 * op)
    assert out["OR"] == pytest.approx(100 * orr)
    assert out["OF1"] == pytest.approx(100 * 2 * op * orr / (op + orr))


def test_f1_difficult_counts_as_negative_and_threshold_none():
    scores = np.array([[0.9, 0.1], [0.8, 0.3]])
    labels = np.array([[1, 1], [-1, 1]])
    # top-1, no threshold: both images predict class 0; the -1 on image 1 counts as a wrong prediction
    out = f1_at_top_k(scores, labels, k=1, threshold=None)
    assert out["OP"] == pytest.approx(50.0)            # 1 correct of 2 predicted
    assert out["OR"] == pytest.approx(100 * 1 / 3)     # 1 found of 3 positives
    assert out["CP"] == pytest.approx(100 * (0.5 + 0) / 2)  # class 1 never predicted -> precision 0
    ign = f1_at_top_k(scores, labels, k=1, threshold=None, difficult="ignore")
    assert ign["OP"] == pytest.approx(100.0)


def test_f1_bad_k():
    with pytest.raises(ValueError, match="k: expected an integer between 1 and"):
        f1_at_top_k(np.zeros((2, 3)), np.zeros((2, 3)), k=4)


# ---------------------------------------------------------------- bootstrap
def test_bootstrap_weighted_map_equals_direct_resample():
    scores, labels = _random_problem(n=120, c=5, seed=1, difficult_rate=0.1)
    scores[::7, 0] = 0.25                              # a few ties too
    rng = np.random.default_rng(5)
    for difficult in ("negative", "ignore"):
        for _ in range(5):
            idx = np.sort(rng.integers(0, len(scores), len(scores)))
            counts = np.bincount(idx, minlength=len(scores))[None]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NoPositivesWarning)
                direct = mean_average_precision(scores[idx], labels[idx], difficult)
            fast = _maps_from_counts(scores, labels.astype(np.int8), counts, difficult)[0] * 100
            assert fast == pytest.approx(direct, abs=1e-9)


def test_bootstrap_ci_contains_point_estimate_and_is_seeded():
    scores, labels = _random_problem(n=400, c=6)
    point = mean_average_precision(scores, labels)
    low, high = bootstrap_map_ci(scores, labels, n_boot=300, seed=0)
    assert low < point < high
    assert (low, high) == bootstrap_map_ci(scores, labels, n_boot=300, seed=0)
    assert (low, high) != bootstrap_map_ci(scores, labels, n_boot=300, seed=1)
    narrow = bootstrap_map_ci(scores, labels, n_boot=300, confidence=0.5, seed=0)
    assert low <= narrow[0] <= narrow[1] <= high


def test_bootstrap_bad_arguments():
    s, y = _random_problem(n=20, c=2)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_map_ci(s, y, n_boot=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_map_ci(s, y, confidence=1.0)


def _reference_bootstrap(scores, labels, n_boot, seed, difficult):
    """The bootstrap as this package computed it before the one-sort version: one argsort and one
    N x C cumulative pass per chunk of resamples (kept here to check the fast version against it)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.int8)
    n, c = s.shape
    rng = np.random.default_rng(seed)
    chunk = max(1, int(4_000_000 // (n * c)))
    maps = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        counts = np.bincount((idx + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n)
        order = np.argsort(-s, axis=0, kind="stable")
        lab = np.take_along_axis(y, order, axis=0)
        pos = (lab == 1).astype(np.float64)
        valid = (lab != -1) if difficult == "ignore" else np.ones((n, c), dtype=bool)
        harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])
        w = counts[:, order] * valid
        cum = np.cumsum(w, axis=1)
        before = cum - w
        wpos = w * pos
        pos_before = np.cumsum(wpos, axis=1) - wpos
        contrib = wpos - pos * (before - pos_before) * (harmonic[cum] - harmonic[before])
        n_pos = wpos.sum(axis=1)
        ap = np.divide(contrib.sum(axis=1), n_pos, out=np.zeros_like(n_pos), where=n_pos > 0)
        maps.append(ap.mean(axis=1))
    return np.concatenate(maps) * 100.0


@pytest.mark.parametrize("n,c,difficult", [(60, 4, "negative"), (500, 20, "ignore"), (3000, 12, "negative")])
def test_one_sort_bootstrap_gives_the_same_values_as_before(n, c, difficult):
    scores, labels = _random_problem(n=n, c=c, seed=4, difficult_rate=0.05)
    scores[::5, 0] = 0.5                                  # ties
    labels[:, -1] = 0                                     # a class without positives
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoPositivesWarning)
        fast = bootstrap_maps(scores, labels, n_boot=150, seed=9, difficult=difficult)
    slow = _reference_bootstrap(scores, labels, 150, 9, difficult)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-10)
    assert bootstrap_map_ci(scores, labels, n_boot=150, seed=9, difficult=difficult) == pytest.approx(
        tuple(np.percentile(slow, [2.5, 97.5])), abs=1e-10)


def test_resamples_are_the_same_for_every_score_matrix_of_a_seed():
    a = list(resample_counts(30, 10, seed=2, batch=3))
    b = list(resample_counts(30, 10, seed=2, batch=7))
    assert np.array_equal(np.concatenate(a), np.concatenate(b))  # batching does not change the draws
    assert all(row.sum() == 30 for row in np.concatenate(a))


# ---------------------------------------------------------------- paired bootstrap
def test_paired_bootstrap_matches_a_brute_force_loop():
    from lcmc_core.method.metrics import mean_average_precision, paired_bootstrap, resample_counts
    rng = np.random.default_rng(3)
    y = (rng.random((30, 3)) < 0.4).astype(int)
    y[0] = 1
    a = rng.normal(size=(30, 3)) + 1.5 * y
    b = rng.normal(size=(30, 3)) + 0.5 * y
    out = paired_bootstrap(a, b, y, n_boot=50, seed=4)
    diffs = []
    for counts in resample_counts(30, 50, seed=4):
        for row in counts:
            idx = np.repeat(np.arange(30), row)
            diffs.append(mean_average_precision(a[idx], y[idx]) - mean_average_precision(b[idx], y[idx]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    assert out["low"] == pytest.approx(lo, abs=1e-9) and out["high"] == pytest.approx(hi, abs=1e-9)
    assert out["diff"] == pytest.approx(mean_average_precision(a, y) - mean_average_precision(b, y))


def test_paired_bootstrap_hand_case_and_seed_means():
    import warnings

    from lcmc_core.method.metrics import interval_verdict, paired_bootstrap
    y = np.array([[1], [0]])
    good = np.array([[1.0], [0.0]])     # AP 1 on any resample holding the positive
    bad = np.array([[0.0], [1.0]])      # AP 1/2 when both images are drawn, 1 when only the positive
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = paired_bootstrap(good, bad, y, n_boot=200, seed=0)
        # full sample: 100 - 50; every resample's difference is 0 or 50 (or 0 without positives)
        assert out["diff"] == pytest.approx(50.0)
        assert 0 <= out["low"] <= out["high"] <= 50
        same = paired_bootstrap(good, good, y, n_boot=20)
        assert (same["low"], same["high"], same["diff"]) == (0.0, 0.0, 0.0)
        # seed lists: the difference of the seed means, and one difference per seed pair
        two = paired_bootstrap([good, bad], [bad, bad], y, n_boot=20)
        assert two["diff"] == pytest.approx(25.0) and two["per_seed"] == pytest.approx([50.0, 0.0])
    assert interval_verdict(0.1, 2.0) == "higher" and interval_verdict(-2.0, -0.1) == "lower"
    assert interval_verdict(-0.1, 0.2) == "not distinguishable"
