"""TaI-DPT: prompts against open_clip's own text path, token features, the aggregation by hand, training, caching."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcmc_core.errors import ConfigError
from lcmc_core.images.features import FeatureFile
from lcmc_core.images.models import load_clip
from lcmc_core.method import taidpt as T
from lcmc_core.method.comc import CoMC
from lcmc_core.method.mapping import cross_modal_map

NAMES = ["dog", "cat", "horse", "car", "boat", "bird", "chair", "bottle"]
TEMPLATES = ["a {} near a {}.", "there is a {} and a {} here.", "{} with {} in the park.", "photo of {} , {}."]


@pytest.fixture(scope="module")
def toy():
    """A random-init toy CLIP (text context 32, width 128, 2 layers): seconds to build."""
    torch.manual_seed(0)
    return load_clip("lcmc-toy-rn", pretrained=None)


def _corpus(n, seed):
    """Sentences naming one or two of NAMES, with their targets."""
    rng = np.random.default_rng(seed)
    texts, y = [], np.zeros((n, len(NAMES)), dtype=np.int8)
    for i in range(n):
        ids = rng.choice(len(NAMES), size=int(rng.integers(1, 3)), replace=False)
        words = [NAMES[j] for j in ids] + ["thing"] * (2 - len(ids))
        texts.append(TEMPLATES[rng.integers(len(TEMPLATES))].format(*words))
        y[i, ids] = 1
    return texts, y


def _manual_tokens(model, tokens):
    """ln_final + projection of every position of open_clip's transformer output (full context)."""
    with torch.no_grad():
        x = model.token_embedding(tokens) + model.positional_embedding
        x = model.transformer(x, attn_mask=model.attn_mask)
        return model.ln_final(x) @ model.text_projection


# -- prompts ----------------------------------------------------------------------------------
@pytest.mark.parametrize("class_specific", [False, True])
def test_prompts_initialised_from_a_photo_of_a_give_encode_text_exactly(toy, class_specific):
    names = ["dog", "dining table", "tv monitor"]
    learner = T.PromptLearner(toy, names, T.TaIDPTConfig(ctx_init="a photo of a", class_specific=class_specific))
    assert learner.n_ctx == 4 and learner.prompt_texts[1] == "a photo of a dining table."
    with torch.no_grad():
        g, loc = learner.class_embeddings(toy.model, normalize=False)
        ref = toy.model.encode_text(toy.tokenizer([f"a photo of a {n}." for n in names]))
    assert torch.allclose(g, ref, atol=1e-5) and torch.allclose(loc, ref, atol=1e-5)
    prompts_g, prompts_l = learner()
    assert prompts_g.shape == (3, int(learner.pool_index.max()) + 1, 128)  # cut to the longest prompt


def test_random_context_sits_between_sos_and_the_class_tokens(toy):
    learner = T.PromptLearner(toy, ["dog", "cat"], T.TaIDPTConfig(n_ctx=5), generator=torch.Generator().manual_seed(0))
    assert learner.ctx_global.shape == learner.ctx_local.shape == (5, 128)
    assert not torch.equal(learner.ctx_global, learner.ctx_local)
    assert 0.015 < float(learner.ctx_global.detach().std()) < 0.025  # N(0, 0.02)
    g, loc = learner()
    tokens = toy.tokenizer(["X X X X X dog.", "X X X X X cat."])
    with torch.no_grad():
        emb = toy.model.token_embedding(tokens)[:, :g.shape[1]]
    for prompts, ctx in ((g, learner.ctx_global), (loc, learner.ctx_local)):
        assert torch.equal(prompts[:, 0], emb[:, 0])                 # [SOS]
        assert torch.equal(prompts[:, 1:6], ctx.expand(2, -1, -1))   # shared context
        assert torch.equal(prompts[:, 6:], emb[:, 6:])               # class name, ".", [EOS]
    assert learner.pool_index.tolist() == [8, 8]
    assert set(learner.state_dict()) == {"ctx_global", "ctx_local"}


def test_a_prompt_longer_than_the_context_is_refused(toy):
    with pytest.raises(ValueError, match="context length"):
        T.PromptLearner(toy, ["dog"], T.TaIDPTConfig(n_ctx=40))
    with pytest.raises(ValueError, match="context length"):
        T.PromptLearner(toy, ["dog"], T.TaIDPTConfig(n_ctx=6, max_tokens=8))


# -- sentence features ------------------------------------------------------------------------
def test_token_features_match_open_clip_and_the_mask_covers_exactly_the_real_tokens(toy):
    texts = ["a dog on a sofa.", "two cats", "a horse and a car in the rain near a boat."]
    feats = T.text_token_features(toy, texts, batch_size=2)
    tokens = toy.tokenizer(texts)
    eot = tokens.argmax(dim=-1)
    width = int(eot.max()) + 1
    assert feats.global_.shape == (3, 128) and feats.local.shape == (3, width, 128)
    assert feats.local.dtype == torch.float16 and feats.global_.dtype == torch.float32
    with torch.no_grad():
        ref = F.normalize(toy.model.encode_text(tokens), dim=-1)
    assert torch.allclose(feats.global_, ref, atol=1e-5)
    manual = F.normalize(_manual_tokens(toy.model, tokens), dim=-1)[:, :width]
    assert torch.equal(feats.mask, tokens[:, :width] != 0)  # [SOS] .. [EOS]; no "!" (token id 0) here
    assert torch.allclose(feats.local.float()[feats.mask], manual[feats.mask], atol=2e-3)
    assert not feats.local[~feats.mask].any()
    # the end-of-text feature is the token feature at the end-of-text position
    assert torch.allclose(feats.local.float()[torch.arange(3), eot], feats.global_, atol=2e-3)


def test_max_tokens_truncates_like_open_clip_tokenizer(toy):
    texts = ["a horse and a car in the rain near a boat.", "a dog."]
    feats = T.text_token_features(toy, texts, max_tokens=6)
    short = toy.tokenizer(texts, context_length=6)
    padded = torch.zeros(2, 32, dtype=torch.long)
    padded[:, :6] = short
    with torch.no_grad():
        ref = F.normalize(toy.model.encode_text(padded), dim=-1)
    assert feats.local.shape[1] == 6 and feats.mask.sum(dim=1).tolist() == [6, 5]
    assert torch.allclose(feats.global_, ref, atol=1e-5)


# -- the aggregation --------------------------------------------------------------------------
def test_local_text_logits_by_hand_with_a_masked_token():
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    w = torch.stack([e1, F.normalize(e1 + e2, dim=0)])            # class 0 = e1, class 1 = 45 degrees
    tokens = torch.stack([e1, e2, w[1]])[None]                      # the third token is padding
    mask = torch.tensor([[True, True, False]])
    out = T.local_text_logits(tokens, mask, w, logit_scale=4.0, temperature=math.log(3))
    # class 0: cos (1, 0) -> softmax(ln3 * cos) = (3/4, 1/4) -> 4 * 3/4 = 3
    # class 1: cos (0.7071, 0.7071) -> weights (1/2, 1/2) -> 4 * 0.7071 = 2.828427
    assert torch.allclose(out, torch.tensor([[3.0, 2.828427]]), atol=1e-5)


def test_image_scores_by_hand_two_positions_two_classes():
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    cfg = T.TaIDPTConfig(local_test_temperature=math.log(3))       # logit scale 4, local weight 0.5
    est = T.TaIDPT.from_weights(torch.stack([e2, e1]), torch.stack([e1, e1 + e2]), cfg)  # local row 2 normalised here
    out = est.scores(e1[None], torch.stack([e1, e2])[None])
    assert torch.allclose(out["global"], torch.tensor([[0.0, 4.0]]), atol=1e-6)
    assert torch.allclose(out["local"], torch.tensor([[3.0, 2.828427]]), atol=1e-5)
    assert torch.allclose(out["merged"], torch.tensor([[1.5, 3.414214]]), atol=1e-5)
    assert torch.equal(est.scores(e1[None])["merged"], out["global"])  # no local branch: merged = global


def test_image_scores_stream_feature_files_and_map_with_comc_memory(tmp_path):
    g = torch.Generator().manual_seed(0)
    glob = F.normalize(torch.randn(7, 16, generator=g), dim=-1)
    loc = F.normalize(torch.randn(7, 5, 16, generator=g), dim=-1)
    est = T.TaIDPT.from_weights(torch.randn(3, 16, generator=g), torch.randn(3, 16, generator=g))
    np.save(tmp_path / "local.npy", loc.numpy())
    ref = est.scores(glob, loc)
    streamed = est.scores(glob, FeatureFile(tmp_path / "local.npy"), image_chunk=2)
    for key in ("global", "local", "merged"):
        assert torch.allclose(streamed[key], ref[key], atol=1e-5)
    # official local branch: 4 * sum_p cos_p softmax_p(40 cos_p)
    cos = loc @ est.local_weights_.T
    assert torch.allclose(ref["local"], 4 * (torch.softmax(40 * cos, dim=1) * cos).sum(dim=1), atol=1e-5)
    memory = F.normalize(torch.randn(4, 16, generator=g), dim=-1)
    comc = CoMC.from_classifier(torch.randn(3, 16, generator=g), memory, alpha=0.6, temperature=0.02)
    mapped = est.scores(glob, loc, mapping=comc)
    manual = est.scores(cross_modal_map(glob, memory, 0.02, 0.6), cross_modal_map(loc, memory, 0.02, 0.6))
    for key in ("global", "local", "merged"):
        assert torch.allclose(mapped[key], manual[key], atol=1e-5)
    only_global = est.scores(glob, loc, mapping=comc.with_params(map_local=False))  # every knob reaches the row
    assert torch.allclose(only_global["local"], ref["local"]) and torch.allclose(only_global["global"], manual["global"])


# -- training ---------------------------------------------------------------------------------
def _small(**kw):
    return T.TaIDPTConfig(**{"n_ctx": 4, "epochs": 3, "batch_size": 64, "lr": 0.1, "warmup_epochs": 1, **kw})


def test_training_is_deterministic_from_the_seed_and_leaves_the_encoder_untouched(toy):
    texts, y = _corpus(200, 0)
    feats = T.text_token_features(toy, texts)
    before = {k: v.clone() for k, v in toy.model.state_dict().items()}
    flags = [p.requires_grad for p in toy.model.parameters()]
    a = T.TaIDPT(_small(), seed=0).fit(toy, feats, y, NAMES)
    b = T.TaIDPT(_small(), seed=0).fit(toy, texts, y, NAMES)
    c = T.TaIDPT(_small(), seed=1).fit(toy, feats, y, NAMES)
    assert torch.equal(a.global_weights_, b.global_weights_) and torch.equal(a.local_weights_, b.local_weights_)
    assert torch.equal(a.prompt_learner_.ctx_global, b.prompt_learner_.ctx_global)
    assert not torch.allclose(a.global_weights_, c.global_weights_)
    assert all(torch.equal(v, toy.model.state_dict()[k]) for k, v in before.items())
    assert [p.requires_grad for p in toy.model.parameters()] == flags
    assert a.global_weights_.shape == a.local_weights_.shape == (len(NAMES), 128)
    assert torch.allclose(a.global_weights_.norm(dim=1), torch.ones(len(NAMES)), atol=1e-5)
    # Dassl's schedule: constant warm-up, then cosine with T_max = epochs counted after it
    assert [r["lr"] for r in a.history_] == pytest.approx([1e-5, 0.1, 0.05 * (1 + math.cos(math.pi / 3))])
    assert len(a.history_) == 3 and all(r["train_loss"] > 0 for r in a.history_)


def test_a_tiny_run_learns_far_above_chance(toy):
    texts, y = _corpus(600, 0)
    val_texts, val_y = _corpus(200, 1)
    est = T.TaIDPT(_small(epochs=8, warmup_epochs=0), seed=0).fit(toy, texts, y, NAMES, val=(val_texts, val_y))
    chance = 100 * val_y.mean()
    last = est.history_[-1]
    assert last["val_map"] > chance + 30 and last["val_map_global"] > chance + 30
    assert last["train_loss"] < est.history_[0]["train_loss"]
    text_scores = est.text_scores(T.text_token_features(toy, val_texts))
    from lcmc_core.method.metrics import mean_average_precision
    assert mean_average_precision(text_scores["merged"].numpy(), val_y) == pytest.approx(last["val_map"])


def test_fit_checks_targets_and_scores_need_a_fit(toy):
    texts, y = _corpus(20, 0)
    with pytest.raises(ValueError, match="targets"):
        T.TaIDPT(_small()).fit(toy, texts, y[:, :3], NAMES)
    with pytest.raises(ValueError, match="targets"):
        T.TaIDPT(_small()).fit(toy, texts, y * 2, NAMES)
    with pytest.raises(RuntimeError, match="fit"):
        T.TaIDPT().scores(torch.randn(2, 128))
    with pytest.raises(ValueError, match="seed"):
        T.TaIDPT(seed=-1)


def test_cached_training_is_reused(toy, tmp_path, monkeypatch):
    texts, y = _corpus(100, 0)
    first = T.fit_taidpt_cached(toy, texts, y, NAMES, _small(epochs=2), seed=3, cache=tmp_path)
    files = list((tmp_path / "taidpt").glob("*.pt"))
    assert len(files) == 1 and files[0].stem == T.taidpt_cache_key(toy, texts, y, NAMES, _small(epochs=2), 3)
    monkeypatch.setattr(T.TaIDPT, "fit", lambda *a, **k: pytest.fail("trained again"))
    again = T.fit_taidpt_cached(toy, texts, y, NAMES, _small(epochs=2), seed=3, cache=tmp_path)
    assert torch.equal(again.global_weights_, first.global_weights_)
    assert torch.equal(again.prompt_learner_.ctx_local, first.prompt_learner_.ctx_local)
    assert again.history_ == first.history_ and again.seed == 3 and again.config == _small(epochs=2)
    with torch.no_grad():  # the restored prompts give the stored class embeddings
        g, _ = again.prompt_learner_.class_embeddings(toy.model)
    assert torch.allclose(g, first.global_weights_, atol=1e-5)
    assert T.taidpt_cache_key(toy, texts, y, NAMES, _small(epochs=2), 4) != files[0].stem


# -- configuration ----------------------------------------------------------------------------
def test_defaults_are_the_official_configuration():
    cfg = T.TaIDPTConfig()
    assert (cfg.n_ctx, cfg.ctx_std, cfg.class_specific, cfg.epochs, cfg.batch_size, cfg.lr) == (16, 0.02, False, 20, 512, 1e-4)
    assert (cfg.momentum, cfg.weight_decay, cfg.warmup_epochs, cfg.warmup_lr) == (0.9, 5e-4, 1, 1e-5)
    assert (cfg.logit_scale, cfg.local_train_temperature, cfg.local_test_temperature) == (4.0, 50.0, 40.0)
    assert (cfg.margin, cfg.local_weight) == (1.0, 0.5)
    nus = T.TaIDPTConfig.official("nuswide")
    assert (nus.lr, nus.local_test_temperature) == (1e-3, 4.0)
    assert T.TaIDPTConfig.from_dict(nus.to_dict()) == nus


@pytest.mark.parametrize("field,value", [
    ("n_ctx", 0), ("ctx_std", 0.0), ("epochs", 0), ("batch_size", 1.5), ("lr", -1.0), ("momentum", 1.0),
    ("weight_decay", -1e-4), ("warmup_epochs", 20), ("warmup_lr", 0), ("logit_scale", float("nan")),
    ("local_train_temperature", 0), ("local_test_temperature", -4.0), ("margin", -1.0), ("local_weight", 1.5),
    ("max_tokens", 2), ("ctx_init", " "), ("class_specific", 1), ("drop_last", "yes")])
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"^TaIDPTConfig\.{field}: expected"):
        T.TaIDPTConfig(**{field: value})


def test_config_from_dict_and_presets_refuse_unknown_names():
    with pytest.raises(ConfigError, match="unknown keys"):
        T.TaIDPTConfig.from_dict({"n_ctx": 4, "bogus": 1})
    with pytest.raises(ConfigError, match="dataset"):
        T.TaIDPTConfig.official("imagenet")


# -- real architectures -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["RN50-quickgelu", "ViT-B-32"])
def test_prompts_and_features_on_real_architectures(name):
    torch.manual_seed(0)
    loaded = load_clip(name, pretrained=None)
    names = ["aeroplane", "potted plant"]
    learner = T.PromptLearner(loaded, names, T.TaIDPTConfig(ctx_init="a photo of a"))
    with torch.no_grad():
        g, loc = learner.class_embeddings(loaded.model)
        ref = F.normalize(loaded.model.encode_text(loaded.tokenizer([f"a photo of a {n}." for n in names])), dim=-1)
    assert torch.allclose(g, ref, atol=1e-5) and torch.allclose(loc, ref, atol=1e-5)
    texts = ["a cat sleeping on a sofa next to a dog.", "a plane."]
    feats = T.text_token_features(loaded, texts)
    with torch.no_grad():
        ref = F.normalize(loaded.model.encode_text(loaded.tokenizer(texts)), dim=-1)
    assert torch.allclose(feats.global_, ref, atol=1e-5)
    learner = T.PromptLearner(loaded, names)  # the official 16-token context fits the 77-token context
    assert learner.ctx_global.shape == (16, loaded.model.token_embedding.weight.shape[1])
