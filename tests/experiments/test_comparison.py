"""run_comparison: every baseline and CoMC through the same functions, each row recomputed here independently."""
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcmc_core import CoMC
from lcmc_core.method.classifier import TrainConfig, train_text_classifier
from lcmc_core.method.metrics import bootstrap_map_ci, f1_at_top_k, mean_average_precision
from lcmc_core.experiments import comparison

ROWS = list(comparison.ROWS)
PUBLISHED = "zero-shot CLIP [published: encode_image, 80 OpenAI templates]"
SELECT = "zero-shot CLIP [official ZeroshotCLIP2: 7 select templates + 'a photo of a {}.']"
DENSE = "zero-shot CLIP + local [official ZeroshotCLIP_dense]"
C3 = "text classifier + C3 mean shift, global+local"
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
    expect[C3] = merged(gc @ W_c3.T, lc @ W_c3.T)
    expect["text classifier + DeCap projection (alpha 0), global+local"] = merged(
        _map(g, mem, alpha=0.0) @ W.T, _map(loc, mem, alpha=0.0) @ W.T)
    full = expect["CoMC (full)"].numpy()
    z = (full - full.mean(1, keepdims=True)) / full.std(1, ddof=1, keepdims=True)
    expect["CoMC + SPARC score standardisation"] = torch.as_tensor((z - z.mean(0)) / z.std(0, ddof=1))
    for name, scores in expect.items():
        # z-scores divide by small spreads, so float32 rounding of the inputs grows there
        assert np.allclose(r.scores[name], scores.numpy(), atol=1e-3 if "SPARC" in name else 2e-5), name
        assert r.table.loc[name, "mAP"] == pytest.approx(mean_average_precision(scores.numpy(), r.labels), abs=1e-6)
    low, high = bootstrap_map_ci(r.scores["CoMC (full)"], r.labels, n_boot=20, seed=r.seed)
    assert (r.table.loc["CoMC (full)", "CI low"], r.table.loc["CoMC (full)", "CI high"]) == pytest.approx((low, high))
    f1 = f1_at_top_k(r.scores["CoMC (full)"], r.labels, k=3, threshold=0.0)
    assert r.table.loc["CoMC (full)", "CF1@3"] == pytest.approx(f1["CF1"])


def _ensemble(clip, templates):
    from lcmc_core.images.features import encode_texts
    from lcmc_core.text.label_sets import get_label_set
    names = get_label_set("emoji-voc").prompt_names
    w = torch.stack([encode_texts(clip, [t.format(n) for t in templates]).mean(0) for n in names])
    return F.normalize(w, dim=-1)


def test_zero_shot_rows_follow_each_protocol(smoke_comparison, smoke_clip):
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    r = smoke_comparison
    g, loc, gc = r.image_features.global_, r.image_features.local[:].float(), r.image_features.global_clip
    w_pub = _ensemble(smoke_clip, [t("{}") for t in OPENAI_IMAGENET_TEMPLATES])
    assert np.allclose(r.scores[PUBLISHED], (gc @ w_pub.T).numpy(), atol=1e-5)
    select = ["itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
              "a {} in a video game.", "art of the {}.", "a photo of the small {}.", "a photo of a {}."]
    assert np.allclose(r.scores[SELECT], (gc @ _ensemble(smoke_clip, select).T).numpy(), atol=1e-5)
    w1 = _ensemble(smoke_clip, ["a photo of a {}."])
    local = 100 * loc @ w1.T                                   # (N, P, C), logit scale 100
    dense = 0.5 * 100 * gc @ w1.T + 0.5 * (local * torch.softmax(local, dim=1)).sum(1)
    assert np.allclose(r.scores[DENSE] * 100, dense.numpy(), atol=1e-3)
    like = "zero-shot on CoMC's features [no-pos pool + local max]"
    assert np.allclose(r.scores[like], (0.5 * g @ w_pub.T + 0.5 * (loc @ w_pub.T).amax(1)).numpy(), atol=1e-5)
    # I0T: images centred on their mean, weights on the corpus mean, both re-normalised
    ic = F.normalize(gc - gc.mean(0), dim=-1)
    wc = F.normalize(w_pub - r.text_emb.float().mean(0), dim=-1)
    assert np.allclose(r.scores["zero-shot + I0T post-hoc centring [published protocol]"], (ic @ wc.T).numpy(),
                       atol=1e-5)
    from lcmc_core.method.peers import sparc_standardize
    assert np.allclose(r.scores["zero-shot + SPARC score standardisation [published protocol]"],
                       sparc_standardize(r.scores[PUBLISHED]))


def test_official_protocol_row_picks_the_best_epoch_on_every_tenth_test_image(smoke_comparison):
    r = smoke_comparison
    sel = r.selection
    epochs = r.models["comc"].epoch_weights_
    assert len(sel["selection_map"]) == len(epochs) == r.config.classifier.epochs
    assert torch.equal(epochs[-1], r.classifiers["comc"].weight.detach())     # the last epoch is the final model
    idx = np.arange(0, len(r.labels), 10)
    g, loc, mem = r.image_features.global_, r.image_features.local[:].float(), r.memory
    maps = []
    for w in epochs:
        s = 0.5 * _map(g[idx], mem) @ w.T + 0.5 * (_map(loc[idx], mem) @ w.T).amax(1)
        maps.append(mean_average_precision(s.numpy(), r.labels[idx]))
    assert sel["selection_map"] == pytest.approx(maps, abs=1e-6) and sel["epoch"] == int(np.argmax(maps))
    w = epochs[sel["epoch"]]
    full = 0.5 * _map(g, mem) @ w.T + 0.5 * (_map(loc, mem) @ w.T).amax(1)
    assert np.allclose(r.scores["CoMC, official protocol (selects epoch on test images)"], full.numpy(), atol=2e-5)


def test_the_estimator_gives_the_comparisons_comc_full_scores(smoke_comparison):
    r = smoke_comparison
    model = CoMC(alpha=0.7, temperature=0.01, classifier=r.config.classifier, seed=r.seed)
    scores = model.fit(r.text_emb, r.corpus.targets, memory=r.memory).decision_function(
        r.image_features.global_, r.image_features.local)
    assert np.array_equal(scores, r.scores["CoMC (full)"])
    assert model.coef_.shape == (20, 128) and model.n_classes_ == 20 and len(model.history_) == 3


def test_training_corpus_is_sentences_plus_prompt_augmentation():
    c = comparison.build_training_corpus("emoji-voc", small_config(prompt_copies=3), size=50)
    from lcmc_core.text.prompts import OPENAI_TEMPLATES
    n_prompts = 20 * (3 + len(OPENAI_TEMPLATES))
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


def test_requested_labels_replace_the_extracted_ones(tmp_path):
    from lcmc_core.text import corpus
    path = tmp_path / "c.jsonl"
    rec = corpus.make_record("two dogs on a sofa", [11], "emoji-voc", "llm", requested=["dog", "cat"])
    corpus.write_corpus(path, [rec])
    kw = dict(prompt_copies=0, prompt_templates="none")
    ours = comparison.build_training_corpus("emoji-voc", small_config(**kw), path=path)
    official = comparison.build_training_corpus("emoji-voc", small_config(corpus_labels="requested", **kw), path=path)
    names = ours.label_set.classnames
    assert [names[i] for i in np.flatnonzero(ours.targets[0])] == ["dog"]
    assert sorted(names[i] for i in np.flatnonzero(official.targets[0])) == ["cat", "dog"]
