"""run_comparison: every baseline and CoMC through the same functions, on the smoke toy CLIP."""
import numpy as np
import pytest
import torch

from lcmc_core import pipeline
from lcmc_core.classifier import TrainConfig
from lcmc_core.corpus import PROMPT_TEMPLATES

ROWS = ["zero-shot, global", "zero-shot, global+local", "text classifier, global",
        "text classifier, global+local", "text classifier + mean shift (C3), global+local",
        "CoMC without noise injection", "CoMC mapping, global only", "CoMC (full)"]


def small_config(**kw):
    base = dict(corpus_size=300, prompt_copies=2, n_boot=20,
                classifier=TrainConfig(epochs=3, batch_size=64, warmup_epochs=1))
    base.update(kw)
    return pipeline.MethodConfig(**base)


@pytest.fixture
def comparison(smoke_comparison):
    return smoke_comparison


def test_comparison_has_every_method_and_metric(comparison):
    t = comparison.table
    assert list(t.index) == ROWS
    assert list(t.columns) == ["mAP", "CI low", "CI high", "CF1@3", "OF1@3"]
    assert np.isfinite(t.to_numpy()).all()
    assert ((t["CI low"] <= t["mAP"] + 1e-9) & (t["mAP"] <= t["CI high"] + 1e-9)).all()
    assert comparison.per_class_ap.shape == (20, len(ROWS))
    assert all(s.shape == (96, 20) for s in comparison.scores.values())


def test_rows_are_what_they_claim(comparison, smoke_clip):
    from lcmc_core.mapping import cross_modal_map
    from lcmc_core.metrics import mean_average_precision
    r = comparison
    g = r.image_features.global_
    W = r.classifiers["comc"].weight.detach()
    # text classifier, global = raw image embeddings through the classifier
    assert np.allclose(r.scores["text classifier, global"], (g @ W.T).numpy(), atol=1e-5)
    # CoMC mapping, global only = classifier on the mapped global embedding, official settings
    mapped = cross_modal_map(g, r.memory, temperature=0.01, alpha=0.7)
    assert np.allclose(r.scores["CoMC mapping, global only"], (mapped @ W.T).numpy(), atol=1e-5)
    assert r.table.loc["CoMC (full)", "mAP"] == pytest.approx(
        mean_average_precision(r.scores["CoMC (full)"], r.labels))
    # the official memory: one prompt embedding per class
    assert r.memory.shape == (20, 128)
    # the no-noise classifier differs from the noisy one
    assert not torch.allclose(r.classifiers["no_noise"].weight, W)


def test_training_corpus_is_sentences_plus_prompt_augmentation():
    cfg = small_config(corpus_size=50, prompt_copies=3)
    c = pipeline.build_training_corpus("emoji-voc", cfg)
    n_prompts = 20 * (3 + len(PROMPT_TEMPLATES))
    assert len(c) - n_prompts <= 50 and len(c) - n_prompts >= 45  # texts naming no class are dropped
    assert c.targets.sum(1).min() >= 1
    no_templates = pipeline.build_training_corpus("emoji-voc", small_config(corpus_size=0, prompt_templates=False))
    assert len(no_templates) == 20 * 2


def test_corpus_path_is_read_instead_of_generated(tmp_path):
    from lcmc_core import corpus
    path = tmp_path / "c.jsonl"
    corpus.write_corpus(path, [corpus.make_record("two dogs and a cat", [7, 11], "emoji-voc", "test")])
    c = pipeline.build_training_corpus("emoji-voc", small_config(corpus_path=str(path), prompt_copies=0,
                                                                 prompt_templates=False))
    assert c.texts == ["two dogs and a cat"]


def test_zero_shot_weights_average_the_prompt_ensemble(smoke_clip):
    w = pipeline.zero_shot_weights(smoke_clip, "emoji-voc")
    p = pipeline.class_prompt_embeddings(smoke_clip, "emoji-voc")
    assert w.shape == p.shape == (20, 128)
    assert torch.allclose(w.norm(dim=-1), torch.ones(20), atol=1e-5)
    assert not torch.allclose(w, p)


def test_cached_text_embeddings_match_fresh_ones(smoke_clip, tmp_path):
    texts = ["a dog", "a cat on a sofa"]
    a = pipeline.encode_texts_cached(smoke_clip, texts, tmp_path, progress=False)
    b = pipeline.encode_texts_cached(smoke_clip, texts, tmp_path, progress=False)
    assert torch.equal(a, b) and len(list((tmp_path / "text_features").glob("*.pt"))) == 1


@pytest.mark.parametrize("kw,match", [(dict(memory="images"), "memory"), (dict(local_weight=2.0), "local_weight"),
                                      (dict(n_boot=-1), "n_boot")])
def test_bad_method_config_is_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        small_config(**kw)


def test_text_memory_choices():
    p, c = torch.zeros(2, 3), torch.ones(5, 3)
    assert pipeline.text_memory("prompts", p, c) is p and pipeline.text_memory("corpus", p, c) is c
    with pytest.raises(ValueError, match="memory"):
        pipeline.text_memory("both", p, c)
