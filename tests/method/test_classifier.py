"""Tests for lcmc_core.method.classifier: losses by hand, schedule, config checks, training, save/load."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcmc_core.method.classifier import (
    TextClassifier,
    TrainConfig,
    asymmetric_loss,
    bce_loss,
    compute_loss,
    focal_loss,
    lr_at_epoch,
    ranking_loss,
    soft_cross_entropy,
    split_validation,
    train_text_classifier,
)


def _toy_corpus(n=600, c=5, d=24, seed=0, noise=0.05):
    g = torch.Generator().manual_seed(seed)
    protos = F.normalize(torch.randn(c, d, generator=g), dim=1)
    y = (torch.rand(n, c, generator=g) < 0.3).float()
    y[y.sum(1) == 0, 0] = 1
    x = y @ protos + noise * torch.randn(n, d, generator=g)
    return x, y


# ---------------------------------------------------------------- losses
def test_ranking_loss_by_hand():
    # sample 1: positives 2.0 and 0.5, negative 1.0 -> max(0, 1-2+1) + max(0, 1-0.5+1) = 0 + 1.5
    logits = torch.tensor([[2.0, 0.5, 1.0]])
    targets = torch.tensor([[1, 1, 0]])
    assert ranking_loss(logits, targets).item() == pytest.approx(1.5)
    # sample 2: one positive, two negatives, all logits 0 -> 2 pairs of 1; mean over samples
    logits2 = torch.tensor([[2.0, 0.5, 1.0], [0.0, 0.0, 0.0]])
    targets2 = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert ranking_loss(logits2, targets2).item() == pytest.approx((1.5 + 2.0) / 2)
    # a sample without negatives contributes 0 but counts in the mean
    targets3 = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert ranking_loss(logits2, targets3).item() == pytest.approx(1.5 / 2)
    assert ranking_loss(logits, targets, margin=0.0).item() == pytest.approx(0.5)


def test_scale_two_ranking_loss_by_hand():
    # official `ranking`: max(0, 1 - 2 (s_p - s_n)); pairs (2.0, 1.0) -> 0, (0.5, 1.0) -> 1 + 1 = 2
    logits, targets = torch.tensor([[2.0, 0.5, 1.0]]), torch.tensor([[1, 1, 0]])
    assert ranking_loss(logits, targets, scale=2.0).item() == pytest.approx(2.0)
    assert compute_loss(logits, targets, TrainConfig(loss="ranking")).item() == pytest.approx(2.0)
    assert compute_loss(logits, targets, TrainConfig(loss="double_ranking")).item() == pytest.approx(1.5)


def test_asymmetric_loss_by_hand():
    logits = torch.tensor([[0.0, 2.0]], dtype=torch.float64)
    targets = torch.tensor([[1, 0]])
    # positive: p = 0.5, gamma_pos = 1 -> -(1 - 0.5)^1 log 0.5
    pos = -math.log(0.5) * 0.5
    # negative: p = sigmoid(2); shifted "absent" prob q = 1 - p + 0.05; weight (1 - q)^2
    q = 1 - 1 / (1 + math.exp(-2)) + 0.05
    neg = -math.log(q) * (1 - q) ** 2
    # official reduction: mean over the N x C = 2 entries
    assert asymmetric_loss(logits, targets).item() == pytest.approx((pos + neg) / 2)


def test_asymmetric_loss_focusing_weights_carry_no_gradient():
    logits = torch.tensor([[0.3]], dtype=torch.float64, requires_grad=True)
    asymmetric_loss(logits, torch.tensor([[1]]), gamma_pos=1.0, clip=0).backward()
    p = 1 / (1 + math.exp(-0.3))
    # d/ds [-(1 - p) log p] with (1 - p) held fixed = -(1 - p) * (1 - p)
    assert logits.grad.item() == pytest.approx(-(1 - p) ** 2)


def test_asymmetric_loss_without_focusing_is_bce():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 6, generator=g, dtype=torch.float64)
    targets = (torch.rand(4, 6, generator=g) < 0.5).long()
    plain = asymmetric_loss(logits, targets, gamma_neg=0, gamma_pos=0, clip=0)
    assert plain.item() == pytest.approx(bce_loss(logits, targets).item())
    ref = F.binary_cross_entropy_with_logits(logits, targets.double(), reduction="sum") / 24
    assert bce_loss(logits, targets).item() == pytest.approx(ref.item())


def test_focal_and_soft_cross_entropy_by_hand():
    logits = torch.tensor([[0.0, 2.0]], dtype=torch.float64)
    targets = torch.tensor([[1, 0]])
    p2 = 1 / (1 + math.exp(-2))
    # positive p_t = 0.5: -(0.5)^2 log 0.5; negative p_t = 1 - p2: -(p2)^2 log(1 - p2); mean over 2
    focal = (-(0.5 ** 2) * math.log(0.5) - p2 ** 2 * math.log(1 - p2)) / 2
    assert focal_loss(logits, targets).item() == pytest.approx(focal)
    assert compute_loss(logits, targets, TrainConfig(loss="focal")).item() == pytest.approx(focal)
    # soft CE: -log softmax([0, 2])_0 = log(1 + e^2)
    assert soft_cross_entropy(logits, targets).item() == pytest.approx(math.log(1 + math.exp(2)))
    two = torch.tensor([[1, 1]])
    assert soft_cross_entropy(logits, two).item() == pytest.approx(2 * math.log(1 + math.exp(2)) - 2)


def test_compute_loss_dispatch_and_shape_check():
    logits, targets = torch.tensor([[2.0, 0.5, 1.0]]), torch.tensor([[1, 1, 0]])
    assert compute_loss(logits, targets, TrainConfig()).item() == pytest.approx(1.5)
    assert compute_loss(logits, targets, TrainConfig(loss="bce")).item() == pytest.approx(bce_loss(logits, targets).item())
    with pytest.raises(ValueError, match="targets: expected shape"):
        ranking_loss(logits, targets[:, :2])


# ---------------------------------------------------------------- config and schedule
def test_default_config_is_official_recipe():
    cfg = TrainConfig()
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay) == (20, 512, 1e-3, 5e-4)
    assert (cfg.warmup_epochs, cfg.warmup_lr, cfg.noise_std, cfg.loss, cfg.margin) == (1, 1e-5, 0.1,
                                                                                         "double_ranking", 1.0)
    assert (cfg.asl_gamma_neg, cfg.asl_gamma_pos, cfg.asl_clip, cfg.focal_gamma) == (2.0, 1.0, 0.05, 2.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(epochs=0), "epochs"), (dict(epochs=2.5), "epochs"), (dict(batch_size=0), "batch_size"),
    (dict(lr=0.0), "lr"), (dict(lr=float("nan")), "lr"), (dict(weight_decay=-1e-4), "weight_decay"),
    (dict(noise_std=-0.1), "noise_std"), (dict(loss="hinge"), "loss: expected one of"),
    (dict(warmup_epochs=20), "warmup_epochs"), (dict(warmup_lr=0.0), "warmup_lr"),
    (dict(warmup_type="exp"), "warmup_type"), (dict(asl_clip=1.0), "asl_clip"),
    (dict(margin=-1.0), "margin"), (dict(drop_last=1), "drop_last"),
])
def test_bad_config_values_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=f"TrainConfig.{match}"):
        TrainConfig(**kwargs)


def test_schedule_warmup_then_cosine():
    cfg = TrainConfig()
    lrs = [lr_at_epoch(e, cfg) for e in range(cfg.epochs)]
    assert lrs[0] == pytest.approx(1e-5)                  # warm-up epoch
    assert lrs[1] == pytest.approx(1e-3)                  # cosine starts at the base lr
    assert lrs[2] == pytest.approx(0.5e-3 * (1 + math.cos(math.pi / 20)))
    assert lrs[19] == pytest.approx(0.5e-3 * (1 + math.cos(math.pi * 18 / 20)))
    assert all(a > b for a, b in zip(lrs[1:], lrs[2:]))  # decreasing after warm-up
    linear = TrainConfig(warmup_epochs=4, warmup_type="linear")
    assert [lr_at_epoch(e, linear) for e in range(5)] == pytest.approx([1e-5, 2.5e-4, 5e-4, 7.5e-4, 1e-3])
    with pytest.raises(ValueError, match="epoch: expected an integer in \\[0, 20\\)"):
        lr_at_epoch(20, cfg)


def test_schedule_matches_torch_cosine_after_warmup():
    # Dassl chains CosineAnnealingLR(T_max=epochs) after the warm-up; check the closed form against torch
    cfg = TrainConfig()
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    for e in range(cfg.warmup_epochs, cfg.epochs):
        assert lr_at_epoch(e, cfg) == pytest.approx(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()


def test_history_records_schedule():
    x, y = _toy_corpus(n=100)
    _, hist = train_text_classifier(x, y, TrainConfig(epochs=3, batch_size=32))
    assert [h["epoch"] for h in hist] == [0, 1, 2]
    assert [h["lr"] for h in hist] == pytest.approx([1e-5, 1e-3, 0.5e-3 * (1 + math.cos(math.pi / 3))])
    assert all(np.isfinite(h["train_loss"]) and "val_map" not in h for h in hist)


# ---------------------------------------------------------------- training
def test_learns_separable_problem():
    x, y = _toy_corpus()
    tr, va = split_validation(len(x), 0.2, seed=0)
    cfg = TrainConfig(epochs=6, batch_size=64, lr=1e-2)
    model, hist = train_text_classifier(x[tr], y[tr], cfg, val=(x[va], y[va]), seed=0)
    assert hist[-1]["val_map"] > 95.0
    assert hist[-1]["val_map"] > hist[0]["val_map"]
    assert model.weight.shape == (5, 24)
    for loss in ("ranking", "asl", "bce", "focal", "soft_ce"):
        _, h = train_text_classifier(x[tr], y[tr], TrainConfig(epochs=6, batch_size=64, lr=1e-2, loss=loss),
                                     val=(x[va], y[va]))
        assert h[-1]["val_map"] > 90.0


def test_same_seed_same_weights_and_noise_matters():
    x, y = _toy_corpus(n=300)
    cfg = TrainConfig(epochs=3, batch_size=64)
    a, ha = train_text_classifier(x, y, cfg, seed=7)
    b, hb = train_text_classifier(x, y, cfg, seed=7)
    assert torch.equal(a.weight, b.weight) and ha == hb
    c, _ = train_text_classifier(x, y, cfg, seed=8)
    assert not torch.equal(a.weight, c.weight)
    quiet, _ = train_text_classifier(x, y, TrainConfig(epochs=3, batch_size=64, noise_std=0.0), seed=7)
    assert not torch.allclose(a.weight, quiet.weight)
    # global RNG state is not used: training does not disturb it
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    train_text_classifier(x, y, cfg, seed=7)
    assert torch.equal(torch.rand(1), expected)


def test_training_input_checks():
    x, y = _toy_corpus(n=50)
    with pytest.raises(ValueError, match="targets: expected only values \\(0, 1\\)"):
        train_text_classifier(x, y - 1, TrainConfig(epochs=1, warmup_epochs=0))
    with pytest.raises(ValueError, match="targets: expected an \\(50, C\\) matrix"):
        train_text_classifier(x, y[:10], TrainConfig(epochs=1, warmup_epochs=0))
    with pytest.raises(TypeError, match="text_emb: expected floating-point"):
        train_text_classifier(x.long(), y, TrainConfig(epochs=1, warmup_epochs=0))
    with pytest.raises(ValueError, match="val\\[0\\]: expected dimension 24"):
        train_text_classifier(x, y, TrainConfig(epochs=1, warmup_epochs=0), val=(x[:, :5], y))
    with pytest.raises(TypeError, match="config: expected a TrainConfig"):
        train_text_classifier(x, y, {"epochs": 1})


def test_split_validation():
    tr, va = split_validation(100, 0.2, seed=3)
    assert len(va) == 20 and len(tr) == 80
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(100))
    np.testing.assert_array_equal(split_validation(100, 0.2, seed=3)[1], va)
    with pytest.raises(ValueError, match="fraction"):
        split_validation(100, 1.0)
    with pytest.raises(ValueError, match="empty train or validation"):
        split_validation(3, 0.01)


def test_save_load_roundtrip(tmp_path):
    x, y = _toy_corpus(n=80)
    cfg = TrainConfig(epochs=2, batch_size=32, loss="asl")
    model, _ = train_text_classifier(x, y, cfg, classnames=list("abcde"))
    path = model.save(tmp_path / "sub" / "clf.pt")
    loaded = TextClassifier.load(path)
    assert torch.equal(loaded.weight, model.weight)
    assert loaded.config == cfg and loaded.classnames == list("abcde")
    torch.testing.assert_close(loaded(x), model(x))
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a saved TextClassifier"):
        TextClassifier.load(tmp_path / "other.pt")


def test_text_classifier_forward_checks():
    model = TextClassifier(4, 3)
    assert model(torch.zeros(2, 7, 4)).shape == (2, 7, 3)
    with pytest.raises(ValueError, match="x: expected last dimension 4"):
        model(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="classnames: expected 3 names"):
        TextClassifier(4, 3, classnames=["a"])
