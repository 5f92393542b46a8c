"""Ablation tables around a finished comparison: each varies one choice and recomputes only that."""
import types

import numpy as np
import pandas as pd
import pytest
import torch

from lcmc_core.experiments import ablations
from lcmc_core.experiments.rows import Row
from lcmc_core.images import toyclip


def test_sweep_mapping_alpha_one_is_no_mapping(smoke_comparison):
    r = smoke_comparison
    t = ablations.sweep_mapping(r, alphas=[0.7, 1.0], temperatures=[0.01, 0.1])
    assert list(t.columns) == ["alpha", "temperature", "mAP"] and len(t) == 4
    no_map = r.table.loc[Row.CLASSIFIER, "mAP"]
    assert np.allclose(t[t.alpha == 1.0]["mAP"], no_map)
    official = t[(t.alpha == 0.7) & (t.temperature == 0.01)]["mAP"].item()
    assert official == pytest.approx(r.table.loc[Row.COMC, "mAP"])


def test_compare_memories_and_branches(smoke_comparison):
    r = smoke_comparison
    m = ablations.compare_memories(r, {"class prompts": r.memory, "corpus": r.text_emb})
    assert list(m["memory"]) == ["none (no mapping)", "class prompts", "corpus"]
    assert m.loc[1, "mAP"] == pytest.approx(r.table.loc[Row.COMC, "mAP"])
    b = ablations.compare_branches(r)
    assert len(b) == 6
    got = b.set_index(["mapping", "branch"])["mAP"]
    assert got[("none", "global")] == pytest.approx(r.table.loc[Row.CLASSIFIER_GLOBAL, "mAP"])
    assert got[("CoMC", "global")] == pytest.approx(r.table.loc[Row.COMC_GLOBAL, "mAP"])


def test_retraining_sweeps(smoke_comparison):
    r = smoke_comparison
    noise = ablations.sweep_noise(r, [0.0, 0.1])
    assert noise.loc[1, "mAP (CoMC)"] == pytest.approx(r.table.loc[Row.COMC, "mAP"])
    assert noise.loc[0, "mAP (CoMC)"] == pytest.approx(r.table.loc[Row.COMC_NO_NOISE, "mAP"])
    sizes = ablations.sweep_corpus_size(r, [0, 100])
    assert list(sizes["sentences"]) == [0, 100]
    with pytest.raises(ValueError, match="exceeds"):
        ablations.sweep_corpus_size(r, [10**6])
    losses = ablations.compare_losses(r, ["double_ranking", "bce"])
    assert losses.loc[0, "mAP (CoMC)"] == pytest.approx(r.table.loc[Row.COMC, "mAP"])


def test_mapping_gain_and_held_out_text_map(smoke_comparison):
    r = smoke_comparison
    g = ablations.mapping_gain(r)
    assert g["mapping gain"] == pytest.approx(g["mAP (CoMC)"] - g["mAP (no mapping)"])
    assert g["mAP (no mapping)"] == pytest.approx(r.table.loc[Row.CLASSIFIER, "mAP"])
    _, hist = ablations.held_out_text_map(r, 0.2)
    assert len(hist) == r.estimator.classifier.epochs and all("val_map" in h for h in hist)


# ------------------------------------------------------------------------- across toy CLIP variants
class FakeExperiment:
    """Just enough of Experiment for the variant ablations: with_variant, pair_count, comparison, paired_embeddings."""

    def __init__(self, variant="clip-like-gap", dataset="emoji-voc", seed=0):
        self.variant, self.dataset = variant, dataset
        self.params = types.SimpleNamespace(seed=seed, toy_variant=variant)

    def with_variant(self, variant):
        if self.dataset != "emoji-voc":
            raise ValueError("toy CLIP variants exist only in the toy world")
        return FakeExperiment(variant, self.dataset, self.params.seed)

    def pair_count(self):
        return 30

    def paired_embeddings(self, n=None):
        # the "small-gap" variant gets texts close to the images, the others far away
        n = n or self.pair_count()
        g = torch.Generator().manual_seed(1)
        img = torch.nn.functional.normalize(torch.randn(n, 8, generator=g) + 3 * torch.eye(8)[0], dim=-1)
        shift = 0.2 if self.variant == "small-gap" else 3.0
        txt = torch.nn.functional.normalize(img + shift * torch.eye(8)[1], dim=-1)
        return img, txt, [f"caption {i}" for i in range(n)]

    def comparison(self, progress=True, **overrides):
        gain = 1.0 if self.variant == "small-gap" else -1.0
        rows = [Row.ZERO_SHOT_PUBLISHED, Row.ZERO_SHOT_OWN_FEATURES, Row.CLASSIFIER, Row.COMC]
        table = pd.DataFrame({"mAP": [40.0, 45.0, 60.0, 60.0 + gain]}, index=[str(r) for r in rows])
        return types.SimpleNamespace(table=table, gain=gain)


def test_variant_gap_views_one_entry_per_variant():
    views = ablations.variant_gap_views(FakeExperiment(), n=50)
    assert list(views) == list(toyclip.VARIANTS)
    for v in views.values():
        assert v["image_2d"].shape == (50, 2) and v["text_2d"].shape == (50, 2)
        assert v["matched"].shape == (50,) and v["unmatched"].shape == (50,) and len(v["captions"]) == 50
    assert views["small-gap"]["gap_norm"] < views["clip-like-gap"]["gap_norm"]
    with pytest.raises(ValueError, match="toy world"):
        ablations.variant_gap_views(FakeExperiment(dataset="voc2007"))


def test_mapping_gain_by_variant(monkeypatch):
    def fake_gain(res):
        return {"mAP (CoMC)": 60.0 + res.gain, "mAP (no mapping)": 60.0, "mapping gain": res.gain}

    monkeypatch.setattr(ablations, "mapping_gain", fake_gain)
    table = ablations.mapping_gain_by_variant(FakeExperiment(), n_pairs=40, n_boot=0)
    assert list(table.index) == list(toyclip.VARIANTS)
    assert table.loc["small-gap", "mapping gain (mAP points)"] == 1.0
    assert table.loc["clip-like-gap", "mapping gain (mAP points)"] == -1.0
    assert table.loc["small-gap", "gap"] < table.loc["clip-like-gap", "gap"]
    assert (table["zero-shot mAP (%) [published protocol]"] == 40.0).all()
    assert (table["zero-shot mAP (%) [CoMC's features]"] == 45.0).all()      # like for like, with the local branch


def test_corpus_size_grid(smoke_comparison):
    n = sum(s != "prompt" for s in smoke_comparison.corpus.sources)
    assert ablations.corpus_size_grid(smoke_comparison) == [0, n]
    assert ablations.corpus_size_grid(smoke_comparison, (0, 100, 5000)) == [0, 100, n]


def test_text_map_by_label_count_reuses_a_given_classifier(smoke_comparison):
    clf, _ = ablations.held_out_text_map(smoke_comparison)
    given = ablations.text_map_by_label_count(smoke_comparison, classifier=clf)
    trained = ablations.text_map_by_label_count(smoke_comparison)
    pd.testing.assert_frame_equal(given, trained)
    assert given.index[0] == "all held-out texts" and given.index[-1].startswith("test images")
    assert (given["count"] > 0).all()


def test_mapping_view_alpha_one_is_no_mapping_on_fixed_axes(smoke_comparison):
    res = smoke_comparison
    v = ablations.mapping_view(res, 1.0, 0.01, n_points=50)
    assert v["mAP"] == pytest.approx(v["mAP_no_mapping"]) and v["gap"] == pytest.approx(v["gap_no_mapping"])
    np.testing.assert_allclose(v["image_2d"], v["raw_2d"], atol=1e-9)
    w = ablations.mapping_view(res, 0.0, 0.01, n_points=50, projection=v["projection"])
    assert w["gap"] < v["gap"]                        # alpha 0 puts images on the text memory's span
    np.testing.assert_allclose(w["raw_2d"], v["raw_2d"])   # the same axes
    assert not np.allclose(w["image_2d"], v["image_2d"])
    sweep = ablations.sweep_mapping(res, [0.0], [0.01])
    assert w["mAP"] == pytest.approx(sweep["mAP"].iloc[0])
    with pytest.raises(ValueError, match="alpha=1.5"):
        ablations.mapping_view(res, 1.5, 0.01)


def test_mapping_explorer_has_alpha_and_tau_sliders(smoke_comparison):
    pytest.importorskip("ipywidgets")
    import matplotlib
    matplotlib.use("Agg")
    w = ablations.mapping_explorer(smoke_comparison, n_points=30)
    sliders = {c.description: c for c in w.children if hasattr(c, "min")}
    assert set(sliders) == {"alpha", "tau"}
    assert sliders["alpha"].value == smoke_comparison.estimator.alpha
    assert sliders["tau"].value == pytest.approx(smoke_comparison.estimator.temperature)
