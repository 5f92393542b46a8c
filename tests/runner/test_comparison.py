"""run_comparison: every baseline and CoMC through the same functions, each row recomputed here independently."""
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcmc_core import CoMC
from lcmc_core.method.classifier import TrainConfig, train_text_classifier
from lcmc_core.method.metrics import bootstrap_map_ci, f1_at_top_k, mean_average_precision
from lcmc_core.runner import comparison
from lcmc_core.text.prompts import OWN_TEMPLATES

ROWS = ["zero-shot, global", "zero-shot, global+local", "text classifier, global",
        "text classifier, global+local", "text classifier + mean shift (C3), global+local",
        "CoMC without noise injection", "CoMC mapping, global only", "CoMC (full)"]
SMALL = TrainConfig(epochs=3, batch_size=64, warmup_epochs=1)


def small_config(**kw):
    return comparison.MethodConfig(**{**dict(prompt_copies=2, n_boot=20, classifier=SMALL), **kw})


def test_comparison_has_every_method_and_metric(smoke_comparison):
    t = smoke_comparison.table
    assert list(t.index) == ROWS
    assert list(t.columns) == ["mAP", "CI low", "CI high", "CF1@3", "OF1@3"]
    assert np.isfinite(t.to_numpy()).all()
    assert ((t["CI low"] <= t["mAP"] + 1e-9) & (t["mAP"] <= t["CI high"] + 1e-9)).all()
    assert smoke_comparison.per_class_ap.shape == (20, len(ROWS))
    assert all(s.shape == (96, 20) for s in smoke_comparison.scores.values())


def _train(r, noise_std=0.1, centred=False):
    """The classifier of a row, trained here from scratch (no cache) with the comparison's recipe and seed."""
    cfg = dataclasses.replace(r.config.classifier, noise_std=noise_std)
    x = r.text_emb
    if centred:  # C3: texts centred on their mean and re-normalised
        x = F.normalize(x - x.mean(0), dim=-1)
    clf, _ = train_text_classifier(x, torch.as_tensor(r.corpus.targets, dtype=torch.float32), cfg, seed=r.seed)
    return clf.weight.detach()


def _map(x, memory, tau=0.01, alpha=0.7):
    attn = torch.softmax(x @ memory.T / tau, dim=-1)
    m = F.normalize(attn @ memory, dim=-1)
    return alpha * x + (1 - alpha) * m


def test_every_row_recomputed_independently(smoke_comparison):
    r = smoke_comparison
    g = r.image_features.global_
    loc = r.image_features.local[:].float()                      # (N, P, D)
    W, W_nn, W_c3 = _train(r), _train(r, noise_std=0.0), _train(r, centred=True)
    assert torch.equal(W, r.classifiers["comc"].weight.detach())     # deterministic from the seed
    mem = r.memory

    def merged(gs, ls):
        return 0.5 * gs + 0.5 * ls.amax(dim=1)

    expect = {
        "text classifier, global": g @ W.T,
        "text classifier, global+local": merged(g @ W.T, loc @ W.T),
        "CoMC mapping, global only": _map(g, mem) @ W.T,
        "CoMC (full)": merged(_map(g, mem) @ W.T, _map(loc, mem) @ W.T),
        "CoMC without noise injection": merged(_map(g, mem) @ W_nn.T, _map(loc, mem) @ W_nn.T),
    }
    gc = F.normalize(g - g.mean(0), dim=-1)
    lc = F.normalize(loc - loc.reshape(-1, loc.shape[-1]).mean(0), dim=-1)
    expect["text classifier + mean shift (C3), global+local"] = merged(gc @ W_c3.T, lc @ W_c3.T)
    for name, scores in expect.items():
        assert np.allclose(r.scores[name], scores.numpy(), atol=2e-5), name
        assert r.table.loc[name, "mAP"] == pytest.approx(mean_average_precision(scores.numpy(), r.labels), abs=1e-6)
    low, high = bootstrap_map_ci(r.scores["CoMC (full)"], r.labels, n_boot=20, seed=r.seed)
    assert (r.table.loc["CoMC (full)", "CI low"], r.table.loc["CoMC (full)", "CI high"]) == pytest.approx((low, high))
    f1 = f1_at_top_k(r.scores["CoMC (full)"], r.labels, k=3, threshold=0.0)
    assert r.table.loc["CoMC (full)", "CF1@3"] == pytest.approx(f1["CF1"])


def test_zero_shot_rows_use_the_prompt_ensemble(smoke_comparison, smoke_clip):
    r = smoke_comparison
    w = comparison.zero_shot_weights(smoke_clip, "emoji-voc")
    g, loc = r.image_features.global_, r.image_features.local[:].float()
    assert np.allclose(r.scores["zero-shot, global"], (g @ w.T).numpy(), atol=1e-5)
    assert np.allclose(r.scores["zero-shot, global+local"], (0.5 * g @ w.T + 0.5 * (loc @ w.T).amax(1)).numpy(),
                       atol=1e-5)


def test_the_estimator_gives_the_comparisons_comc_full_scores(smoke_comparison):
    r = smoke_comparison
    model = CoMC(alpha=0.7, temperature=0.01, classifier=r.config.classifier, seed=r.seed)
    scores = model.fit(r.text_emb, r.corpus.targets, memory=r.memory).decision_function(
        r.image_features.global_, r.image_features.local)
    assert np.array_equal(scores, r.scores["CoMC (full)"])
    assert model.coef_.shape == (20, 128) and model.n_classes_ == 20 and len(model.history_) == 3


def test_training_corpus_is_sentences_plus_prompt_augmentation():
    c = comparison.build_training_corpus("emoji-voc", small_config(prompt_copies=3), size=50)
    n_prompts = 20 * (3 + len(OWN_TEMPLATES))
    assert 45 <= len(c) - n_prompts <= 50  # texts naming no class are dropped
    assert c.targets.sum(1).min() >= 1
    no_templates = comparison.build_training_corpus("emoji-voc", small_config(prompt_templates="none"), size=0)
    assert len(no_templates) == 20 * 2


def test_the_official_training_prompts_are_nine_copies_plus_openais_80(tmp_path):
    c = comparison.build_training_corpus("voc2007", small_config(prompt_copies=9, prompt_templates="openai"), size=0)
    assert len(c) == 20 * 89
    first = [t for t, lab in zip(c.texts, c.targets) if lab[0] == 1]
    assert first.count("a photo of a airplane.") == 10  # 9 copies + the template itself, verbatim "a"


def test_corpus_path_is_read_instead_of_generated(tmp_path):
    from lcmc_core.text import corpus
    path = tmp_path / "c.jsonl"
    corpus.write_corpus(path, [corpus.make_record("two dogs and a cat", [7, 11], "emoji-voc", "test")])
    c = comparison.build_training_corpus("emoji-voc", small_config(prompt_copies=0, prompt_templates="none"),
                                         path=path)
    assert c.texts == ["two dogs and a cat"]


def test_zero_shot_weights_average_the_prompt_ensemble(smoke_clip):
    w = comparison.zero_shot_weights(smoke_clip, "emoji-voc")
    p = comparison.class_prompt_embeddings(smoke_clip, "emoji-voc")
    assert w.shape == p.shape == (20, 128)
    assert torch.allclose(w.norm(dim=-1), torch.ones(20), atol=1e-5)
    assert not torch.allclose(w, p)


@pytest.mark.parametrize("kw,match", [(dict(memory="images"), "memory"), (dict(local_weight=2.0), "local_weight"),
                                      (dict(n_boot=-1), "n_boot"), (dict(prompt_templates="mine"), "prompt_templates")])
def test_bad_method_config_is_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        small_config(**kw)
