"""Tests for lcmc_core.mapping: cross-modal mapping, image scoring, mean shift."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcmc_core.mapping import cross_modal_map, mean_shift, score_images
from lcmc_core.metrics import mean_average_precision


def _unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def test_cross_modal_map_by_hand_2d():
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    emb = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    # temperature 1: weights softmax([1, 0]) = [e, 1] / (e + 1); m = weights / |weights|
    w = torch.tensor([math.e, 1.0], dtype=torch.float64) / (math.e + 1)
    m = w / w.norm()
    expected = 0.7 * emb[0] + 0.3 * m                        # = [0.98157, 0.10356]
    out = cross_modal_map(emb, memory, temperature=1.0, alpha=0.7)
    torch.testing.assert_close(out[0], expected)
    assert out[0, 0].item() == pytest.approx(0.7 + 0.3 * math.e / math.hypot(math.e, 1))
    # a cold softmax picks the nearest memory row: [0.6, 0.8] -> mapped part = [0, 1]
    out = cross_modal_map(torch.tensor([0.6, 0.8], dtype=torch.float64), memory, temperature=1e-3, alpha=0.5)
    torch.testing.assert_close(out, torch.tensor([0.3, 0.9], dtype=torch.float64))


def test_cross_modal_map_not_renormalised_and_keeps_shape():
    emb, memory = _unit(4, 49, 8, seed=1), _unit(10, 8, seed=2)
    out = cross_modal_map(emb, memory)
    assert out.shape == emb.shape and out.dtype == emb.dtype
    assert (out.norm(dim=-1) < 1 - 1e-6).any()               # convex mix of unit vectors, not renormalised


def test_cross_modal_map_chunked_equals_unchunked():
    emb, memory = _unit(3, 7, 16, seed=3), _unit(50, 16, seed=4)
    full = cross_modal_map(emb, memory, chunk_size=10_000)
    for chunk in (1, 4, 20):
        torch.testing.assert_close(cross_modal_map(emb, memory, chunk_size=chunk), full)


def test_alpha_one_is_identity_and_alpha_zero_is_pure_memory():
    emb, memory = _unit(5, 8, seed=5), _unit(6, 8, seed=6)
    assert torch.equal(cross_modal_map(emb, memory, alpha=1.0), emb)
    pure = cross_modal_map(emb, memory, alpha=0.0)
    torch.testing.assert_close(pure.norm(dim=-1), torch.ones(5, dtype=torch.float64))


def test_cross_modal_map_no_grad():
    emb = _unit(2, 4, seed=7).requires_grad_(True)
    assert not cross_modal_map(emb, _unit(3, 4, seed=8)).requires_grad


@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=0.0), "temperature: expected a finite number > 0"),
    (dict(temperature=-1.0), "temperature"),
    (dict(alpha=1.5), "alpha: expected a number in \\[0, 1\\]"),
    (dict(chunk_size=0), "chunk_size"),
])
def test_cross_modal_map_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cross_modal_map(_unit(2, 4), _unit(3, 4), **kwargs)


def test_cross_modal_map_bad_shapes():
    with pytest.raises(ValueError, match="does not match memory's D"):
        cross_modal_map(_unit(2, 4), _unit(3, 5))
    with pytest.raises(ValueError, match="memory: expected a 2-D"):
        cross_modal_map(_unit(2, 4), _unit(4))
    with pytest.raises(TypeError, match="emb: expected a floating-point"):
        cross_modal_map(torch.ones(2, 4, dtype=torch.long), _unit(3, 4))


# ---------------------------------------------------------------- score_images
def test_score_images_matches_manual_computation():
    n, p, d, c = 6, 5, 8, 3
    g, loc, mem, w = _unit(n, d, seed=1), _unit(n, p, d, seed=2), _unit(c, d, seed=3), _unit(c, d, seed=4)
    out = score_images(w, g, loc, memory=mem, local_weight=0.5, image_chunk=4)
    glob = cross_modal_map(g, mem) @ w.T
    local = (cross_modal_map(loc, mem) @ w.T).amax(dim=1)
    torch.testing.assert_close(out["global"], glob)
    torch.testing.assert_close(out["local"], local)
    torch.testing.assert_close(out["merged"], 0.5 * glob + 0.5 * local)
    # a callable gives the same as the weight
    out2 = score_images(lambda x: x @ w.T, g, loc, memory=mem, image_chunk=4)
    torch.testing.assert_close(out2["merged"], out["merged"])


def test_score_images_switches():
    g, loc, mem, w = _unit(4, 8, seed=1), _unit(4, 3, 8, seed=2), _unit(3, 8, seed=3), _unit(3, 8, seed=4)
    plain = score_images(w, g, loc)                                   # no memory: no mapping
    torch.testing.assert_close(plain["global"], g @ w.T)
    only_local = score_images(w, g, loc, memory=mem, map_global=False)
    torch.testing.assert_close(only_local["global"], g @ w.T)
    assert not torch.allclose(only_local["local"], plain["local"])
    no_local = score_images(w, g, None, memory=mem)
    assert no_local["local"] is None and torch.equal(no_local["merged"], no_local["global"])
    weighted = score_images(w, g, loc, local_weight=0.25)
    torch.testing.assert_close(weighted["merged"], 0.75 * plain["global"] + 0.25 * plain["local"])


def test_score_images_bad_inputs():
    g, w = _unit(4, 8), _unit(3, 8)
    with pytest.raises(ValueError, match="local_emb: expected shape \\(N, P, D\\)"):
        score_images(w, g, _unit(5, 3, 8))
    with pytest.raises(ValueError, match="local_weight"):
        score_images(w, g, local_weight=2)
    with pytest.raises(ValueError, match="global_emb: expected shape \\(N, D\\)"):
        score_images(w, g[0])


# ---------------------------------------------------------------- mean shift
def test_mean_shift_without_renormalisation_cannot_change_map():
    rng = np.random.default_rng(0)
    n, d, c = 200, 16, 5
    emb = _unit(n, d, seed=11).numpy()
    labels = (rng.random((n, c)) < 0.3).astype(int)
    labels[0] = 1
    w = rng.normal(size=(c, d))
    mu = emb.mean(axis=0) + 0.3 * rng.normal(size=d)
    before = mean_average_precision(emb @ w.T, labels)
    shifted = mean_shift(emb, mu, renormalize=False)
    # the logits move by one constant per class ...
    diff = shifted @ w.T - emb @ w.T
    np.testing.assert_allclose(diff, np.broadcast_to(-(mu @ w.T), diff.shape), atol=1e-12)
    # ... so mAP is unchanged, while re-normalising does change it
    assert mean_average_precision(shifted @ w.T, labels) == pytest.approx(before, abs=1e-9)
    renorm = mean_shift(emb, mu, renormalize=True)
    assert isinstance(renorm, np.ndarray)
    np.testing.assert_allclose(np.linalg.norm(renorm, axis=1), 1.0)
    assert mean_average_precision(renorm @ w.T, labels) != pytest.approx(before, abs=1e-6)


def test_mean_shift_torch_and_bad_mean():
    emb = _unit(3, 4)
    out = mean_shift(emb, emb.mean(0))
    assert isinstance(out, torch.Tensor)
    with pytest.raises(ValueError, match="modality_mean: expected shape \\(4,\\)"):
        mean_shift(emb, torch.zeros(5))
