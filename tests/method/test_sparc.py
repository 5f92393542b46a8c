"""Tests for SPARC's fusion (method.peers.sparc_scores): a case by hand, a brute-force reference, the rules, bad input."""
import math

import numpy as np
import pytest
import torch

from lcmc_core.errors import ConfigError
from lcmc_core.method.peers import sparc_fusion_weights, sparc_scores, sparc_standardize

# The six orderings of (1, 2, 3): every image has mean 2 and std 1 over the classes, and every
# class column holds each value twice, so the per-image z-scores are row - 2 and the column
# z-scores divide them by sqrt(4/5) = 2/sqrt(5).
PERMS = np.array([[1, 2, 3], [1, 3, 2], [2, 1, 3], [2, 3, 1], [3, 1, 2], [3, 2, 1]], dtype=float)


def test_one_prompt_per_class_by_hand():
    # Class 0 has one compound prompt, class 1 another, class 2 none.
    # Calibrated ensemble: E = (PERMS - 2) * sqrt(5) / 2.
    e = (PERMS - 2) * math.sqrt(5) / 2
    # Compound scores with the simple scores' per-image mean 2 and std 1: q = 2 + d, so the
    # per-image step gives d; d0 has mean 0 and ddof-1 variance (4+1+0+1+1+1)/5 = 8/5.
    d0 = np.array([-2.0, -1.0, 0.0, 1.0, 1.0, 1.0])
    d1 = np.array([1.0, 1.0, -1.0, -1.0, 0.0, 0.0])  # mean 0, variance 4/5
    q = np.stack([2 + d0, 2 + d1], axis=1)
    q0, q1 = d0 / math.sqrt(8 / 5), d1 / math.sqrt(4 / 5)
    # With one prompt, the PCA features are two unit-variance, zero-mean columns (sorting one
    # value changes nothing); for a positive correlation the first direction is (1, 1)/sqrt(2),
    # L1-normalised (1/2, 1/2): f = (Q + E)/2 and the score 0.5 f + 0.5 E = 0.75 E + 0.25 Q.
    assert np.corrcoef(q0, e[:, 0])[0, 1] > 0 and np.corrcoef(q1, e[:, 1])[0, 1] > 0
    out = sparc_scores(PERMS, PERMS, q, [[0], [1], []])
    assert np.allclose(out[:, 0], 0.75 * e[:, 0] + 0.25 * q0)
    assert np.allclose(out[:, 1], 0.75 * e[:, 1] + 0.25 * q1)
    assert np.allclose(out[:, 2], e[:, 2])                       # no compound prompt: calibrated ensemble
    assert np.allclose(e[:, 2], math.sqrt(5) / 2 * np.array([1, 0, 1, -1, 0, -1]))


def test_anti_correlated_prompt_gets_weights_of_opposite_sign():
    # Two z-scored columns with a negative correlation: the first direction is (1, -1)/sqrt(2) up to
    # sign, whose mean is 0, so the sign rule cannot choose (the official code keeps what the SVD
    # gives; so do we): the score is 0.5 (+-(Q - E)/2) + 0.5 E.
    e = (PERMS - 2) * math.sqrt(5) / 2
    d0 = np.array([2.0, 1.0, 0.0, -1.0, -1.0, -1.0])
    q0 = d0 / math.sqrt(8 / 5)
    out = sparc_scores(PERMS, PERMS, (2 + d0)[:, None], [[0], [], []])
    plus = 0.5 * (0.5 * q0 - 0.5 * e[:, 0]) + 0.5 * e[:, 0]
    minus = 0.5 * (-0.5 * q0 + 0.5 * e[:, 0]) + 0.5 * e[:, 0]
    assert np.allclose(out[:, 0], plus) or np.allclose(out[:, 0], minus)


def _reference(ens, simple, comp, class_compound):
    """An independent, image-by-image SPARC: Python loops, statistics by hand, PCA by eigh of the covariance."""
    n, c = ens.shape
    p = comp.shape[1]

    def mean_sd(v):
        m = sum(v) / len(v)
        return m, math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))

    e = np.zeros((n, c))
    qr = np.zeros((n, p))
    for i in range(n):
        m, s = mean_sd(list(ens[i]))
        ms, ss = mean_sd(list(simple[i]))
        e[i] = [(x - m) / s for x in ens[i]]
        qr[i] = [(x - ms) / ss for x in comp[i]]
    for j in range(c):
        m, s = mean_sd(list(e[:, j]))
        e[:, j] = (e[:, j] - m) / s
    for j in range(p):
        m, s = mean_sd(list(qr[:, j]))
        qr[:, j] = (qr[:, j] - m) / s
    out = e.copy()
    for j, cols in enumerate(class_compound):
        if not cols:
            continue
        feats = np.array([sorted(qr[i, cols]) + [e[i, j]] for i in range(n)])
        vals, vecs = np.linalg.eigh(np.cov(feats, rowvar=False))
        w = vecs[:, np.argmax(vals)]
        w = -w if w.mean() < 0 else w
        w = w / np.abs(w).sum()
        out[:, j] = 0.5 * np.array([feats[i] @ w for i in range(n)]) + 0.5 * e[:, j]
    return out


def _random_case(seed=0, n=60, c=5, p=12):
    rng = np.random.default_rng(seed)
    y = rng.random((n, c)) < 0.4
    ens = rng.normal(size=(n, c)) + 1.5 * y + rng.normal(size=(n, 1))
    simple = ens + rng.normal(scale=0.5, size=(n, c))
    comp = rng.normal(size=(n, p)) + rng.normal(size=(n, 1))
    class_compound = [[0, 3, 5, 7, 11], [1], [], [2, 4], [6, 8, 9, 10, 0, 1]]
    for j, cols in enumerate(class_compound):
        comp[:, cols] += 0.8 * y[:, [j]]
    return ens, simple, comp, class_compound


def test_matches_an_image_by_image_reference():
    ens, simple, comp, cc = _random_case()
    out = sparc_scores(ens, simple, comp, cc)
    assert out.shape == ens.shape and out.dtype == np.float64
    assert np.allclose(out, _reference(ens, simple, comp, cc), atol=1e-10)
    # float32 and torch inputs give the same result to float32 precision
    out32 = sparc_scores(torch.tensor(ens, dtype=torch.float32), simple.astype(np.float32),
                         torch.tensor(comp, dtype=torch.float32), [np.array(x, dtype=np.int64) for x in cc])
    assert np.allclose(out32, out, atol=1e-4)


def test_class_without_compound_prompts_keeps_its_calibrated_ensemble_score():
    ens, simple, comp, cc = _random_case(1)
    out = sparc_scores(ens, simple, comp, cc)
    assert np.allclose(out[:, 2], sparc_standardize(ens)[:, 2])
    assert not np.allclose(out[:, 0], sparc_standardize(ens)[:, 0])
    # nothing assigned anywhere: the whole result is SPARC's standardisation alone
    assert np.allclose(sparc_scores(ens, simple, comp, [[]] * 5), sparc_standardize(ens))
    assert np.allclose(sparc_scores(ens, simple, np.zeros((60, 0)), [[]] * 5), sparc_standardize(ens))


def test_another_methods_scores_in_place_of_the_ensemble():
    # CoMC's ablation: SPARC's fusion on top of CoMC's scores = the same call with those scores
    # as ensemble_scores; simple_scores (CLIP's plain prompts) still calibrate the compound prompts.
    ens, simple, comp, cc = _random_case(2)
    rng = np.random.default_rng(7)
    other = 2.0 * ens + rng.normal(size=ens.shape) + 5.0          # another method's (N, C) scores
    out = sparc_scores(other, simple, comp, cc)
    assert np.allclose(out, _reference(other, simple, comp, cc), atol=1e-10)
    assert np.allclose(out[:, 2], sparc_standardize(other)[:, 2])
    assert not np.allclose(out, sparc_scores(ens, simple, comp, cc))
    # the compound side depends on simple_scores, not on the swapped-in scores' statistics
    assert not np.allclose(out, sparc_scores(other, other, comp, cc))


def test_columns_of_a_prompt_order_do_not_matter_and_sorting_makes_features_positional():
    ens, simple, comp, cc = _random_case(3)
    out = sparc_scores(ens, simple, comp, cc)
    perm = np.random.default_rng(0).permutation(comp.shape[1])
    inverse = np.argsort(perm)
    out_perm = sparc_scores(ens, simple, comp[:, perm], [[int(inverse[k]) for k in cols] for cols in cc])
    assert np.allclose(out, out_perm)
    # reversing a class's prompt list changes nothing either (features are sorted values)
    assert np.allclose(out, sparc_scores(ens, simple, comp, [cols[::-1] for cols in cc]))


def test_fusion_weights_sign_rule_and_l1_norm_by_hand():
    # Features proportional to t * (-3, 2, 2) plus a little noise: the first principal direction
    # is (-3, 2, 2)/sqrt(17) up to sign. scikit-learn returns it with its largest weight positive,
    # (3, -2, -2)/sqrt(17), whose mean is negative; SPARC's rule (mean weight positive) flips it,
    # and the L1 norm (7) gives (-3/7, 2/7, 2/7), for x and -x alike.
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    t = rng.normal(size=(400, 1))
    x = t * np.array([-3.0, 2.0, 2.0]) + 1e-4 * rng.normal(size=(400, 3))
    assert PCA(n_components=1, svd_solver="full").fit(x).components_[0].mean() < 0   # the flip is exercised
    expected = np.array([-3 / 7, 2 / 7, 2 / 7])
    assert np.allclose(sparc_fusion_weights(x), expected, atol=1e-4)
    assert np.allclose(sparc_fusion_weights(-x), expected, atol=1e-4)
    assert np.allclose(sparc_fusion_weights(x + 100.0), expected, atol=1e-4)    # the fit centres
    assert np.isclose(np.abs(sparc_fusion_weights(x)).sum(), 1.0)
    # (-1, 3, 2): the largest weight is already positive and so is the mean: (-1/6, 1/2, 1/3)
    y = t * np.array([-1.0, 3.0, 2.0]) + 1e-4 * rng.normal(size=(400, 3))
    assert np.allclose(sparc_fusion_weights(y), [-1 / 6, 1 / 2, 1 / 3], atol=1e-4)
    with pytest.raises(ConfigError, match="more images than features"):
        sparc_fusion_weights(np.ones((3, 3)))


def test_projection_is_uncentred_as_the_official_code():
    # Two prompts per class: the sorted features (row min, row max) do not have mean 0, so the
    # fused score carries the constant mean(X) @ w; check it against the reference, and that AP
    # (a per-class ranking) is blind to it.
    ens, simple, comp, _ = _random_case(4)
    cc = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    out = sparc_scores(ens, simple, comp, cc)
    ref = _reference(ens, simple, comp, cc)
    assert np.allclose(out, ref, atol=1e-10)
    assert not np.allclose(out.mean(axis=0), 0.0)


def _msg(excinfo):
    text = str(excinfo.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("change, match", [
    (lambda a: {**a, "simple_scores": a["simple_scores"][:, :4]}, "simple_scores: expected shape"),
    (lambda a: {**a, "compound_scores": a["compound_scores"][:10]}, "compound_scores: expected 60 rows"),
    (lambda a: {**a, "ensemble_scores": a["ensemble_scores"][:, :1], "simple_scores": a["simple_scores"][:, :1],
                "class_compound": [[0]]}, "C >= 2 classes"),
    (lambda a: {**a, "ensemble_scores": a["ensemble_scores"][0]}, "ensemble_scores: expected a 2-D"),
    (lambda a: {**a, "class_compound": a["class_compound"][:4]}, "expected one list per class \\(5\\), got 4"),
    (lambda a: {**a, "class_compound": [[0], [12], [], [], []]}, "class_compound\\[1\\]: column index 12 is out of range"),
    (lambda a: {**a, "class_compound": [[0], [-1], [], [], []]}, "column index -1 is out of range"),
    (lambda a: {**a, "class_compound": [[0, 0], [], [], [], []]}, "column 0 is listed more than once"),
    (lambda a: {**a, "class_compound": [[0.5], [], [], [], []]}, "integer column indices"),
    (lambda a: {**a, "class_compound": "abc"}, "class_compound: expected a list"),
    (lambda a: {**a, "ensemble_scores": np.where(np.arange(5) == 3, np.nan, a["ensemble_scores"])},
     "ensemble_scores: expected finite scores, found nan at image 0, column 3"),
    (lambda a: {**a, "compound_scores": np.where(np.arange(12) == 11, np.inf, a["compound_scores"])},
     "compound_scores: expected finite scores, found inf at image 0, column 11"),
    (lambda a: {**a, "ensemble_scores": np.vstack([a["ensemble_scores"][:59], np.ones((1, 5))])},
     "ensemble_scores: image 59 has the same score in every column"),
    (lambda a: {**a, "simple_scores": np.vstack([np.ones((1, 5)), a["simple_scores"][1:]])},
     "simple_scores: image 0 has the same score"),
    (lambda a: {**a, "compound_scores": np.hstack([a["compound_scores"][:, :11],
                                                   a["simple_scores"].mean(1, keepdims=True)])},
     "compound_scores: column 11 has the same calibrated score in every image"),
    (lambda a: {**a, "ensemble_scores": a["ensemble_scores"][:6], "simple_scores": a["simple_scores"][:6],
                "compound_scores": a["compound_scores"][:6]}, "class_compound\\[0\\]: 5 compound prompts need more than 6"),
    (lambda a: {**a, "ensemble_scores": a["ensemble_scores"].astype(bool)}, "expected real scores"),
])
def test_bad_inputs_get_one_line_errors(change, match):
    ens, simple, comp, cc = _random_case()
    args = change({"ensemble_scores": ens, "simple_scores": simple, "compound_scores": comp, "class_compound": cc})
    with pytest.raises(ConfigError, match=match) as excinfo:
        sparc_scores(**args)
    _msg(excinfo)


def test_constant_column_of_the_ensemble_after_calibration_is_refused():
    ens = PERMS.copy()
    ens[:, 0] = 0.0
    ens[:, 1:] = np.array([[1.0, 2.0]] * 6)   # every row (0, 1, 2): constant columns after the per-image step
    with pytest.raises(ConfigError, match="ensemble_scores: class 0 has the same per-image standardised score"):
        sparc_scores(ens, PERMS, np.ones((6, 0)), [[], [], []])


def test_unused_constant_compound_column_is_allowed():
    ens, simple, comp, cc = _random_case(5)
    comp = np.hstack([comp, simple.mean(1, keepdims=True)])      # column 12: constant after calibration, unused
    assert np.allclose(sparc_scores(ens, simple, comp, cc), sparc_scores(ens, simple, comp[:, :12], cc))


def test_compound_scores_computed_a_block_at_a_time_give_the_same_fusion():
    from lcmc_core.method.peers import ScoreColumns, image_text_scores
    rng = np.random.default_rng(3)
    n, c, p, d = 60, 4, 9, 8
    images, texts = torch.randn(n, d, generator=torch.Generator().manual_seed(0)), torch.randn(p, d)
    ens, simple = rng.normal(size=(n, c)), rng.normal(size=(n, c))
    groups = [[0, 3, 5], [1, 2], [4, 6, 7, 8], []]
    dense = image_text_scores(images, texts)
    lazy = image_text_scores(images, texts, max_bytes=0)
    assert isinstance(dense, torch.Tensor) and isinstance(lazy, ScoreColumns) and lazy.shape == (n, p)
    assert np.allclose(lazy[:, [4, 1]], dense.numpy()[:, [4, 1]], atol=1e-6)
    assert np.allclose(sparc_scores(ens, simple, lazy, groups), sparc_scores(ens, simple, dense, groups), atol=1e-9)
    with pytest.raises(IndexError, match="whole columns"):
        lazy[0, 1]
    with pytest.raises(ConfigError, match=r"\(N, D\) images and \(P, D\) texts"):
        ScoreColumns(images, texts[:, :3])
