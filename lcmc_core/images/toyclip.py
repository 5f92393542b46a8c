"""Pretrain the toy CLIP of the embedded default world, cache it, and measure it.

A tiny open_clip CLIP (config ``lcmc-toy-rn``: a ModifiedResNet image tower, so the RN50
attention-pool and local-feature code paths apply unchanged, and a small text transformer) is
trained with open_clip's ``ClipLoss`` on EmojiVOC image/alt-text pairs (:mod:`lcmc_core.images.toyworld`).
The initial logit scale (inverse temperature), whether it is learned, and how completely captions
name the objects set the size of the modality gap; :data:`VARIANTS` holds the variants the toy
profile builds. A trained model is a checkpoint file keyed by its spec, seed and the toy world's
data version, loaded afterwards like any real model through :func:`lcmc_core.images.models.load_clip`.
Training saves its state after every epoch and resumes from there after an interruption.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch

from ..cache import atomic_write, cache_dir, entry_lock, load_torch, save_torch_atomic
from . import toyworld
from .models import MODEL_CONFIG_DIR, LoadedCLIP, load_clip

__all__ = ["ToyCLIPSpec", "VARIANTS", "SIZES", "toy_clip_specs", "checkpoint_path",
           "pretrain", "load_toy_clip", "images_to_tensor",
           "evaluate_toy_clip", "retrieval_recall", "training_log", "build_variants"]

# Bump when the training procedure changes in a way that changes the weights.
TRAINING_CODE_VERSION = "1"
# Torch threads while a toy CLIP trains. The reduction order of the gradients (and so the weights)
# depends on the thread count: smoke size, 1 vs 2 threads, 22% of the weights differ (by up to 0.02);
# at a fixed count repeated trainings are bit-identical (torch.use_deterministic_algorithms changes
# nothing on CPU). Pinned to the project machines' 2 cores, where the committed results were made,
# so that the weights do not depend on the machine's core count. (Encoding is thread-independent.)
TRAIN_THREADS = 2


@dataclass(frozen=True)
class ToyCLIPSpec:
    """Everything that determines a trained toy CLIP (and so its cache key)."""

    variant: str = "clip-like-gap"
    model: str = "lcmc-toy-rn"
    init_logit_scale: float = 100.0  # initial exp(logit_scale) = 1 / temperature
    learn_logit_scale: bool = True
    caption_completeness: float = 0.6  # probability that a caption names each present class
    n_pretrain: int = 12000  # distinct pretraining images; each epoch draws fresh captions
    epochs: int = 8
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.1
    warmup_fraction: float = 0.1
    seed: int = 0
    image_size: int = 64

    def __post_init__(self):
        checks = [
            ("init_logit_scale", self.init_logit_scale > 0, "> 0"),
            ("caption_completeness", 0.0 <= self.caption_completeness <= 1.0, "in [0, 1]"),
            ("n_pretrain", self.n_pretrain >= self.batch_size, f">= batch_size ({self.batch_size})"),
            ("epochs", self.epochs >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 2, ">= 2"),
            ("lr", self.lr > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("warmup_fraction", 0.0 <= self.warmup_fraction < 1.0, "in [0, 1)"),
            ("image_size", self.image_size >= 32, ">= 32"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"ToyCLIPSpec.{name}={getattr(self, name)!r}: expected {expected}")

    def key(self) -> str:
        """Hash of the spec, the model config, the toy world's data version and the training code."""
        config = (MODEL_CONFIG_DIR / f"{self.model}.json").read_text()
        payload = json.dumps({"spec": dataclasses.asdict(self), "model_config": json.loads(config),
                              "data_version": toyworld.TOYWORLD_VERSION,
                              "training_code": TRAINING_CODE_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


# The variants the toy profile builds. Only the initial temperature differs: starting at the clamp
# (logit scale 100) gives a CLIP-like gap (~0.8); CLIP's own start (1/0.07 = 14.3) a small gap; 40
# lies between. They let the notebooks ask how the mapping's effect depends on the gap.
VARIANTS = {
    "clip-like-gap": dict(init_logit_scale=100.0),
    "mid-gap": dict(init_logit_scale=40.0),
    "small-gap": dict(init_logit_scale=1 / 0.07),
}

# Sizes of the world and of training, per profile. `smoke` is for tests (seconds).
SIZES = {
    "toy": dict(spec=dict(n_pretrain=12000, epochs=8, batch_size=256), n_heldout=1000, n_test=2000),
    "smoke": dict(spec=dict(n_pretrain=384, epochs=2, batch_size=128), n_heldout=128, n_test=128),
    # the toy CLIP seed study (``make study``): the toy world, 12,000 pretraining images for 6 epochs
    # instead of 8 (276 steps instead of 368), so that nine toy CLIPs (three variants x three seeds)
    # and their comparisons fit its 45-minute budget on 2 cores; at 6,000 x 4 (94 steps) two
    # variants barely learned (zero-shot mAP 10.4 and 32.4, chance 8.2)
    "study": dict(spec=dict(n_pretrain=12000, epochs=6, batch_size=256), n_heldout=1000, n_test=2000),
}


def toy_clip_specs(size: str = "toy", variants=None, seed: int = 0) -> list[ToyCLIPSpec]:
    """The specs of the toy CLIP variants for a size (``toy`` or ``smoke``)."""
    if size not in SIZES:
        raise KeyError(f"toy_clip_specs: unknown size {size!r}; expected one of {sorted(SIZES)}")
    names = list(VARIANTS) if variants is None else list(variants)
    for v in names:
        if v not in VARIANTS:
            raise KeyError(f"toy_clip_specs: unknown variant {v!r}; expected one of {sorted(VARIANTS)}")
    return [ToyCLIPSpec(variant=v, seed=seed, **SIZES[size]["spec"], **VARIANTS[v]) for v in names]


def checkpoint_path(spec: ToyCLIPSpec, cache=None) -> Path:
    """Where the checkpoint of ``spec`` lives (its name carries the spec's key)."""
    return cache_dir(cache) / "toyclip" / f"{spec.model}-{spec.variant}-{spec.key()}.pt"


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x 3 images to CLIP-normalised float N x 3 x H x W (what open_clip's preprocess gives)."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images_to_tensor: expected uint8 N x H x W x 3, got {images.dtype} {images.shape}")
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # open_clip's convention: no weight decay on gains, biases, embeddings' scales, logit scale
        (no_decay if p.ndim < 2 or "logit_scale" in name or "bn" in name or "ln" in name
         else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_lambda(total_steps, warmup_steps):
    def f(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return f


def _cached_checkpoint_ok(spec: ToyCLIPSpec, ckpt: Path) -> bool:
    """Whether ``ckpt`` and its training log are complete and belong to ``spec`` (damaged ones are deleted)."""
    meta_path = ckpt.with_suffix(".json")
    if not (ckpt.exists() and meta_path.exists()):
        return False
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        ok = isinstance(meta, dict) and meta.get("key") == spec.key() and "history" in meta
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        ok = False
    state = load_torch(ckpt, "toy CLIP checkpoint") if ok else None
    if ok and isinstance(state, dict) and "state_dict" in state:
        return True
    warnings.warn(f"toy CLIP checkpoint {ckpt} or its log {meta_path.name} is damaged or incomplete; retraining",
                  RuntimeWarning, stacklevel=3)
    for path in (ckpt, meta_path):
        with contextlib.suppress(OSError):  # a read-only cache: retraining will say it cannot write
            path.unlink(missing_ok=True)
    return False


def pretrain(spec: ToyCLIPSpec, cache=None, progress: bool = True, force: bool = False) -> Path:
    """Train the toy CLIP of ``spec`` unless its checkpoint is cached; return the checkpoint path.

    Two processes asking for the same checkpoint take turns (a lock next to it): the second finds
    the first's result. A damaged checkpoint, log or partial state is detected and rebuilt. A
    complete checkpoint is found without the lock, so a read-only cache serves it.
    """
    ckpt = checkpoint_path(spec, cache)
    if not force and ckpt.exists() and _cached_checkpoint_ok(spec, ckpt):
        return ckpt
    with entry_lock(ckpt):
        if not force and _cached_checkpoint_ok(spec, ckpt):
            return ckpt
        return _train(spec, ckpt, cache, progress, force)


def _train(spec: ToyCLIPSpec, ckpt: Path, cache, progress: bool, force: bool) -> Path:
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)  # see TRAIN_THREADS: the weights must not depend on the core count
    try:
        return _train_pinned(spec, ckpt, cache, progress, force)
    finally:
        torch.set_num_threads(threads)


def _train_pinned(spec: ToyCLIPSpec, ckpt: Path, cache, progress: bool, force: bool) -> Path:
    meta_path = ckpt.with_suffix(".json")
    partial = ckpt.with_suffix(".partial.pt")
    t_start = time.perf_counter()

    split = toyworld.render_split("pretrain", spec.n_pretrain, seed=spec.seed,
                                  image_size=spec.image_size, cache=cache)
    t_world = time.perf_counter() - t_start
    images = images_to_tensor(split.images)

    torch.manual_seed(spec.seed)
    loaded = load_clip(spec.model, pretrained=None)
    model, tokenizer = loaded.model, loaded.tokenizer
    with torch.no_grad():
        model.logit_scale.fill_(math.log(spec.init_logit_scale))
    model.logit_scale.requires_grad_(spec.learn_logit_scale)
    model.train()
    opt = torch.optim.AdamW(_param_groups(model, spec.weight_decay), lr=spec.lr, betas=(0.9, 0.98), eps=1e-6)
    steps_per_epoch = spec.n_pretrain // spec.batch_size
    total = steps_per_epoch * spec.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total, max(1, int(spec.warmup_fraction * total))))
    loss_fn = open_clip.ClipLoss()
    history: list[dict] = []
    start_epoch = 0
    state = load_torch(partial, "toy CLIP partial training state", weights_only=False) if not force else None
    if isinstance(state, dict) and state.get("key") == spec.key():
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history, start_epoch = state["history"], state["epoch"]

    max_scale = math.log(100.0)
    from tqdm.auto import tqdm
    bar = tqdm(total=total, initial=start_epoch * steps_per_epoch, disable=not progress,
               desc=f"pretrain toy CLIP {spec.variant}", unit="step")
    t_train = time.perf_counter()
    for epoch in range(start_epoch, spec.epochs):
        captions, _ = toyworld.split_captions(split, seed=spec.seed, epoch=epoch,
                                              completeness=spec.caption_completeness)
        tokens = tokenizer(captions)
        order = torch.randperm(spec.n_pretrain, generator=torch.Generator().manual_seed(spec.seed * 1000 + epoch))
        for b in range(steps_per_epoch):
            idx = order[b * spec.batch_size:(b + 1) * spec.batch_size]
            img_f, txt_f, scale = _forward(model, images[idx], tokens[idx])
            loss = loss_fn(img_f, txt_f, scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, max_scale)
            history.append({"step": epoch * steps_per_epoch + b, "epoch": epoch, "loss": loss.item(),
                            "logit_scale": model.logit_scale.exp().item(), "lr": sched.get_last_lr()[0]})
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", scale=f"{model.logit_scale.exp().item():.1f}")
        save_torch_atomic({"key": spec.key(), "model": model.state_dict(), "optimizer": opt.state_dict(),
                      "scheduler": sched.state_dict(), "history": history, "epoch": epoch + 1}, partial)
    bar.close()
    t_train = time.perf_counter() - t_train
    model.eval()
    save_torch_atomic({"state_dict": model.state_dict()}, ckpt)
    meta = {"spec": dataclasses.asdict(spec), "key": spec.key(), "data_version": toyworld.TOYWORLD_VERSION,
            "open_clip_version": open_clip.__version__, "torch_version": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "seconds_world": round(t_world, 2), "seconds_train": round(t_train, 2),
            "resumed_from_epoch": start_epoch, "history": history}
    atomic_write(meta_path, json.dumps(meta))
    partial.unlink(missing_ok=True)
    return ckpt


def _forward(model, images, tokens):
    out = model(images, tokens)
    if isinstance(out, dict):
        return out["image_features"], out["text_features"], out["logit_scale"]
    return out[0], out[1], out[2]


def training_log(spec: ToyCLIPSpec, cache=None) -> dict:
    """The metadata written next to a trained checkpoint (spec, timings, per-step loss history)."""
    path = checkpoint_path(spec, cache).with_suffix(".json")
    if not path.exists():
        raise FileNotFoundError(f"no training log at {path}; run pretrain(spec) first")
    return json.loads(path.read_text())


def load_toy_clip(spec: ToyCLIPSpec, cache=None, device="cpu", progress: bool = True) -> LoadedCLIP:
    """Pretrain (or reuse) the toy CLIP of ``spec`` and load it through :func:`load_clip`, as a real model."""
    ckpt = pretrain(spec, cache, progress=progress)
    return load_clip(spec.model, pretrained=str(ckpt), device=device)


def retrieval_recall(image_emb: torch.Tensor, text_emb: torch.Tensor, ks=(1, 5)) -> dict:
    """Image-to-text and text-to-image recall@k (percent) for row-aligned pairs."""
    if image_emb.shape != text_emb.shape:
        raise ValueError(f"retrieval_recall: image_emb {tuple(image_emb.shape)} and text_emb "
                         f"{tuple(text_emb.shape)} must be row-aligned pairs of the same shape")
    sim = image_emb @ text_emb.T
    target = torch.arange(len(sim))
    out = {}
    for direction, s in (("i2t", sim), ("t2i", sim.T)):
        # rank of the true partner = number of candidates scoring strictly higher
        true = s[target, target].unsqueeze(1)
        rank = (s > true).sum(1)
        for k in ks:
            out[f"{direction}_recall@{k}"] = float((rank < k).float().mean() * 100)
    return out


def evaluate_toy_clip(loaded: LoadedCLIP, spec: ToyCLIPSpec, n_heldout: int = 1000, n_test: int = 2000,
                      cache=None) -> dict:
    """Retrieval recall on held-out pairs, zero-shot mAP on the test split, and the modality gap.

    Protocols (the same names as everywhere else): retrieval with CLIP's own ``encode_image``
    embedding; zero-shot mAP with the published protocol (``encode_image``, OpenAI's 80 templates,
    :data:`lcmc_core.experiments.comparison.ZERO_SHOT_PROTOCOL`); the gap on the embedding CoMC scores
    (attention pool without positional embedding, :data:`~lcmc_core.experiments.comparison.GAP_PROTOCOL`).
    """
    from ..method.gap import gap_norm
    from ..method.metrics import mean_average_precision
    from ..method.zero_shot import zero_shot_classifier
    from ..text.label_sets import get_label_set
    from ..text.prompts import prompt_texts
    from . import datasets
    from .features import encode_texts, extract_image_features

    def global_embeddings(split, n):  # (no-pos pool as CoMC scores, CLIP's own encode_image), the real feature path
        ds = datasets.load("emoji-voc", split=split, n=n, seed=spec.seed, image_size=spec.image_size,
                           cache=cache)
        emb = extract_image_features(loaded, ds, local=False, global_pool="no-pos", use_cache=False, progress=False)
        return emb.global_, emb.global_clip, ds.labels

    heldout = toyworld.render_split("heldout", n_heldout, seed=spec.seed, image_size=spec.image_size,
                                    cache=cache)
    captions, _ = toyworld.split_captions(heldout, seed=spec.seed, epoch=0,
                                          completeness=spec.caption_completeness)
    img_nopos, img, _ = global_embeddings("heldout", n_heldout)
    txt = encode_texts(loaded, captions)
    _, test_img, test_labels = global_embeddings("test", n_test)
    # zero-shot as the published rows: encode_image pooling, mean of OpenAI's 80 templates per class
    per_class = prompt_texts(get_label_set("emoji-voc").prompt_names, "openai")
    emb = encode_texts(loaded, [t for texts in per_class for t in texts])
    t = len(per_class[0])
    weights = zero_shot_classifier([emb[c * t:(c + 1) * t] for c in range(len(per_class))])
    scores = test_img @ weights.T
    metrics = retrieval_recall(img, txt)
    metrics.update({
        "chance_recall@1": 100.0 / n_heldout, "chance_recall@5": 500.0 / n_heldout,
        "zero_shot_map": float(mean_average_precision(scores.numpy(), test_labels)),
        "chance_map": float(mean_average_precision(np.random.default_rng(0).random(scores.shape), test_labels)),
        "modality_gap": float(gap_norm(img_nopos, txt)),     # the gap protocol: the embedding CoMC scores
        "logit_scale": loaded.model.logit_scale.exp().item(),
        "n_heldout": n_heldout, "n_test": n_test,
    })
    return metrics


def build_variants(size: str, out_dir, seed: int = 0, cache=None, progress: bool = True) -> dict:
    """Build the toy world and every toy CLIP variant, measure them, and write ``toy_clip_metrics.json``."""
    sizes = SIZES[size]
    report = {"size": size, "seed": seed, "variants": {}}
    for spec in toy_clip_specs(size, seed=seed):
        t0 = time.perf_counter()
        loaded = load_toy_clip(spec, cache, progress=progress)
        t_build = time.perf_counter() - t0
        log = training_log(spec, cache)
        t1 = time.perf_counter()
        metrics = evaluate_toy_clip(loaded, spec, sizes["n_heldout"], sizes["n_test"], cache)
        t_eval = time.perf_counter() - t1
        report["variants"][spec.variant] = {
            "spec": log["spec"], "checkpoint_key": log["key"], "metrics": metrics,
            "seconds": {"world_render": log["seconds_world"], "pretrain": log["seconds_train"],
                        "build_or_load_this_run": round(t_build, 2), "evaluate": round(t_eval, 2)}}
        m = metrics
        print(f"[toy CLIP {spec.variant}] built/loaded in {t_build:.1f}s (pretraining took "
              f"{log['seconds_train']:.1f}s when trained), evaluated in {t_eval:.1f}s: "
              f"gap {m['modality_gap']:.3f}, zero-shot mAP {m['zero_shot_map']:.1f} (chance {m['chance_map']:.1f}), "
              f"i2t R@1 {m['i2t_recall@1']:.1f} / R@5 {m['i2t_recall@5']:.1f}, "
              f"t2i R@1 {m['t2i_recall@1']:.1f} / R@5 {m['t2i_recall@5']:.1f} (chance R@1 {m['chance_recall@1']:.2f})",
              flush=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "toy_clip_metrics.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return report
