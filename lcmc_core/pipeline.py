"""The whole CoMC method and its baselines on one dataset and one CLIP, in one call.

:func:`run_comparison` builds (or reads) the text corpus, encodes it with the CLIP text tower,
trains the text-only classifier (and the variants the baselines need), extracts global and local
image features, and scores every method with the same functions, returning a pandas table:

========================================  ===========================================================
row                                       what it is
========================================  ===========================================================
zero-shot (prompt ensemble), global       CLIP zero-shot: class weights = mean of our 81 prompts
zero-shot (prompt ensemble), global+local the same weights on the local embeddings too, merged
text classifier, global                   trained on text only, applied to raw image embeddings
text classifier, global+local             + local branch (max over positions), merged 0.5 / 0.5
text classifier + mean shift (C3)         both modalities centred on their own mean, re-normalised
CoMC without noise injection              full inference, classifier trained with noise std 0
CoMC mapping, global only                 mapping of the global embedding, no local branch
CoMC (full)                               mapping of global and local embeddings, merged
========================================  ===========================================================

Metrics: mAP (TaI-DPT/CoMC convention; ``difficult`` option), a bootstrap 95% interval over
images, and CF1/OF1 at top-3 (ML-GCN definition, threshold on raw scores; stated with every
table). The mean-shift baseline estimates the image mean on the evaluated images themselves
(unlabelled, i.e. transductive), the text mean on the training corpus.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from . import corpus as corpus_mod
from .cache import cache_dir, load_torch, save_torch_atomic
from .classifier import TextClassifier, TrainConfig, train_text_classifier
from .features import ImageFeatures, encode_texts, extract_image_features
from .labels import LabelSet, get_label_set
from .mapping import embedding_mean, mean_shift, score_images
from .metrics import (average_precision_per_class, bootstrap_map_ci, f1_at_top_k,
                      mean_average_precision)
from .models import LoadedCLIP

__all__ = ["MethodConfig", "ComparisonResult", "build_training_corpus", "encode_texts_cached",
           "class_prompt_embeddings", "zero_shot_weights", "text_memory", "evaluate_scores",
           "train_classifier", "run_comparison", "compare_on_embeddings", "METRIC_NOTE"]

# Bump when classifier training changes (invalidates cached classifiers).
CLASSIFIER_CODE_VERSION = "1"

METRIC_NOTE = ("mAP: TaI-DPT/CoMC convention (per class, precision at each positive's rank, averaged); "
               "95% CI: bootstrap over images (1000 resamples); CF1/OF1: ML-GCN definition, a label is "
               "predicted when it is among the image's top 3 scores and its raw score >= 0, i.e. sigmoid >= 0.5 "
               "(per-class precision/recall averaged = C, pooled = O); zero-shot cosine scores are all "
               "positive, so for them this is plain top-3.")


@dataclass(frozen=True)
class MethodConfig:
    """Every choice of the method and its evaluation; defaults follow the official code."""

    corpus_size: int = 20000  # generated sentences (before prompt augmentation)
    corpus_seed: int = 0
    corpus_generator: str = "template"
    corpus_path: str | None = None  # read this JSONL corpus instead of generating one
    k_range: tuple[int, int] = (1, 5)
    prompt_copies: int = 9  # copies of "a photo of a {class}." per class
    prompt_templates: bool = True  # plus one text per prompt template per class
    classifier: TrainConfig = field(default_factory=TrainConfig)
    memory: str = "prompts"  # "prompts": one prompt embedding per class (official); "corpus"
    memory_top_k: int = 0  # > 0: map with the exact top-k memory rows per query (large memories); 0 = all rows
    temperature: float = 0.01
    alpha: float = 0.7
    local_weight: float = 0.5
    global_pool: str = "no-pos"
    difficult: str = "negative"
    f1_threshold: float | None = 0.0  # raw-logit threshold for CF1/OF1 (None: top-3 only)
    n_boot: int = 1000
    seed: int = 0

    def __post_init__(self):
        if self.memory not in ("prompts", "corpus"):
            raise ValueError(f"MethodConfig.memory={self.memory!r}: expected 'prompts' or 'corpus'")
        if not 0.0 <= self.local_weight <= 1.0:
            raise ValueError(f"MethodConfig.local_weight={self.local_weight!r}: expected a number in [0, 1]")
        if self.corpus_size < 0 or self.prompt_copies < 0:
            raise ValueError("MethodConfig.corpus_size and prompt_copies must be >= 0")
        if self.n_boot < 0:
            raise ValueError(f"MethodConfig.n_boot={self.n_boot!r}: expected >= 0")
        if self.memory_top_k < 0:
            raise ValueError(f"MethodConfig.memory_top_k={self.memory_top_k!r}: expected >= 0 (0 = every row)")


@dataclass
class ComparisonResult:
    """The comparison table, every method's scores, per-class AP, and what was trained on the way."""

    table: pd.DataFrame
    scores: dict[str, np.ndarray]
    per_class_ap: pd.DataFrame
    labels: np.ndarray
    classifiers: dict[str, TextClassifier]
    histories: dict[str, list]
    corpus: corpus_mod.Corpus
    image_features: ImageFeatures
    memory: torch.Tensor
    text_emb: torch.Tensor
    config: MethodConfig


def build_training_corpus(label_set: LabelSet | str, config: MethodConfig) -> corpus_mod.Corpus:
    """The classifier's training texts: generated (or read) sentences plus the single-label prompt augmentation."""
    ls = get_label_set(label_set)
    if config.corpus_path:
        base = corpus_mod.read_corpus(config.corpus_path, ls).records()
    else:
        base = corpus_mod.build_corpus(ls, config.corpus_size, config.corpus_seed,
                                       generator=config.corpus_generator, k_range=config.k_range)
    templates = corpus_mod.PROMPT_TEMPLATES if config.prompt_templates else ()
    augmentation = corpus_mod.prompt_augmentation(ls, copies=config.prompt_copies, templates=templates)
    return corpus_mod.corpus_from_records(list(base) + augmentation, ls, origin="training corpus")


def encode_texts_cached(loaded: LoadedCLIP, texts, cache=None, progress: bool = True) -> torch.Tensor:
    """Text embeddings of ``texts``, cached on disk by (model, weights, texts)."""
    texts = list(texts)
    digest = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:16]
    key = hashlib.sha256(json.dumps([loaded.name, loaded.weights_id, digest]).encode()).hexdigest()[:20]
    path = cache_dir(cache) / "text_features" / f"{key}.pt"
    if path.exists():
        emb = torch.load(path, map_location="cpu", weights_only=True)
        if emb.shape[0] == len(texts):
            return emb
    emb = encode_texts(loaded, texts, progress=progress)
    save_torch_atomic(emb, path)
    return emb


def class_prompt_embeddings(loaded: LoadedCLIP, label_set: LabelSet | str, cache=None) -> torch.Tensor:
    """One L2-normalised "a photo of a {class}." embedding per class (C x D): the official text memory."""
    ls = get_label_set(label_set)
    texts = [r["text"] for r in corpus_mod.prompt_augmentation(ls, copies=1, templates=())]
    return encode_texts_cached(loaded, texts, cache, progress=False)


def zero_shot_weights(loaded: LoadedCLIP, label_set: LabelSet | str, cache=None) -> torch.Tensor:
    """CLIP zero-shot classifier (C x D): the normalised mean of each class's 81 prompt embeddings."""
    ls = get_label_set(label_set)
    records = corpus_mod.prompt_augmentation(ls, copies=1)
    emb = encode_texts_cached(loaded, [r["text"] for r in records], cache, progress=False)
    ids = torch.tensor([r["label_ids"][0] for r in records])
    weights = torch.stack([emb[ids == c].mean(0) for c in range(len(ls))])
    return torch.nn.functional.normalize(weights, dim=-1)


def text_memory(kind: str, prompt_emb: torch.Tensor, corpus_emb: torch.Tensor) -> torch.Tensor:
    """The mapping's text memory: class prompt embeddings ("prompts") or the corpus embeddings ("corpus")."""
    if kind == "prompts":
        return prompt_emb
    if kind == "corpus":
        return corpus_emb
    raise ValueError(f"memory={kind!r}: expected 'prompts' or 'corpus'")


def evaluate_scores(scores, labels, difficult: str = "negative", n_boot: int = 1000, seed: int = 0,
                    f1_threshold: float | None = 0.0) -> dict:
    """mAP, its bootstrap 95% interval and CF1/OF1@3 of an N x C score matrix."""
    scores = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    out = {"mAP": mean_average_precision(scores, labels, difficult)}
    if n_boot:
        out["CI low"], out["CI high"] = bootstrap_map_ci(scores, labels, n_boot=n_boot, seed=seed,
                                                         difficult=difficult)
    f1 = f1_at_top_k(scores, labels, k=3, threshold=f1_threshold)
    out["CF1@3"], out["OF1@3"] = f1["CF1"], f1["OF1"]
    return out


def train_classifier(text_emb: torch.Tensor, targets, config: TrainConfig, seed: int = 0,
                     classnames=None, cache=None, use_cache: bool = True, input_shift=None,
                     input_scale=None) -> tuple[TextClassifier, list]:
    """Train the text-only classifier with a fixed number of epochs (no model selection); cached on disk.

    ``input_shift`` / ``input_scale`` standardise the texts batch by batch (see
    :func:`~lcmc_core.classifier.train_text_classifier`); they are part of the cache key.
    """
    targets = np.ascontiguousarray(np.asarray(targets), dtype=np.int8)
    text_emb = text_emb.detach().float().cpu().contiguous()
    path = None
    if use_cache:
        h = hashlib.sha256()
        h.update(memoryview(text_emb.numpy()).cast("B"))  # no copy of a large corpus
        h.update(targets.tobytes())
        h.update(json.dumps([config.to_dict(), seed, CLASSIFIER_CODE_VERSION], sort_keys=True).encode())
        for extra in (input_shift, input_scale):
            if extra is not None:
                h.update(b"standardised" + np.asarray(torch.as_tensor(extra).float()).tobytes())
        path = cache_dir(cache) / "classifiers" / f"{h.hexdigest()[:20]}.pt"
        blob = load_torch(path, "cached classifier")
        if blob is not None:
            clf = TextClassifier(text_emb.shape[1], targets.shape[1], config=config, classnames=classnames)
            clf.load_state_dict(blob["state_dict"])
            return clf.eval(), blob["history"]
    clf, history = train_text_classifier(text_emb, torch.as_tensor(targets, dtype=torch.float32),
                                         config, seed=seed, classnames=classnames, input_shift=input_shift,
                                         input_scale=input_scale)
    if path is not None:
        save_torch_atomic({"state_dict": clf.state_dict(), "history": history}, path)
    return clf, history


def run_comparison(loaded: LoadedCLIP, dataset, config: MethodConfig | None = None, cache=None,
                   progress: bool = True, image_features: ImageFeatures | None = None,
                   batch_size: int = 64, num_workers: int = 0) -> ComparisonResult:
    """Run CoMC and every baseline on ``dataset`` with ``loaded`` and return the comparison table."""
    config = config or MethodConfig()
    ls = get_label_set(dataset.label_set)
    corpus = build_training_corpus(ls, config)
    text_emb = encode_texts_cached(loaded, corpus.texts, cache, progress=progress)
    prompt_emb = class_prompt_embeddings(loaded, ls, cache)
    zs = zero_shot_weights(loaded, ls, cache)
    feats = image_features or extract_image_features(loaded, dataset, local=True, global_pool=config.global_pool,
                                                     cache=cache, progress=progress, batch_size=batch_size,
                                                     num_workers=num_workers)
    return compare_on_embeddings(corpus, text_emb, prompt_emb, zs, feats, dataset.labels, config, cache=cache)


def compare_on_embeddings(corpus: corpus_mod.Corpus, text_emb: torch.Tensor, prompt_emb: torch.Tensor,
                          zero_shot: torch.Tensor, feats: ImageFeatures, labels, config: MethodConfig,
                          cache=None, timings: dict | None = None) -> ComparisonResult:
    """The comparison from embeddings alone: train the classifiers on ``text_emb``, score every row on ``feats``.

    ``timings``, if given, receives the seconds spent training, scoring and evaluating.
    """
    import time

    ls = corpus.label_set
    t0 = time.perf_counter()
    memory = text_memory(config.memory, prompt_emb, text_emb)
    g, loc = feats.global_, feats.local
    clf, hist = train_classifier(text_emb, corpus.targets, config.classifier, config.seed, ls.classnames, cache)
    no_noise_cfg = dataclasses.replace(config.classifier, noise_std=0.0)
    clf_nn, hist_nn = train_classifier(text_emb, corpus.targets, no_noise_cfg, config.seed, ls.classnames, cache)
    clf_ms, hist_ms = train_classifier(text_emb, corpus.targets, config.classifier, config.seed, ls.classnames,
                                       cache, input_shift=text_emb.mean(0))
    t1 = time.perf_counter()

    kw = dict(temperature=config.temperature, alpha=config.alpha, local_weight=config.local_weight)
    W = clf.weight.detach()
    # C3 baseline: each modality centred on its own mean, re-normalised (local means streamed)
    mu_g = g.mean(0)
    mu_l = embedding_mean(loc) if loc is not None else None
    centred = dict(global_transform=lambda x: mean_shift(x, mu_g),
                   local_transform=(lambda x: mean_shift(x, mu_l)) if loc is not None else None)
    plain = score_images({"zs": zero_shot, "clf": W}, g, loc, **kw)
    mapped = score_images({"clf": W, "no_noise": clf_nn.weight.detach()}, g, loc, memory=memory,
                          top_k=config.memory_top_k or None, **kw)
    runs = {
        "zero-shot, global": plain["zs"]["global"],
        "zero-shot, global+local": plain["zs"]["merged"],
        "text classifier, global": plain["clf"]["global"],
        "text classifier, global+local": plain["clf"]["merged"],
        "text classifier + mean shift (C3), global+local": score_images(
            clf_ms.weight.detach(), g, loc, **kw, **centred)["merged"],
        "CoMC without noise injection": mapped["no_noise"]["merged"],
        "CoMC mapping, global only": mapped["clf"]["global"],
        "CoMC (full)": mapped["clf"]["merged"],
    }
    if loc is None:  # a tower without a local branch: drop the rows that need it
        runs = {k: v for k, v in runs.items() if "local" not in k and k != "CoMC (full)"}
    t2 = time.perf_counter()
    rows, scores, per_class = [], {}, {}
    for name, s in runs.items():
        s = s.detach().cpu().numpy()
        scores[name] = s
        rows.append({"method": name, **evaluate_scores(s, labels, config.difficult, config.n_boot, config.seed,
                                                       config.f1_threshold)})
        per_class[name] = average_precision_per_class(s, labels, config.difficult)
    table = pd.DataFrame(rows).set_index("method")
    per_class_ap = pd.DataFrame(per_class, index=pd.Index(ls.classnames, name="class"))
    if timings is not None:
        timings.update(train_s=t1 - t0, score_s=t2 - t1, evaluate_s=time.perf_counter() - t2)
    return ComparisonResult(table=table, scores=scores, per_class_ap=per_class_ap, labels=np.asarray(labels),
                            classifiers={"comc": clf, "no_noise": clf_nn, "mean_shift": clf_ms},
                            histories={"comc": hist, "no_noise": hist_nn, "mean_shift": hist_ms},
                            corpus=corpus, image_features=feats, memory=memory, text_emb=text_emb,
                            config=config)
