"""run_comparison: every baseline and CoMC through the same functions, each row recomputed here independently."""
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcmc_core import CoMC
from lcmc_core.experiments import comparison
from lcmc_core.experiments.rows import Row
from lcmc_core.method.classifier import TrainConfig, train_text_classifier
from lcmc_core.method.metrics import bootstrap_map_ci, f1_at_top_k, mean_average_precision

# every row a comparison without extra inputs has (TaI-DPT's rows, SPARC's compound prompts and the
# released checkpoint are asked for: their own tests below)
ROWS = [r for r in Row if not r.name.startswith("TAIDPT")
        and r not in (Row.SPARC, Row.COMC_SPARC_FUSION, Row.COMC_RELEASED)]
SMALL = TrainConfig(epochs=3, batch_size=64, warmup_epochs=1)


def small_settings(**kw):
    return comparison.ComparisonSettings(**{**dict(prompt_copies=2), **kw})


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
    cfg = dataclasses.replace(r.estimator.classifier, noise_std=noise_std)
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
    assert torch.equal(W, r.estimator.coef_)     # deterministic from the seed
    mem = r.memory

    def merged(gs, ls):
        return 0.5 * gs + 0.5 * ls.amax(dim=1)

    expect = {
        Row.CLASSIFIER_GLOBAL: g @ W.T,
        Row.CLASSIFIER: merged(g @ W.T, loc @ W.T),
        Row.COMC_GLOBAL: _map(g, mem) @ W.T,
        Row.COMC: merged(_map(g, mem) @ W.T, _map(loc, mem) @ W.T),
        Row.COMC_NO_NOISE: merged(_map(g, mem) @ W_nn.T, _map(loc, mem) @ W_nn.T),
    }
    gc = F.normalize(g - g.mean(0), dim=-1)
    lc = F.normalize(loc - loc.reshape(-1, loc.shape[-1]).mean(0), dim=-1)
    expect[Row.C3] = merged(gc @ W_c3.T, lc @ W_c3.T)
    expect[Row.DECAP] = merged(_map(g, mem, alpha=0.0) @ W.T, _map(loc, mem, alpha=0.0) @ W.T)
    full = expect[Row.COMC].numpy()
    z = (full - full.mean(1, keepdims=True)) / full.std(1, ddof=1, keepdims=True)
    expect[Row.COMC_SPARC_STANDARDISATION] = torch.as_tensor((z - z.mean(0)) / z.std(0, ddof=1))
    for name, scores in expect.items():
        # z-scores divide by small spreads, so float32 rounding of the inputs grows there
        atol = 1e-3 if name is Row.COMC_SPARC_STANDARDISATION else 2e-5
        assert np.allclose(r.scores[name], scores.numpy(), atol=atol), name
        assert r.table.loc[name, "mAP"] == pytest.approx(mean_average_precision(scores.numpy(), r.labels), abs=1e-6)
    low, high = bootstrap_map_ci(r.scores[Row.COMC], r.labels, n_boot=20, seed=r.seed)
    assert (r.table.loc[Row.COMC, "CI low"], r.table.loc[Row.COMC, "CI high"]) == pytest.approx((low, high))
    f1 = f1_at_top_k(r.scores[Row.COMC], r.labels, k=3, threshold=0.0)
    assert r.table.loc[Row.COMC, "CF1@3"] == pytest.approx(f1["CF1"])


def _ensemble(clip, templates):
    from lcmc_core.images.features import encode_texts
    from lcmc_core.text.label_sets import get_label_set
    names = get_label_set("emoji-voc").prompt_names
    w = torch.stack([encode_texts(clip, [t.format(n) for t in templates]).mean(0) for n in names])
    return F.normalize(w, dim=-1)


def test_zero_shot_rows_follow_each_protocol(smoke_comparison, smoke_clip):
    from open_clip import OPENAI_IMAGENET_TEMPLATES

    r = smoke_comparison
    g, loc, gc = r.image_features.global_, r.image_features.local[:].float(), r.image_features.global_clip
    w_pub = _ensemble(smoke_clip, [t("{}") for t in OPENAI_IMAGENET_TEMPLATES])
    assert np.allclose(r.scores[Row.ZERO_SHOT_PUBLISHED], (gc @ w_pub.T).numpy(), atol=1e-5)
    select = ["itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
              "a {} in a video game.", "art of the {}.", "a photo of the small {}.", "a photo of a {}."]
    assert np.allclose(r.scores[Row.ZERO_SHOT_SELECT], (gc @ _ensemble(smoke_clip, select).T).numpy(), atol=1e-5)
    w1 = _ensemble(smoke_clip, ["a photo of a {}."])
    local = 100 * loc @ w1.T                                   # (N, P, C), logit scale 100
    dense = 0.5 * 100 * gc @ w1.T + 0.5 * (local * torch.softmax(local, dim=1)).sum(1)
    assert np.allclose(r.scores[Row.ZERO_SHOT_DENSE] * 100, dense.numpy(), atol=1e-3)
    like = (0.5 * g @ w_pub.T + 0.5 * (loc @ w_pub.T).amax(1)).numpy()
    assert np.allclose(r.scores[Row.ZERO_SHOT_OWN_FEATURES], like, atol=1e-5)
    # I0T: images centred on their mean, weights on the corpus mean, both re-normalised
    ic = F.normalize(gc - gc.mean(0), dim=-1)
    wc = F.normalize(w_pub - r.text_emb.float().mean(0), dim=-1)
    assert np.allclose(r.scores[Row.I0T], (ic @ wc.T).numpy(), atol=1e-5)
    from lcmc_core.method.peers import sparc_standardize
    assert np.allclose(r.scores[Row.SPARC_STANDARDISATION], sparc_standardize(r.scores[Row.ZERO_SHOT_PUBLISHED]))


def test_official_protocol_row_picks_the_best_epoch_on_every_tenth_test_image(smoke_comparison):
    r = smoke_comparison
    sel = r.selection
    epochs = r.estimator.epoch_weights_
    assert len(sel["selection_map"]) == len(epochs) == r.estimator.classifier.epochs
    assert torch.equal(epochs[-1], r.estimator.coef_)     # the last epoch is the final model
    idx = np.arange(0, len(r.labels), 10)
    g, loc, mem = r.image_features.global_, r.image_features.local[:].float(), r.memory
    maps = []
    for w in epochs:
        s = 0.5 * _map(g[idx], mem) @ w.T + 0.5 * (_map(loc[idx], mem) @ w.T).amax(1)
        maps.append(mean_average_precision(s.numpy(), r.labels[idx]))
    assert sel["selection_map"] == pytest.approx(maps, abs=1e-6) and sel["epoch"] == int(np.argmax(maps))
    w = epochs[sel["epoch"]]
    full = 0.5 * _map(g, mem) @ w.T + 0.5 * (_map(loc, mem) @ w.T).amax(1)
    assert np.allclose(r.scores[Row.COMC_OFFICIAL_PROTOCOL], full.numpy(), atol=2e-5)


def test_the_estimator_gives_the_comparisons_comc_full_scores(smoke_comparison):
    r = smoke_comparison
    model = CoMC(alpha=0.7, temperature=0.01, classifier=r.estimator.classifier, seed=r.seed)
    scores = model.fit(r.text_emb, r.corpus.targets, memory=r.memory).decision_function(
        r.image_features.global_, r.image_features.local)
    assert np.array_equal(scores, r.scores[Row.COMC])
    assert model.coef_.shape == (20, 128) and model.n_classes_ == 20 and len(model.history_) == 3


def test_training_corpus_is_sentences_plus_prompt_augmentation():
    c = comparison.build_training_corpus("emoji-voc", small_settings(prompt_copies=3), size=50)
    from lcmc_core.text.prompts import OPENAI_TEMPLATES
    n_prompts = 20 * (3 + len(OPENAI_TEMPLATES))
    assert 45 <= len(c) - n_prompts <= 50  # texts naming no class are dropped
    assert c.targets.sum(1).min() >= 1
    no_templates = comparison.build_training_corpus("emoji-voc", small_settings(prompt_templates="none"), size=0)
    assert len(no_templates) == 20 * 2


def test_the_official_training_prompts_are_nine_copies_plus_openais_80(tmp_path):
    c = comparison.build_training_corpus("voc2007", small_settings(prompt_copies=9, prompt_templates="openai"), size=0)
    assert len(c) == 20 * 89
    first = [t for t, lab in zip(c.texts, c.targets) if lab[0] == 1]
    assert first.count("a photo of a airplane.") == 10  # 9 copies + the template itself, verbatim "a"


def test_corpus_path_is_read_instead_of_generated(tmp_path):
    from lcmc_core.text import corpus
    path = tmp_path / "c.jsonl"
    corpus.write_corpus(path, [corpus.make_record("two dogs and a cat", [7, 11], "emoji-voc", "test")])
    c = comparison.build_training_corpus("emoji-voc", small_settings(prompt_copies=0, prompt_templates="none"),
                                         path=path)
    assert c.texts == ["two dogs and a cat"]


def test_zero_shot_weights_average_the_prompt_ensemble(smoke_clip):
    w = comparison.zero_shot_weights(smoke_clip, "emoji-voc")
    p = comparison.class_prompt_embeddings(smoke_clip, "emoji-voc")
    assert w.shape == p.shape == (20, 128)
    assert torch.allclose(w.norm(dim=-1), torch.ones(20), atol=1e-5)
    assert not torch.allclose(w, p)


@pytest.mark.parametrize("make,match", [(lambda: small_settings(memory="images"), "comparison.memory"),
                                        (lambda: small_settings(prompt_templates="mine"), "prompt_templates"),
                                        (lambda: comparison.Evaluation(n_boot=-1), "evaluation.n_boot"),
                                        (lambda: comparison.Evaluation(difficult="drop"), "evaluation.difficult")])
def test_bad_settings_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_requested_labels_replace_the_extracted_ones(tmp_path):
    from lcmc_core.text import corpus
    path = tmp_path / "c.jsonl"
    rec = corpus.make_record("two dogs on a sofa", [11], "emoji-voc", "llm", requested=["dog", "cat"])
    corpus.write_corpus(path, [rec])
    kw = dict(prompt_copies=0, prompt_templates="none")
    ours = comparison.build_training_corpus("emoji-voc", small_settings(**kw), path=path)
    official = comparison.build_training_corpus("emoji-voc", small_settings(corpus_labels="requested", **kw), path=path)
    names = ours.label_set.classnames
    assert [names[i] for i in np.flatnonzero(ours.targets[0])] == ["dog"]
    assert sorted(names[i] for i in np.flatnonzero(official.targets[0])) == ["cat", "dog"]


# --- every hyperparameter reaches every row (and ablation) that uses it -------------------------
def _synthetic(n_texts=400, n_images=60, positions=3, d=24, seed=0, label_set="emoji-voc"):
    """A comparison's inputs from synthetic unit embeddings (no CLIP): corpus, texts, prompts, zero-shot, features."""
    from lcmc_core.images.features import ImageFeatures
    from lcmc_core.text.corpus import corpus_from_records, make_record

    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    unit = lambda *shape: F.normalize(torch.randn(*shape, generator=gen), dim=-1)
    from lcmc_core.text.label_sets import get_label_set
    c = len(get_label_set(label_set))
    directions = unit(c, d)
    records, rows = [], []
    for _ in range(n_texts):
        ids = sorted(rng.choice(c, size=rng.integers(1, 4), replace=False).tolist())
        records.append(make_record("synthetic", ids, label_set, "test"))
        rows.append(ids)
    corpus = corpus_from_records(records, label_set)
    y = torch.as_tensor(corpus.targets, dtype=torch.float32)
    text_emb = F.normalize(y @ directions + 0.3 * unit(n_texts, d), dim=-1)
    labels = np.where(rng.random((n_images, c)) < 0.15, 1, -1)
    labels[np.arange(n_images), rng.integers(0, c, n_images)] = 1
    lab = torch.as_tensor((labels == 1).astype(np.float32))
    g = F.normalize(lab @ directions + 0.8 * unit(n_images, d) + 0.5, dim=-1)       # a modality gap: shifted
    loc = F.normalize(lab[:, None, :] @ directions + 0.9 * unit(n_images, positions, d) + 0.5, dim=-1)
    feats = ImageFeatures(global_=g, local=loc, key="synthetic", global_clip=F.normalize(g + 0.1 * unit(n_images, d), dim=-1))
    prompts = F.normalize(directions + 0.1 * unit(c, d), dim=-1)
    return corpus, text_emb, prompts, prompts, feats, labels


@pytest.fixture(scope="module")
def synthetic():
    return _synthetic()


def _compare(synthetic, **params):
    corpus, text_emb, prompts, zs, feats, labels = synthetic
    est = CoMC(classifier=TrainConfig(epochs=2, batch_size=64, warmup_epochs=1))
    est = est.with_params(**params) if params else est
    return comparison.compare_on_embeddings(corpus, text_emb, prompts, zs, feats, labels, est,
                                            evaluation=comparison.Evaluation(n_boot=0), cache=None)


MAPPED = {Row.COMC, Row.COMC_GLOBAL, Row.COMC_NO_NOISE, Row.COMC_SPARC_STANDARDISATION, Row.COMC_OFFICIAL_PROTOCOL}
LOCAL = {Row.ZERO_SHOT_OWN_FEATURES, Row.CLASSIFIER, Row.C3, Row.DECAP, Row.COMC, Row.COMC_NO_NOISE,
         Row.COMC_SPARC_STANDARDISATION, Row.COMC_OFFICIAL_PROTOCOL}
TRAINED = MAPPED | {Row.CLASSIFIER, Row.CLASSIFIER_GLOBAL, Row.C3, Row.DECAP}
# the hyperparameter's new value -> the rows that must move (every other row must not)
KNOBS = {
    "alpha": (0.3, MAPPED),
    "temperature": (0.2, MAPPED | {Row.DECAP}),
    "memory_top_k": (1, MAPPED | {Row.DECAP}),
    "local_weight": (0.2, LOCAL),
    "map_global": (False, MAPPED | {Row.DECAP}),
    "map_local": (False, (MAPPED - {Row.COMC_GLOBAL}) | {Row.DECAP}),
    "classifier": ({"noise_std": 0.05}, TRAINED - {Row.COMC_NO_NOISE}),
    "seed": (1, TRAINED),
}


@pytest.mark.parametrize("name", list(KNOBS))
def test_each_hyperparameter_moves_exactly_the_rows_that_use_it(synthetic, name):
    from lcmc_core.method.comc import hyperparameters
    assert set(KNOBS) == {h.name for h in hyperparameters()}      # a new hyperparameter needs its line here
    base = _compare(synthetic)
    value, moving = KNOBS[name]
    changed = _compare(synthetic, **{name: value})
    assert set(changed.scores) == set(base.scores)
    moved = {row for row in base.scores if not np.allclose(changed.scores[row], base.scores[row], atol=1e-6)}
    assert moved == moving, f"{name}: moved {sorted(map(str, moved))}, expected {sorted(map(str, moving))}"


@pytest.mark.parametrize("name", ["memory_top_k", "local_weight", "map_local"])
def test_the_ablations_use_every_hyperparameter_of_the_estimator(synthetic, name):
    from lcmc_core.experiments import ablations
    value, _ = KNOBS[name]
    base, changed = _compare(synthetic), _compare(synthetic, **{name: value})
    for table in (lambda r: ablations.sweep_mapping(r, [0.0, 0.7], [0.01]),
                  lambda r: ablations.compare_branches(r),
                  lambda r: ablations.sweep_noise(r, [0.0]),
                  lambda r: ablations.compare_memories(r, {"prompts": r.memory})):
        a, b = table(base), table(changed)
        assert not np.allclose(a["mAP" if "mAP" in a else "mAP (CoMC)"], b["mAP" if "mAP" in b else "mAP (CoMC)"]), name
    assert ablations.mapping_gain(base) != ablations.mapping_gain(changed)


def test_the_sparc_rows_are_sparc_scores_of_the_published_and_of_comcs_scores(synthetic):
    from lcmc_core.method.peers import sparc_scores
    corpus, text_emb, prompts, zs, feats, labels = synthetic
    gen = torch.Generator().manual_seed(5)
    compound = F.normalize(torch.randn(30, text_emb.shape[1], generator=gen), dim=-1)
    class_compound = [[c % 30, (c + 7) % 30] for c in range(20)]
    sparc = comparison.SparcPrompts(simple=prompts, compound=compound, class_compound=class_compound,
                                    texts=[f"p{i}" for i in range(30)], source="test")
    est = CoMC(classifier=TrainConfig(epochs=2, batch_size=64, warmup_epochs=1))
    r = comparison.compare_on_embeddings(corpus, text_emb, prompts, zs, feats, labels, est, sparc=sparc,
                                         evaluation=comparison.Evaluation(n_boot=0))
    gc = feats.global_clip
    simple, comp = (gc @ prompts.T).numpy(), (gc @ compound.T).numpy()
    np.testing.assert_allclose(r.scores[Row.SPARC], sparc_scores((gc @ zs.T).numpy(), simple, comp, class_compound),
                               atol=1e-6)
    np.testing.assert_allclose(r.scores[Row.COMC_SPARC_FUSION],
                               sparc_scores(r.scores[Row.COMC], simple, comp, class_compound), atol=1e-6)
    assert list(r.table.index).index(Row.SPARC) < list(r.table.index).index(Row.CLASSIFIER_GLOBAL)


def test_global_features_on_disk_give_the_same_comparison_and_are_released_after(synthetic, tmp_path):
    from lcmc_core.images.features import FeatureFile, ImageFeatures, write_feature_entry
    corpus, text_emb, prompts, zs, feats, labels = synthetic
    write_feature_entry(tmp_path, feats.global_, feats.local, global_clip=feats.global_clip)
    loc = FeatureFile(tmp_path / "local.npy")
    held = ImageFeatures(global_=feats.global_, local=loc, key="k", global_clip=feats.global_clip)
    on_disk = ImageFeatures(global_=FeatureFile(tmp_path / "global.npy"), local=loc, key="k",
                            global_clip=FeatureFile(tmp_path / "global_clip.npy"))
    sparc = comparison.SparcPrompts(simple=prompts, compound=prompts[:12], texts=[f"p{i}" for i in range(12)],
                                    class_compound=[[c % 12] for c in range(20)], source="test")
    est = CoMC(classifier=TrainConfig(epochs=2, batch_size=64, warmup_epochs=1))
    a, b = (comparison.compare_on_embeddings(corpus, text_emb, prompts, zs, f, labels, est, sparc=sparc,
                                             evaluation=comparison.Evaluation(n_boot=0)) for f in (held, on_disk))
    assert list(a.scores) == list(b.scores) and Row.COMC_SPARC_FUSION in b.scores
    for row in a.scores:
        np.testing.assert_array_equal(a.scores[row], b.scores[row])
    assert on_disk._read == {}   # nothing read from disk is still held once the comparison returns


def test_a_test_set_too_small_for_sparcs_pca_is_refused_before_training(synthetic):
    from lcmc_core.errors import ConfigError
    prompts = synthetic[2]
    sparc = comparison.SparcPrompts(simple=prompts, compound=prompts[:5], class_compound=[[0, 1, 2, 3]] + [[4]] * 19,
                                    texts=[f"p{i}" for i in range(5)], source="test")
    comparison.check_sparc_fits(sparc, 6, "voc2007")                 # N = 6 > k + 1 = 5: SPARC's PCA can run
    with pytest.raises(ConfigError, match=r"class 'aeroplane' is named by 4 compound prompts, the test set has 5 images"):
        comparison.check_sparc_fits(sparc, 5, "voc2007")


def test_the_released_checkpoint_row_is_the_official_inference_and_needs_coco_with_rn50():
    corpus, text_emb, prompts, zs, feats, labels = _synthetic(n_texts=200, n_images=20, d=1024, label_set="coco2014")
    est = CoMC(classifier=TrainConfig(epochs=1, batch_size=64, warmup_epochs=0))
    settings = comparison.ComparisonSettings(released_checkpoint=True)
    r = comparison.compare_on_embeddings(corpus, text_emb, prompts, zs, feats, labels, est, settings=settings,
                                         evaluation=comparison.Evaluation(n_boot=0))
    released = CoMC.from_official_checkpoint()
    np.testing.assert_allclose(r.scores[Row.COMC_RELEASED], released.decision_function(feats.global_, feats.local),
                               atol=1e-6)
    assert Row.COMC_RELEASED in r.table.index
    small = _synthetic(n_texts=60, n_images=10)
    with pytest.raises(ValueError, match="released classifier scores the 80 COCO 2014 classes"):
        comparison.compare_on_embeddings(*small, est, settings=settings)
