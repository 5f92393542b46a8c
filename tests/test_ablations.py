"""Ablation tables around a finished comparison: each varies one choice and recomputes only that."""
import numpy as np
import pytest

from lcmc_core import ablations


def test_sweep_mapping_alpha_one_is_no_mapping(smoke_comparison):
    r = smoke_comparison
    t = ablations.sweep_mapping(r, alphas=[0.7, 1.0], temperatures=[0.01, 0.1])
    assert list(t.columns) == ["alpha", "temperature", "mAP"] and len(t) == 4
    no_map = r.table.loc["text classifier, global+local", "mAP"]
    assert np.allclose(t[t.alpha == 1.0]["mAP"], no_map)
    official = t[(t.alpha == 0.7) & (t.temperature == 0.01)]["mAP"].item()
    assert official == pytest.approx(r.table.loc["CoMC (full)", "mAP"])


def test_compare_memories_and_branches(smoke_comparison):
    r = smoke_comparison
    m = ablations.compare_memories(r, {"class prompts": r.memory, "corpus": r.text_emb})
    assert list(m["memory"]) == ["none (no mapping)", "class prompts", "corpus"]
    assert m.loc[1, "mAP"] == pytest.approx(r.table.loc["CoMC (full)", "mAP"])
    b = ablations.compare_branches(r)
    assert len(b) == 6
    got = b.set_index(["mapping", "branch"])["mAP"]
    assert got[("none", "global")] == pytest.approx(r.table.loc["text classifier, global", "mAP"])
    assert got[("CoMC", "global")] == pytest.approx(r.table.loc["CoMC mapping, global only", "mAP"])


def test_retraining_sweeps(smoke_comparison):
    r = smoke_comparison
    noise = ablations.sweep_noise(r, [0.0, 0.1])
    assert noise.loc[1, "mAP (CoMC)"] == pytest.approx(r.table.loc["CoMC (full)", "mAP"])
    assert noise.loc[0, "mAP (CoMC)"] == pytest.approx(r.table.loc["CoMC without noise injection", "mAP"])
    sizes = ablations.sweep_corpus_size(r, [0, 100])
    assert list(sizes["sentences"]) == [0, 100]
    with pytest.raises(ValueError, match="exceeds"):
        ablations.sweep_corpus_size(r, [10**6])
    losses = ablations.compare_losses(r, ["ranking", "bce"])
    assert losses.loc[0, "mAP (CoMC)"] == pytest.approx(r.table.loc["CoMC (full)", "mAP"])


def test_mapping_gain_and_held_out_text_map(smoke_comparison):
    r = smoke_comparison
    g = ablations.mapping_gain(r)
    assert g["mapping gain"] == pytest.approx(g["mAP (CoMC)"] - g["mAP (no mapping)"])
    assert g["mAP (no mapping)"] == pytest.approx(r.table.loc["text classifier, global+local", "mAP"])
    _, hist = ablations.held_out_text_map(r, 0.2)
    assert len(hist) == r.config.classifier.epochs and all("val_map" in h for h in hist)
