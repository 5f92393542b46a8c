"""Tests for lcmc_core.method.mapping: cross-modal mapping, image scoring, mean shift."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcmc_core.method.comc import CoMC
from lcmc_core.method.mapping import cross_modal_map, embedding_mean, mean_shift, score_images
from lcmc_core.method.metrics import mean_average_precision

# the estimator's defaults (the official values): the functions under test take them as arguments
TAU, ALPHA, LW = CoMC().temperature, CoMC().alpha, CoMC().local_weight
OFFICIAL = dict(temperature=TAU, alpha=ALPHA, local_weight=LW)


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
    out = cross_modal_map(emb, memory, TAU, ALPHA)
    assert out.shape == emb.shape and out.dtype == emb.dtype
    assert (out.norm(dim=-1) < 1 - 1e-6).any()               # convex mix of unit vectors, not renormalised


def test_cross_modal_map_chunked_equals_unchunked():
    emb, memory = _unit(3, 7, 16, seed=3), _unit(50, 16, seed=4)
    full = cross_modal_map(emb, memory, TAU, ALPHA, chunk_size=10_000)
    for chunk in (1, 4, 20):
        torch.testing.assert_close(cross_modal_map(emb, memory, TAU, ALPHA, chunk_size=chunk), full)


def test_alpha_one_is_identity_and_alpha_zero_is_pure_memory():
    emb, memory = _unit(5, 8, seed=5), _unit(6, 8, seed=6)
    assert torch.equal(cross_modal_map(emb, memory, TAU, alpha=1.0), emb)
    pure = cross_modal_map(emb, memory, TAU, alpha=0.0)
    torch.testing.assert_close(pure.norm(dim=-1), torch.ones(5, dtype=torch.float64))


def test_cross_modal_map_no_grad():
    emb = _unit(2, 4, seed=7).requires_grad_(True)
    assert not cross_modal_map(emb, _unit(3, 4, seed=8), TAU, ALPHA).requires_grad


@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=0.0), "temperature: expected a finite number > 0"),
    (dict(temperature=-1.0), "temperature"),
    (dict(alpha=1.5), "alpha: expected a number in \\[0, 1\\]"),
    (dict(chunk_size=0), "chunk_size"),
])
def test_cross_modal_map_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cross_modal_map(_unit(2, 4), _unit(3, 4), **{"temperature": TAU, "alpha": ALPHA, **kwargs})


def test_cross_modal_map_bad_shapes():
    with pytest.raises(ValueError, match="does not match memory's D"):
        cross_modal_map(_unit(2, 4), _unit(3, 5), TAU, ALPHA)
    with pytest.raises(ValueError, match="memory: expected a 2-D"):
        cross_modal_map(_unit(2, 4), _unit(4), TAU, ALPHA)
    with pytest.raises(TypeError, match="emb: expected a floating-point"):
        cross_modal_map(torch.ones(2, 4, dtype=torch.long), _unit(3, 4), TAU, ALPHA)


# ---------------------------------------------------------------- score_images
def test_score_images_matches_manual_computation():
    n, p, d, c = 6, 5, 8, 3
    g, loc, mem, w = _unit(n, d, seed=1), _unit(n, p, d, seed=2), _unit(c, d, seed=3), _unit(c, d, seed=4)
    out = score_images(w, g, loc, memory=mem, temperature=TAU, alpha=ALPHA, local_weight=0.5, image_chunk=4)
    glob = cross_modal_map(g, mem, TAU, ALPHA) @ w.T
    local = (cross_modal_map(loc, mem, TAU, ALPHA) @ w.T).amax(dim=1)
    torch.testing.assert_close(out["global"], glob)
    torch.testing.assert_close(out["local"], local)
    torch.testing.assert_close(out["merged"], 0.5 * glob + 0.5 * local)
    # a callable gives the same as the weight
    out2 = score_images(lambda x: x @ w.T, g, loc, memory=mem, image_chunk=4, **OFFICIAL)
    torch.testing.assert_close(out2["merged"], out["merged"])


def test_score_images_switches():
    g, loc, mem, w = _unit(4, 8, seed=1), _unit(4, 3, 8, seed=2), _unit(3, 8, seed=3), _unit(3, 8, seed=4)
    plain = score_images(w, g, loc, local_weight=LW)                                   # no memory: no mapping
    torch.testing.assert_close(plain["global"], g @ w.T)
    only_local = score_images(w, g, loc, memory=mem, map_global=False, **OFFICIAL)
    torch.testing.assert_close(only_local["global"], g @ w.T)
    assert not torch.allclose(only_local["local"], plain["local"])
    no_local = score_images(w, g, None, memory=mem, temperature=TAU, alpha=ALPHA)
    assert no_local["local"] is None and torch.equal(no_local["merged"], no_local["global"])
    weighted = score_images(w, g, loc, local_weight=0.25)
    torch.testing.assert_close(weighted["merged"], 0.75 * plain["global"] + 0.25 * plain["local"])


def test_score_images_bad_inputs():
    g, w = _unit(4, 8), _unit(3, 8)
    with pytest.raises(ValueError, match="local_emb: expected shape \\(N, P, D\\)"):
        score_images(w, g, _unit(5, 3, 8), local_weight=LW)
    with pytest.raises(ValueError, match="local_weight"):
        score_images(w, g, _unit(4, 2, 8), local_weight=2)
    with pytest.raises(ValueError, match="local_weight"):
        score_images(w, g, _unit(4, 2, 8))                          # the merge needs the weight
    with pytest.raises(ValueError, match="temperature"):
        score_images(w, g, memory=_unit(3, 8), alpha=ALPHA)         # a mapping needs its temperature
    with pytest.raises(ValueError, match="global_emb: expected L2-normalised rows"):
        score_images(w, 3 * g, check_unit=True)
    with pytest.raises(ValueError, match="local_emb: expected L2-normalised rows"):
        score_images(w, g, 2 * _unit(4, 2, 8), local_weight=LW, check_unit=True)
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


# ---------------------------------------------------------------- top-k memory, streaming, several classifiers
def _sphere(rng, n, d):
    x = torch.from_numpy(rng.normal(size=(n, d))).float()
    return torch.nn.functional.normalize(x, dim=-1)


def _clustered_memory(rng, m, d, centres=40, spread=0.35):
    """A corpus-like memory: sentences cluster around a few topics, so similarities are spread out."""
    c = _sphere(rng, centres, d)
    idx = rng.integers(0, centres, size=m)
    return torch.nn.functional.normalize(c[idx] + spread * _sphere(rng, m, d) / d ** 0.5 * 4, dim=-1)


@pytest.mark.parametrize("k", [1, 8, 64, 500])
def test_top_k_mapping_is_within_its_bound(k):
    rng = np.random.default_rng(0)
    memory = _clustered_memory(rng, 3000, 64)
    queries = torch.nn.functional.normalize(memory[rng.integers(0, 3000, 200)] + 0.3 * _sphere(rng, 200, 64), dim=-1)
    exact = cross_modal_map(queries, memory, 0.01, 0.7)
    approx, bound = cross_modal_map(queries, memory, 0.01, 0.7, top_k=k, return_bound=True)
    err = (exact - approx).norm(dim=-1)
    assert bound.shape == (200,)
    assert torch.all(err <= bound + 1e-5)
    assert torch.all(bound <= 2 * 0.3 + 1e-6)  # never more than 2 (1 - alpha)


def test_top_k_bound_is_tiny_at_temperature_001_when_the_best_rows_stand_out():
    rng = np.random.default_rng(1)
    memory = _sphere(rng, 20000, 128)            # unrelated sentences: similarities near 0 ...
    queries = memory[:50] * 0.8 + 0.2 * _sphere(rng, 50, 128)
    queries = torch.nn.functional.normalize(queries, dim=-1)   # ... except each query's own neighbour
    _, bound = cross_modal_map(queries, memory, 0.01, 0.7, top_k=64, return_bound=True)
    assert float(bound.max()) < 1e-6
    exact = cross_modal_map(queries, memory, 0.01, 0.7)
    assert torch.allclose(exact, cross_modal_map(queries, memory, 0.01, 0.7, top_k=64), atol=1e-6)


def test_full_memory_top_k_is_the_exact_mapping():
    rng = np.random.default_rng(2)
    memory, queries = _sphere(rng, 30, 16), _sphere(rng, 10, 16)
    out, bound = cross_modal_map(queries, memory, 0.05, 0.5, top_k=30, return_bound=True)
    assert torch.allclose(out, cross_modal_map(queries, memory, 0.05, 0.5)) and float(bound.max()) == 0.0


def test_score_images_reports_a_bound_on_the_merged_scores_with_top_k():
    rng = np.random.default_rng(3)
    memory = _clustered_memory(rng, 2000, 32)
    g, loc = _sphere(rng, 40, 32), _sphere(rng, 40 * 4, 32).reshape(40, 4, 32)
    w = torch.from_numpy(rng.normal(size=(6, 32))).float()
    exact = score_images(w, g, loc, memory=memory, **OFFICIAL)
    approx = score_images(w, g, loc, memory=memory, top_k=16, **OFFICIAL)
    assert "bound" in approx and "bound" not in exact
    assert float((exact["merged"] - approx["merged"]).abs().max()) <= approx["bound"] + 1e-5


def test_several_classifiers_in_one_pass_equal_one_at_a_time():
    rng = np.random.default_rng(4)
    memory, g = _sphere(rng, 12, 16), _sphere(rng, 9, 16)
    loc = _sphere(rng, 9 * 3, 16).reshape(9, 3, 16)
    ws = {f"w{i}": torch.from_numpy(rng.normal(size=(5, 16))).float() for i in range(3)}
    together = score_images(ws, g, loc, memory=memory, image_chunk=4, **OFFICIAL)
    for name, w in ws.items():
        alone = score_images(w, g, loc, memory=memory, image_chunk=2, **OFFICIAL)
        for branch in ("global", "local", "merged"):
            assert torch.allclose(together[name][branch], alone[branch], atol=1e-6)


def test_local_features_stream_from_a_feature_file(tmp_path):
    from lcmc_core.images.features import FeatureFile, write_feature_entry
    rng = np.random.default_rng(5)
    g = _sphere(rng, 11, 8)
    loc = _sphere(rng, 11 * 5, 8).reshape(11, 5, 8).half()
    write_feature_entry(tmp_path, g, loc, chunk=4)
    ff = FeatureFile(tmp_path / "local.npy")
    w = torch.from_numpy(rng.normal(size=(3, 8))).float()
    mem = _sphere(rng, 4, 8)
    from_file = score_images(w, g, ff, memory=mem, image_chunk=3, **OFFICIAL)
    in_memory = score_images(w, g, loc, memory=mem, image_chunk=5, **OFFICIAL)
    assert from_file["merged"].shape == (11, 3)
    assert torch.allclose(from_file["merged"], in_memory["merged"], atol=1e-6)


def test_softmax_pooling_by_hand():
    # one image, two positions, one class with weight e1: scores 1 and 0 at temperature 1
    g = torch.tensor([[1.0, 0.0]])
    loc = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    w = torch.tensor([[1.0, 0.0]])
    out = score_images(w, g, loc, local_pool="softmax", pool_temperature=1.0, local_weight=1.0)
    e = np.exp(1.0)
    assert float(out["local"][0, 0]) == pytest.approx(e / (e + 1) * 1 + 1 / (e + 1) * 0)
    assert float(score_images(w, g, loc, local_weight=LW)["local"][0, 0]) == 1.0  # max pooling


def test_transforms_apply_before_the_mapping_and_embedding_mean_streams(tmp_path):
    rng = np.random.default_rng(6)
    g, loc = _sphere(rng, 7, 8), _sphere(rng, 7 * 3, 8).reshape(7, 3, 8)
    mu_g, mu_l = g.mean(0), embedding_mean(loc, image_chunk=2)
    assert torch.allclose(mu_l, loc.reshape(-1, 8).mean(0), atol=1e-6)
    by_bytes = embedding_mean(loc, chunk_bytes=8 * 3 * 8)      # one image (3 x 8 float64) per chunk
    assert torch.allclose(by_bytes, mu_l, atol=1e-7)
    w = torch.from_numpy(rng.normal(size=(2, 8))).float()
    shifted = score_images(w, g, loc, global_transform=lambda x: mean_shift(x, mu_g),
                           local_transform=lambda x: mean_shift(x, mu_l), local_weight=LW)
    direct = score_images(w, mean_shift(g, mu_g), mean_shift(loc, mu_l), local_weight=LW)
    assert torch.allclose(shifted["merged"], direct["merged"], atol=1e-6)
