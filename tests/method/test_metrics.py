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


# ---------------------------------------------------------------- two-level bootstrap (seeds and images)
def _seed_rows(n=25, c=3, n_seeds=3, seed=0, difficult_rate=0.1):
    """Two rows of per-seed scores on shared labels, plus a row that does not depend on the seed."""
    rng = np.random.default_rng(seed)
    scores, labels = _random_problem(n=n, c=c, seed=seed, difficult_rate=difficult_rate)
    fixed = rng.normal(size=(n, c)) + labels
    rows = {"reference": [scores + rng.normal(scale=0.8, size=(n, c)) for _ in range(n_seeds)],
            "other": [scores + rng.normal(scale=1.5, size=(n, c)) for _ in range(n_seeds)],
            "seed-free": [fixed] + [fixed.copy() for _ in range(n_seeds - 1)]}
    return rows, labels


@pytest.mark.parametrize("difficult", ["negative", "ignore"])
def test_two_level_bootstrap_matches_a_brute_force_loop(difficult):
    from lcmc_core.method.metrics import two_level_bootstrap_maps
    rows, labels = _seed_rows()
    n, n_seeds, n_boot = len(labels), 3, 30
    fast = two_level_bootstrap_maps(rows, labels, n_boot=n_boot, seed=7, difficult=difficult)
    images = np.random.default_rng(7)                                            # resample_counts' stream
    seeds = np.random.default_rng(np.random.SeedSequence(7, spawn_key=(1,)))     # resample_seed_counts' stream
    slow = {name: [] for name in rows}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoPositivesWarning)
        for _ in range(n_boot):
            idx = images.integers(0, n, size=n)
            drawn = seeds.integers(0, n_seeds, size=n_seeds)
            for name, per_seed in rows.items():
                slow[name].append(np.mean([mean_average_precision(per_seed[s][idx], labels[idx], difficult)
                                           for s in drawn]))
    assert set(fast) == set(rows)
    for name in rows:
        np.testing.assert_allclose(fast[name], slow[name], rtol=0, atol=1e-9)


def test_two_level_one_seed_is_the_image_bootstrap_and_seed_means_match():
    from lcmc_core.method.metrics import per_seed_bootstrap_maps, seed_mean_bootstraps, two_level_bootstrap_maps
    rows, labels = _seed_rows(n=200, c=4)
    one = two_level_bootstrap_maps({"a": rows["reference"][:1]}, labels, n_boot=80, seed=3)["a"]
    assert np.array_equal(one, bootstrap_maps(rows["reference"][0], labels, n_boot=80, seed=3))
    per_seed = per_seed_bootstrap_maps(rows, labels, n_boot=80, seed=3)
    assert per_seed["other"].shape == (3, 80)
    assert np.array_equal(per_seed["other"].mean(axis=0), seed_mean_bootstraps(rows["other"], labels, 80, 3))


def test_two_level_is_deterministic_and_shared_draws_change_nothing(monkeypatch):
    from lcmc_core.method import metrics
    rows, labels = _seed_rows(n=150, c=4)
    a = metrics.two_level_bootstrap_maps(rows, labels, n_boot=60, seed=5)
    b = metrics.two_level_bootstrap_maps(rows, labels, n_boot=60, seed=5)
    c = metrics.two_level_bootstrap_maps(rows, labels, n_boot=60, seed=6)
    assert all(np.array_equal(a[k], b[k]) for k in rows)
    assert not np.array_equal(a["other"], c["other"])
    monkeypatch.setattr(metrics, "SHARED_DRAWS_BYTES", 0)          # draw the images again for every matrix
    d = metrics.two_level_bootstrap_maps(rows, labels, n_boot=60, seed=5)
    assert all(np.array_equal(a[k], d[k]) for k in rows)


def test_two_level_pairs_seeds_a_shifted_copy_gives_a_zero_width_difference():
    from lcmc_core.method.metrics import two_level_bootstrap_maps
    rows, labels = _seed_rows(n=120, c=4, n_seeds=4)
    ref = rows["reference"]
    shifted = [x + 3.0 * k for k, x in enumerate(ref)]             # same ranking per seed, a different shift per seed
    boots = two_level_bootstrap_maps({"ref": ref, "shifted": shifted, "reordered": shifted[::-1]}, labels,
                                     n_boot=100, seed=1)
    assert np.array_equal(boots["ref"] - boots["shifted"], np.zeros(100))
    # seed k of "reordered" is seed 3 - k of the reference: unpaired seeds, so the difference varies
    assert np.ptp(boots["ref"] - boots["reordered"]) > 0


def test_two_level_interval_widens_with_seed_to_seed_variation():
    from lcmc_core.method.metrics import per_seed_bootstrap_maps, percentile_interval, two_level_means
    rows, labels = _seed_rows(n=300, c=4, n_seeds=4)
    ref = rows["reference"]
    rng = np.random.default_rng(2)
    # seeds 0, 1: the reference itself (difference 0); seeds 2, 3: much noisier scores (a large difference)
    varying = [ref[0], ref[1], ref[2] + rng.normal(scale=3.0, size=ref[2].shape),
               ref[3] + rng.normal(scale=3.0, size=ref[3].shape)]
    per_seed = per_seed_bootstrap_maps({"ref": ref, "varying": varying}, labels, n_boot=300, seed=0)
    images_only = per_seed["ref"].mean(axis=0) - per_seed["varying"].mean(axis=0)
    two_level = two_level_means(per_seed, seed=0)
    both = two_level["ref"] - two_level["varying"]
    (low_i, high_i), (low_b, high_b) = percentile_interval(images_only), percentile_interval(both)
    assert high_b - low_b > 1.5 * (high_i - low_i)
    # resamples that draw only seeds 0 and 1 give a difference of exactly 0
    assert (both == 0).any() and not (images_only == 0).any()


def test_two_level_two_seeds_warn_and_three_do_not():
    from lcmc_core.method.metrics import FewSeedsWarning, two_level_means
    with pytest.warns(FewSeedsWarning, match="range of the two seeds"):
        two_level_means({"a": np.zeros((2, 5))})
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewSeedsWarning)
        two_level_means({"a": np.zeros((3, 5))})
        two_level_means({"a": np.zeros((1, 5))})


def test_resample_seed_counts_by_hand_and_one_seed():
    from lcmc_core.method.metrics import resample_seed_counts
    counts = resample_seed_counts(4, 50, seed=2)
    draws = np.random.default_rng(np.random.SeedSequence(2, spawn_key=(1,))).integers(0, 4, size=(50, 4))
    assert counts.shape == (50, 4) and (counts.sum(axis=1) == 4).all()
    assert np.array_equal(counts, np.stack([np.bincount(d, minlength=4) for d in draws]))
    assert np.array_equal(resample_seed_counts(1, 5), np.ones((5, 1)))


def test_seed_mean_maps_and_per_seed_maps():
    from lcmc_core.method.metrics import per_seed_maps, seed_mean_maps
    rows, labels = _seed_rows(n=80, c=3)
    per_seed = per_seed_maps(rows, labels, "ignore")
    expected = [mean_average_precision(x, labels, "ignore") for x in rows["other"]]
    assert per_seed["other"] == pytest.approx(expected, abs=1e-12)
    assert seed_mean_maps(rows, labels, "ignore")["other"] == pytest.approx(np.mean(expected), abs=1e-12)


@pytest.mark.parametrize("rows, match", [
    ({}, "rows: expected a non-empty mapping"),
    ({"a": np.zeros((5, 2))}, r"rows\['a'\]: expected a list of \(N, C\) score matrices"),
    ({"a": []}, r"rows\['a'\]: expected at least one score matrix"),
    ({"a": [np.zeros((5, 2))] * 2, "b": [np.zeros((5, 2))] * 3}, r"rows\['b'\]: expected 2 score matrices"),
    ({"a": [np.zeros((5, 2)), np.zeros((4, 2))]}, r"rows\['a'\]\[1\] \(seed 1\): labels: expected the same shape"),
    ({"a": [np.full((5, 2), np.nan)]}, r"rows\['a'\]\[0\] \(seed 0\): scores: expected finite"),
])
def test_two_level_bad_rows_are_refused(rows, match):
    from lcmc_core.method.metrics import two_level_bootstrap_maps
    with pytest.raises(ValueError, match=match):
        two_level_bootstrap_maps(rows, np.ones((5, 2)), n_boot=3)


# ---------------------------------------------------------------- family-wise intervals
def test_simultaneous_intervals_by_hand():
    from lcmc_core.method.metrics import simultaneous_intervals
    # K = 1, estimate 0, resamples -2..2: se = sqrt(10 / 4); |t| = |d| / se; the 50% quantile of |t| is 1 / se
    out = simultaneous_intervals([0.0], [[-2.0, -1.0, 0.0, 1.0, 2.0]], confidence=0.5)
    assert out["se"][0] == pytest.approx(np.sqrt(2.5))
    assert out["q"] == pytest.approx(1 / np.sqrt(2.5))
    assert (out["low"][0], out["high"][0]) == pytest.approx((-1.0, 1.0))
    assert out["p"][0] == pytest.approx(1.0) and out["p family-wise"][0] == pytest.approx(1.0)
    # estimate 1, resamples around it; a second comparison with no variation at all
    out = simultaneous_intervals([1.0, 0.0], [[0.5, 1.0, 1.5, 1.0, 1.0], [0.0] * 5], confidence=0.8)
    se = np.sqrt(0.5 / 4)
    # |t| = [1, 0, 1, 0, 0] * 0.5 / se; the 80% quantile (linear) of the sorted values is 0.5 / se
    assert out["q"] == pytest.approx(0.5 / se)
    assert (out["low"][0], out["high"][0]) == pytest.approx((0.5, 1.5))
    assert (out["low"][1], out["high"][1], out["se"][1]) == (0.0, 0.0, 0.0)
    assert out["p"].tolist() == pytest.approx([1 / 6, 1.0])        # no resample deviates by >= 1 from 1
    assert out["p family-wise"].tolist() == pytest.approx([1 / 6, 1.0])


def test_holm_by_hand():
    from lcmc_core.method.metrics import _holm
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    assert _holm(np.array([0.01, 0.04, 0.03])).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert _holm(np.array([0.5, 0.9])).tolist() == pytest.approx([1.0, 1.0])


def _null_simulation(n_sims, k, n_boot, rng, shared=0.0):
    """Estimates and bootstrap differences of k comparisons whose true differences are 0 (unit noise, optional shared part)."""
    for _ in range(n_sims):
        common = rng.normal(size=(1, n_boot + 1)) * shared
        noise = rng.normal(size=(k, n_boot + 1)) * np.sqrt(1 - shared ** 2) + common
        estimates = noise[:, 0]
        yield estimates, estimates[:, None] + noise[:, 1:]     # bootstrap: the estimate plus fresh noise


def test_simultaneous_intervals_hold_the_family_wise_level_on_null_data():
    from lcmc_core.method.metrics import simultaneous_intervals
    rng = np.random.default_rng(0)
    any_adjusted, any_unadjusted = 0, 0
    for estimates, boots in _null_simulation(400, 17, 1000, rng):
        fw = simultaneous_intervals(estimates, boots, 0.95)
        any_adjusted += bool(((fw["low"] > 0) | (fw["high"] < 0)).any())
        low, high = np.percentile(boots, [2.5, 97.5], axis=1)
        any_unadjusted += bool(((low > 0) | (high < 0)).any())
    # nominal 5%, within 3 binomial sd over 400 simulations (1.1% each; 5.75% here, 5.0-5.5% in 2,000 simulations);
    # unadjusted: 1 - 0.95 ** 17 = 58%
    assert 0.02 <= any_adjusted / 400 <= 0.083
    assert any_unadjusted / 400 >= 0.45


def test_simultaneous_intervals_use_the_correlation_and_grow_with_k():
    from lcmc_core.method.metrics import simultaneous_intervals
    rng = np.random.default_rng(1)
    estimates, boots = next(_null_simulation(1, 17, 2000, rng, shared=0.9))
    qs = [simultaneous_intervals(estimates[:k], boots[:k])["q"] for k in range(1, 18)]
    assert all(a <= b for a, b in zip(qs, qs[1:]))                  # more comparisons, never narrower
    widths = []
    for k in (1, 5, 17):
        out = simultaneous_intervals(estimates[:k], boots[:k])
        widths.append(out["high"][0] - out["low"][0])               # comparison 0's interval
    assert widths[0] <= widths[1] <= widths[2]
    # strongly correlated comparisons: q well below Bonferroni's normal quantile for 17 (2.97)
    assert qs[-1] < 2.7
    # a duplicated comparison costs nothing (Bonferroni would count it twice)
    one = simultaneous_intervals(estimates[:1], boots[:1])["q"]
    twice = simultaneous_intervals(np.repeat(estimates[:1], 2), np.repeat(boots[:1], 2, axis=0))["q"]
    assert twice == one


def test_family_wise_comparisons_records():
    from lcmc_core.method.metrics import family_wise_comparisons
    rng = np.random.default_rng(4)
    boots = rng.normal(size=(17, 1000))
    estimates = np.zeros(17)
    estimates[0] = 2.3                                    # 2.3 bootstrap std: alone "higher", not among 17
    boots += estimates[:, None]
    names = [f"c{k}" for k in range(17)]
    records = family_wise_comparisons(names, estimates, boots, better="A higher", worse="A lower", same="n.d.")
    first = records[0]
    assert [r["comparison"] for r in records] == names
    assert set(first) == {"comparison", "difference", "bootstrap std", "CI low", "CI high", "family-wise low",
                          "family-wise high", "verdict", "unadjusted verdict", "margin", "p", "p family-wise", "p Holm"}
    assert first["unadjusted verdict"] == "A higher" and first["CI low"] > 0
    assert first["verdict"] == "n.d." and first["family-wise low"] < 0 < first["family-wise high"]
    assert first["margin"] == pytest.approx(-first["family-wise low"])
    assert first["p"] < 0.05 < first["p family-wise"] and first["p Holm"] >= first["p"]
    assert all(r["p family-wise"] >= r["p"] for r in records)
    strong = family_wise_comparisons(["x"], [5.0], rng.normal(size=(1, 500)) + 5.0)[0]
    assert strong["verdict"] == "higher" and strong["p family-wise"] == pytest.approx(1 / 501)


@pytest.mark.parametrize("call, match", [
    (lambda f: f.simultaneous_intervals([], np.zeros((0, 5))), "estimates: expected a 1-D array"),
    (lambda f: f.simultaneous_intervals([0.0, 1.0], np.zeros((1, 5))), r"boot_differences: expected a \(K=2, B>=2\)"),
    (lambda f: f.simultaneous_intervals([0.0], [[0.0, np.nan]]), "expected finite values"),
    (lambda f: f.simultaneous_intervals([0.0], [[0.0, 1.0]], confidence=1.0), "confidence: expected"),
    (lambda f: f.family_wise_comparisons(["a", "a"], [0.0, 1.0], np.zeros((2, 5))), "names: expected 2 distinct"),
])
def test_family_wise_bad_arguments(call, match):
    from lcmc_core.method import metrics
    with pytest.raises(ValueError, match=match):
        call(metrics)


# ---------------------------------------------------------------- verdicts near their boundary
def test_verdict_margin_by_hand():
    from lcmc_core.method.metrics import verdict_margin
    assert verdict_margin(0.11, 0.23) == pytest.approx(0.11)
    assert verdict_margin(-0.3, 0.8) == pytest.approx(0.3)
    assert verdict_margin(-1.2, -0.01) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="low <= high"):
        verdict_margin(1.0, 0.0)


@pytest.mark.parametrize("committed, rerun, tolerance, agree", [
    ((0.1, 0.3), (0.2, 0.5), 0.0, True),           # both higher
    ((-0.2, 0.3), (-0.5, 0.1), 0.0, True),         # both not distinguishable
    ((0.02, 0.4), (-0.1, 0.3), 0.05, True),        # committed low end within the tolerance of 0
    ((0.3, 0.6), (-0.03, 0.4), 0.05, True),        # rerun low end within the tolerance of 0
    ((0.11, 0.23), (-0.2, 0.5), 0.05, False),      # neither end near 0
    ((0.11, 0.23), (-0.2, 0.5), 0.2, True),        # a looser tolerance
    ((-0.5, -0.04), (-0.4, 0.01), 0.05, True),     # "lower": the high ends decide
    ((-0.5, -0.2), (-0.01, 0.3), 0.05, False),     # "lower" vs n.d.: the n.d. interval's low end does not count
    ((0.01, 0.2), (-0.2, -0.01), 1.0, False),      # higher vs lower: never
    ((0.0, 0.3), (0.01, 0.3), 0.0, True),          # touching 0 is "not distinguishable", exactly at the tolerance
])
def test_verdicts_agree_on_hand_cases(committed, rerun, tolerance, agree):
    from lcmc_core.method.metrics import verdicts_agree
    assert verdicts_agree(committed, rerun, tolerance) is agree
    assert verdicts_agree(rerun, committed, tolerance) is agree      # the rule is symmetric


def test_verdicts_agree_bad_arguments():
    from lcmc_core.method.metrics import verdicts_agree
    with pytest.raises(ValueError, match="tolerance: expected"):
        verdicts_agree((0.0, 1.0), (0.0, 1.0), -0.1)
    with pytest.raises(ValueError, match="committed: expected finite ends with low <= high"):
        verdicts_agree((1.0, 0.0), (0.0, 1.0), 0.1)
    with pytest.raises(ValueError, match="rerun: expected an interval"):
        verdicts_agree((0.0, 1.0), 0.5, 0.1)
