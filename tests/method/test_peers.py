"""Tests for lcmc_core.method.peers: I0T post-hoc standardisation and SPARC's score standardisation by hand."""
import numpy as np
import pytest
import torch

from lcmc_core.method.mapping import mean_shift
from lcmc_core.method.metrics import average_precision_per_class
from lcmc_core.method.peers import DECAP_ALPHA, i0t_scores, sparc_standardize, standardize_modality


def test_sparc_standardize_by_hand():
    s = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 5.0], [0.0, 4.0, 2.0]])
    # per image (ddof 1): row 0 mean 2 sd 1 -> [-1, 0, 1]; row 1 mean 3 sd sqrt(3) -> [-1, -1, 2]/sqrt(3);
    # row 2 mean 2 sd 2 -> [-1, 1, 0]
    r3 = np.sqrt(3)
    z1 = np.array([[-1, 0, 1], [-1 / r3, -1 / r3, 2 / r3], [-1, 1, 0]])
    expected = (z1 - z1.mean(0)) / z1.std(0, ddof=1)
    out = sparc_standardize(s)
    assert np.allclose(out, expected)
    assert np.allclose(out.mean(0), 0) and np.allclose(out.std(0, ddof=1), 1)
    assert np.allclose(sparc_standardize(torch.tensor(s)), expected)


def test_sparc_column_step_alone_keeps_ap_and_row_step_can_change_it():
    rng = np.random.default_rng(0)
    y = (rng.random((40, 4)) < 0.4).astype(int)
    s = rng.normal(size=(40, 4)) + 2 * y + rng.normal(size=(40, 1)) * 3   # a per-image offset
    col = (s - s.mean(0)) / s.std(0, ddof=1)
    assert np.allclose(average_precision_per_class(col, y), average_precision_per_class(s, y))
    assert not np.allclose(average_precision_per_class(sparc_standardize(s), y), average_precision_per_class(s, y))


def test_sparc_refuses_constant_rows_and_bad_shapes():
    with pytest.raises(ValueError, match="image 1 has the same score"):
        sparc_standardize(np.array([[1.0, 2.0], [3.0, 3.0]]))
    with pytest.raises(ValueError, match="expected an \\(N, C\\) matrix"):
        sparc_standardize(np.ones((1, 3)))


def test_standardize_modality_by_hand():
    x = np.array([[3.0, 4.0], [1.0, 0.0]])
    mu = np.array([1.0, 0.0])
    # centring: [[2, 4], [0, 0]] -> [[1, 2]/sqrt5, [0, 0]]
    out = standardize_modality(x, mu)
    assert isinstance(out, np.ndarray)
    assert np.allclose(out, [[1 / np.sqrt(5), 2 / np.sqrt(5)], [0, 0]])
    assert np.allclose(out, mean_shift(x, mu))          # centring only = C3's collapse
    # with a per-dimension std: [[2/2, 4/4]] -> [1, 1]/sqrt2
    out = standardize_modality(torch.tensor(x), torch.tensor(mu), std=torch.tensor([2.0, 4.0]))
    assert torch.allclose(out[0], torch.tensor([1.0, 1.0], dtype=out.dtype) / np.sqrt(2))
    with pytest.raises(ValueError, match="std: expected shape"):
        standardize_modality(x, mu, std=np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="mean: expected shape"):
        standardize_modality(x, np.zeros(3))


def test_i0t_scores_equal_the_standardised_product_in_any_block_size():
    gen = torch.Generator().manual_seed(3)
    images, classes = torch.randn(11, 6, generator=gen), torch.randn(4, 6, generator=gen)
    img_mean, txt_mean = images.mean(0), torch.randn(6, generator=gen)
    whole = standardize_modality(images, img_mean) @ standardize_modality(classes, txt_mean).T
    for rows in (1, 4, 11, 100):
        torch.testing.assert_close(i0t_scores(images, classes, img_mean, txt_mean, rows=rows), whole)
    with pytest.raises(ValueError, match=r"images: expected an \(N, D\) matrix"):
        i0t_scores(images[0], classes, img_mean, txt_mean)


def test_decap_is_the_mapping_without_the_image_residual():
    from lcmc_core.method.mapping import cross_modal_map
    f = torch.nn.functional.normalize(torch.randn(3, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    t = torch.nn.functional.normalize(torch.randn(5, 8, generator=torch.Generator().manual_seed(1)), dim=1)
    m = cross_modal_map(f, t, temperature=0.01, alpha=DECAP_ALPHA)
    expected = torch.nn.functional.normalize(torch.softmax(f @ t.T / 0.01, dim=1) @ t, dim=1)
    assert torch.allclose(m, expected, atol=1e-6)
