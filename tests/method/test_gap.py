"""Tests for lcmc_core.method.gap on synthetic embeddings whose gap is known."""
import numpy as np
import pytest
import torch

from lcmc_core.method.gap import (
    gap_norm,
    gap_report,
    gap_vector,
    matched_unmatched_cosines,
    modality_separability,
    pca_2d,
)


def _cloud(n, d, seed, center=None, spread=0.3):
    rng = np.random.default_rng(seed)
    center = np.eye(d)[0] if center is None else center
    x = center + spread * rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_identical_distributions_have_no_gap_and_chance_separability():
    img, txt = _cloud(600, 8, seed=0), _cloud(600, 8, seed=1)
    assert gap_norm(img, txt) < 0.05
    assert abs(modality_separability(img, txt, seed=0) - 0.5) < 0.08


def test_gap_vector_equals_difference_of_means():
    # two fixed unit-vector sets: the gap is exactly the difference of their means
    img = np.array([[1.0, 0.0], [0.0, 1.0]])
    txt = np.array([[-1.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_allclose(gap_vector(img, txt), [1.5, 0.5])
    assert gap_norm(img, txt) == pytest.approx(np.hypot(1.5, 0.5))
    # rows are normalised first: scaling the inputs changes nothing
    np.testing.assert_allclose(gap_vector(3 * img, 0.5 * txt), [1.5, 0.5])


def test_shifted_copy_gap_equals_shift_and_is_separable():
    d = 16
    txt = _cloud(500, d, seed=2, spread=0.05)
    shift = 0.2 * np.eye(d)[1]
    img = txt + shift                       # already (almost) unit: renormalising changes little
    img_unit = img / np.linalg.norm(img, axis=1, keepdims=True)
    np.testing.assert_allclose(gap_vector(img_unit, txt), img_unit.mean(0) - txt.mean(0))
    assert gap_norm(img_unit, txt) == pytest.approx(np.linalg.norm(shift), rel=0.05)
    assert modality_separability(img_unit, txt, seed=0) > 0.95


def test_torch_inputs_and_dimension_mismatch():
    img, txt = _cloud(50, 4, seed=3), _cloud(50, 4, seed=4)
    assert gap_norm(torch.from_numpy(img).float(), torch.from_numpy(txt)) == pytest.approx(gap_norm(img, txt), rel=1e-6)
    with pytest.raises(ValueError, match="text_emb: dimension 5 does not match image_emb's 4"):
        gap_vector(img, np.ones((3, 5)))
    with pytest.raises(ValueError, match="zero row"):
        gap_vector(np.zeros((2, 4)), txt)


def test_matched_unmatched_cosines():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 32))
    img = base + 0.1 * rng.normal(size=base.shape)
    txt = base + 0.1 * rng.normal(size=base.shape)
    out = matched_unmatched_cosines(img, txt, seed=0)
    assert out["matched"].shape == (300,) and out["unmatched"].shape == (300,)
    assert out["matched_mean"] > 0.95 and abs(out["unmatched_mean"]) < 0.05
    again = matched_unmatched_cosines(img, txt, n_unmatched=50, seed=0)
    assert again["unmatched"].shape == (50,)
    np.testing.assert_array_equal(matched_unmatched_cosines(img, txt, seed=0)["unmatched"], out["unmatched"])
    with pytest.raises(ValueError, match="text_emb: expected 300 rows paired"):
        matched_unmatched_cosines(img, txt[:10])


def test_unmatched_pairs_never_matched():
    # with identical rows except their index, an unmatched cosine of 1 would reveal a matched pair
    img = np.eye(5)
    out = matched_unmatched_cosines(img, img, n_unmatched=200, seed=1)
    np.testing.assert_allclose(out["matched"], 1.0)
    np.testing.assert_allclose(out["unmatched"], 0.0)


def test_pca_2d_shapes_and_shared_fit():
    a, b = _cloud(40, 6, seed=5), _cloud(30, 6, seed=6, center=-np.eye(6)[0])
    pa, pb = pca_2d(a, b)
    assert pa.shape == (40, 2) and pb.shape == (30, 2)
    # the first axis separates the two clouds (opposite centres)
    assert np.sign(pa[:, 0].mean()) != np.sign(pb[:, 0].mean())
    np.testing.assert_array_equal(pca_2d(a, b)[0], pa)
    with pytest.raises(ValueError, match="same dimension"):
        pca_2d(a, np.ones((3, 4)))
    with pytest.raises(ValueError, match="at least one"):
        pca_2d()


def test_gap_report_keys():
    img, txt = _cloud(100, 8, seed=7), _cloud(100, 8, seed=8, center=np.eye(8)[1])
    rep = gap_report(img, txt, paired=True)
    assert {"n_image", "n_text", "dim", "gap_norm", "image_centroid_norm", "text_centroid_norm",
            "centroid_cosine", "separability", "matched_cosine_mean", "unmatched_cosine_mean"} <= set(rep)
    assert rep["gap_norm"] == pytest.approx(gap_norm(img, txt))
    assert rep["separability"] > 0.95
    assert all(isinstance(v, (int, float)) for v in rep.values())
    assert "matched_cosine_mean" not in gap_report(img, txt)
