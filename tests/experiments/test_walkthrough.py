"""The method step by step (notebooks 02 and 03): every value equals what the package computes, and the hand example holds."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcmc_core.experiments import walkthrough
from lcmc_core.method.classifier import TrainConfig
from lcmc_core.method.comc import CoMC


def _unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_the_loss_by_hand_equals_the_package_ranking_loss():
    table, by_hand, package = walkthrough.ranking_loss_example()
    # dog (2.0) and car (-1.0) named; cat (0.5) and sofa (0.2) not: four pairs, hinges 0, 0, 2.5, 2.2
    assert len(table) == 4 and sorted(table["hinge max(0, .)"].round(6)) == [0.0, 0.0, 2.2, 2.5]
    assert by_hand == pytest.approx(4.7) and package == pytest.approx(by_hand)


def test_noise_keeps_the_direction_roughly_and_is_not_renormalised():
    x = _unit(512)
    ex = walkthrough.noisy_embedding(x, 0.1, seed=3)
    assert np.linalg.norm(ex["clean"]) == pytest.approx(1.0, abs=1e-6)
    assert ex["norm"] == pytest.approx(np.sqrt(1 + 512 * 0.01), rel=0.1)    # |x + e|^2 ~ 1 + D std^2
    assert 0.3 < ex["cosine"] < 0.5 and walkthrough.noisy_embedding(x, 0.0)["cosine"] == pytest.approx(1.0)


def test_the_mapping_of_one_image_is_the_estimators():
    memory, g = _unit(6, 16, seed=1), _unit(5, 16, seed=2)
    est = CoMC.from_classifier(_unit(4, 16, seed=3), memory, alpha=0.6, temperature=0.05)
    walk = walkthrough.mapping_of_one_image(est, g, index=2, text_mean=memory.mean(0))
    global_map, _ = est.mapping_transforms()
    np.testing.assert_allclose(walk.mixed, global_map(g)[2].numpy(), atol=1e-6)
    np.testing.assert_allclose(walk.scores_after, est.scores(g)["global"][2].numpy(), atol=1e-5)
    assert walk.weights.sum() == pytest.approx(1.0) and np.linalg.norm(walk.mapped) == pytest.approx(1.0, abs=1e-6)
    top = walk.top_weights([f"row {i}" for i in range(6)], k=2)
    assert list(top["softmax weight"]) == sorted(walk.weights, reverse=True)[:2]
    assert walk.cosine_to_text_mean[1] > walk.cosine_to_text_mean[0]      # moved towards the texts
    with pytest.raises(ValueError, match="no memory"):
        walkthrough.mapping_of_one_image(CoMC.from_classifier(_unit(4, 16), None, alpha=1.0), g, 0)


def test_training_texts_counts_the_corpus_and_the_augmentation():
    from lcmc_core.text.corpus import build_corpus, corpus_from_records, prompt_augmentation
    records = build_corpus("emoji-voc", 30, seed=0) + prompt_augmentation("emoji-voc", copies=9, templates="openai")
    corpus = corpus_from_records(records, "emoji-voc")
    table = walkthrough.training_texts(corpus, 9, 80)
    assert table.loc["class prompt, 9 copies per class", "count"] == 180
    assert table.loc["one text per template (80 per class)", "count"] == 1600
    assert table.loc["all training texts", "count"] == len(corpus)
    est = CoMC(classifier=TrainConfig(epochs=1, batch_size=64, warmup_epochs=0))
    assert est.classifier.noise_std == CoMC().classifier.noise_std == 0.1
