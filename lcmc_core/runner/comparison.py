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
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..cache import cache_dir, load_torch, save_torch_atomic
from ..checks import check_choice, check_int, check_real
from ..images.features import ImageFeatures, encode_texts_cached, extract_image_features
from ..images.models import LoadedCLIP
from ..method.classifier import TextClassifier, TrainConfig, train_text_classifier
from ..method.comc import CoMC, decision_functions
from ..method.mapping import embedding_mean, mean_shift
from ..method.metrics import average_precision_per_class, bootstrap_map_ci, f1_at_top_k
from ..method.zero_shot import text_memory, zero_shot_classifier
from ..text import corpus as corpus_mod
from ..text.label_sets import get_label_set
from ..text.labels import LabelSet
from ..text.prompts import TEMPLATE_SETS, prompt_texts

__all__ = ["MethodConfig", "ComparisonResult", "build_training_corpus", "class_prompt_embeddings",
           "zero_shot_weights", "evaluate_scores", "train_classifier", "fit_comc", "run_comparison",
           "compare_on_embeddings", "METRIC_NOTE"]

# Bump when classifier training changes (invalidates cached classifiers).
CLASSIFIER_CODE_VERSION = "1"

METRIC_NOTE = ("mAP: TaI-DPT/CoMC convention (per class, precision at each positive's rank, averaged); "
               "95% CI: bootstrap over images (1000 resamples); CF1/OF1: ML-GCN definition, a label is "
               "predicted when it is among the image's top 3 scores and its raw score >= 0, i.e. sigmoid >= 0.5 "
               "(per-class precision/recall averaged = C, pooled = O); zero-shot cosine scores are all "
               "positive, so for them this is plain top-3.")


@dataclass(frozen=True)
class MethodConfig:
    """The method's hyperparameters and the evaluation's conventions (``method.*`` of the run's parameters)."""

    alpha: float = field(default=0.7, metadata={"help": "mapping: weight of the image embedding (1 = no mapping)"})
    temperature: float = field(default=0.01, metadata={"help": "mapping: softmax temperature over the memory"})
    local_weight: float = field(default=0.5, metadata={"help": "weight of the local branch in the merged score"})
    memory: str = field(default="prompts", metadata={"help": "text memory: prompts (one per class, official) | corpus"})
    memory_top_k: int = field(default=0, metadata={"help": "map with the exact top-k memory rows (0 = every row)"})
    global_pool: str = field(default="no-pos", metadata={"help": "global image embedding: no-pos (official) | clip"})
    k_range: tuple[int, int] = field(default=(1, 5), metadata={"help": "labels requested per sentence (low, high)"})
    prompt_copies: int = field(default=9, metadata={"help": "copies of the class prompt per class in the training texts"})
    prompt_templates: str = field(default="own", metadata={"help": "templates of the training prompts: own | openai | none"})
    classifier: TrainConfig = field(default_factory=TrainConfig)
    difficult: str = field(default="negative", metadata={"help": "VOC difficult labels: negative | ignore"})
    f1_threshold: float | None = field(default=0.0, metadata={"help": "raw-score threshold of CF1/OF1 (null: top-3 only)"})
    n_boot: int = field(default=1000, metadata={"help": "bootstrap resamples of the test images (0: none)"})

    def __post_init__(self):
        check_real("MethodConfig.alpha", self.alpha, 0, 1)
        check_real("MethodConfig.temperature", self.temperature, 0, low_open=True)
        check_real("MethodConfig.local_weight", self.local_weight, 0, 1)
        check_choice("MethodConfig.memory", self.memory, ("prompts", "corpus"))
        check_int("MethodConfig.memory_top_k", self.memory_top_k, 0)
        check_choice("MethodConfig.global_pool", self.global_pool, ("no-pos", "clip"))
        lo, hi = self.k_range
        check_int("MethodConfig.k_range[0]", lo, 1)
        check_int("MethodConfig.k_range[1]", hi, lo)
        check_int("MethodConfig.prompt_copies", self.prompt_copies, 0)
        check_choice("MethodConfig.prompt_templates", self.prompt_templates, tuple(k for k in TEMPLATE_SETS
                                                                                    if k != "select"))
        check_choice("MethodConfig.difficult", self.difficult, ("negative", "ignore"))
        if self.f1_threshold is not None:
            check_real("MethodConfig.f1_threshold", self.f1_threshold)
        check_int("MethodConfig.n_boot", self.n_boot, 0)
        if not isinstance(self.classifier, TrainConfig):
            raise ValueError(f"MethodConfig.classifier: expected a TrainConfig, got {type(self.classifier).__name__}")


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
    seed: int = 0
    models: dict[str, CoMC] = field(default_factory=dict)


def build_training_corpus(label_set: LabelSet | str, config: MethodConfig | None = None, *, size: int = 20000,
                          seed: int = 0, generator: str = "template", path=None) -> corpus_mod.Corpus:
    """The classifier's training texts: generated (or, with ``path``, read) sentences plus the single-label prompts."""
    config = config or MethodConfig()
    ls = get_label_set(label_set)
    if path:
        base = corpus_mod.read_corpus(path, ls).records()
    else:
        base = corpus_mod.build_corpus(ls, size, seed, generator=generator, k_range=config.k_range)
    augmentation = corpus_mod.prompt_augmentation(ls, copies=config.prompt_copies, templates=config.prompt_templates)
    return corpus_mod.corpus_from_records(list(base) + augmentation, ls, origin="training corpus")


def class_prompt_embeddings(loaded: LoadedCLIP, label_set: LabelSet | str, cache=None,
                            template: str = "a photo of {a}.") -> torch.Tensor:
    """One L2-normalised class-prompt embedding per class (C x D): the mapping's text memory."""
    ls = get_label_set(label_set)
    texts = [p[0] for p in prompt_texts(ls.prompt_names, [template])]
    return encode_texts_cached(loaded, texts, cache, progress=False)


def zero_shot_weights(loaded: LoadedCLIP, label_set: LabelSet | str, cache=None,
                      templates=("a photo of {a}.",) + TEMPLATE_SETS["own"]) -> torch.Tensor:
    """CLIP's zero-shot classifier (C x D): per class, the normalised mean of its prompt embeddings."""
    ls = get_label_set(label_set)
    texts = prompt_texts(ls.prompt_names, templates)
    emb = encode_texts_cached(loaded, [t for per_class in texts for t in per_class], cache, progress=False)
    t = len(texts[0])
    return zero_shot_classifier([emb[c * t:(c + 1) * t] for c in range(len(ls))])


def evaluate_scores(scores, labels, difficult: str = "negative", n_boot: int = 1000, seed: int = 0,
                    f1_threshold: float | None = 0.0) -> dict:
    """mAP, its bootstrap 95% interval and CF1/OF1@3 of an N x C score matrix."""
    from ..method.metrics import mean_average_precision

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
    :func:`~lcmc_core.method.classifier.train_text_classifier`); they are part of the cache key.
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


def fit_comc(model: CoMC, text_emb: torch.Tensor, targets, memory=None, classnames=None, cache=None,
             input_shift=None, input_scale=None) -> CoMC:
    """:meth:`CoMC.fit` through the classifier cache: the same weights as ``fit``, trained once per corpus and recipe."""
    clf, history = train_classifier(text_emb, targets, model.classifier, model.seed, classnames, cache,
                                    input_shift=input_shift, input_scale=input_scale)
    return model._set_fitted(clf, history, memory)


def run_comparison(loaded: LoadedCLIP, dataset, config: MethodConfig | None = None, *,
                   corpus: corpus_mod.Corpus | None = None, corpus_size: int = 20000, seed: int = 0,
                   cache=None, progress: bool = True, image_features: ImageFeatures | None = None,
                   batch_size: int = 64, num_workers: int = 0) -> ComparisonResult:
    """Run CoMC and every baseline on ``dataset`` with ``loaded`` and return the comparison table.

    ``corpus`` is the training corpus (prompt augmentation included, see
    :func:`build_training_corpus`); by default a template corpus of ``corpus_size`` sentences
    from ``seed``.
    """
    config = config or MethodConfig()
    ls = get_label_set(dataset.label_set)
    corpus = corpus if corpus is not None else build_training_corpus(ls, config, size=corpus_size, seed=seed)
    text_emb = encode_texts_cached(loaded, corpus.texts, cache, progress=progress)
    prompt_emb = class_prompt_embeddings(loaded, ls, cache)
    zs = zero_shot_weights(loaded, ls, cache)
    feats = image_features or extract_image_features(loaded, dataset, local=True, global_pool=config.global_pool,
                                                     cache=cache, progress=progress, batch_size=batch_size,
                                                     num_workers=num_workers)
    return compare_on_embeddings(corpus, text_emb, prompt_emb, zs, feats, dataset.labels, config, seed=seed,
                                 cache=cache)


def compare_on_embeddings(corpus: corpus_mod.Corpus, text_emb: torch.Tensor, prompt_emb: torch.Tensor,
                          zero_shot: torch.Tensor, feats: ImageFeatures, labels, config: MethodConfig,
                          seed: int = 0, cache=None, timings: dict | None = None) -> ComparisonResult:
    """The comparison from embeddings alone: fit the CoMC models on ``text_emb``, score every row on ``feats``.

    ``timings``, if given, receives the seconds spent training, scoring and evaluating.
    """
    ls = corpus.label_set
    t0 = time.perf_counter()
    memory = text_memory(config.memory, prompt_emb, text_emb)
    g, loc = feats.global_, feats.local
    mapping = dict(alpha=config.alpha, temperature=config.temperature, local_weight=config.local_weight,
                   top_k=config.memory_top_k or None, seed=seed)
    fit = dict(classnames=ls.classnames, cache=cache)
    comc = fit_comc(CoMC(classifier=config.classifier, **mapping), text_emb, corpus.targets, memory, **fit)
    no_noise = fit_comc(CoMC(classifier=dataclasses.replace(config.classifier, noise_std=0.0), **mapping),
                        text_emb, corpus.targets, memory, **fit)
    # C3: the classifier trained on mean-centred (re-normalised) texts, images centred on their own mean
    c3 = fit_comc(CoMC(classifier=config.classifier, **mapping), text_emb, corpus.targets, None,
                  input_shift=text_emb.mean(0), **fit)
    zero = CoMC(**mapping)._set_fitted(_weights_as_classifier(zero_shot), [], None)
    plain = CoMC(**mapping)._set_fitted(comc.classifier_, comc.history_, None)
    t1 = time.perf_counter()

    mu_g = g.mean(0)
    mu_l = embedding_mean(loc) if loc is not None else None
    centred = dict(global_transform=lambda x: mean_shift(x, mu_g),
                   local_transform=(lambda x: mean_shift(x, mu_l)) if loc is not None else None)
    out = decision_functions({"zs": zero, "clf": plain, "comc": comc, "no_noise": no_noise}, g, loc)
    c3_scores = c3.scores(g, loc, **centred)
    runs = {
        "zero-shot, global": out["zs"]["global"],
        "zero-shot, global+local": out["zs"]["merged"],
        "text classifier, global": out["clf"]["global"],
        "text classifier, global+local": out["clf"]["merged"],
        "text classifier + mean shift (C3), global+local": c3_scores["merged"],
        "CoMC without noise injection": out["no_noise"]["merged"],
        "CoMC mapping, global only": out["comc"]["global"],
        "CoMC (full)": out["comc"]["merged"],
    }
    if loc is None:  # a tower without a local branch: drop the rows that need it
        runs = {k: v for k, v in runs.items() if "local" not in k and k != "CoMC (full)"}
    t2 = time.perf_counter()
    rows, scores, per_class = [], {}, {}
    for name, sc in runs.items():
        sc = sc.detach().cpu().numpy()
        scores[name] = sc
        rows.append({"method": name, **evaluate_scores(sc, labels, config.difficult, config.n_boot, seed,
                                                       config.f1_threshold)})
        per_class[name] = average_precision_per_class(sc, labels, config.difficult)
    table = pd.DataFrame(rows).set_index("method")
    per_class_ap = pd.DataFrame(per_class, index=pd.Index(ls.classnames, name="class"))
    if timings is not None:
        timings.update(train_s=t1 - t0, score_s=t2 - t1, evaluate_s=time.perf_counter() - t2)
    return ComparisonResult(table=table, scores=scores, per_class_ap=per_class_ap, labels=np.asarray(labels),
                            classifiers={"comc": comc.classifier_, "no_noise": no_noise.classifier_,
                                         "mean_shift": c3.classifier_},
                            histories={"comc": comc.history_, "no_noise": no_noise.history_,
                                       "mean_shift": c3.history_},
                            corpus=corpus, image_features=feats, memory=memory, text_emb=text_emb,
                            config=config, seed=seed, models={"comc": comc, "no_noise": no_noise, "c3": c3})


def _weights_as_classifier(weights: torch.Tensor) -> TextClassifier:
    """A (C, D) weight matrix (e.g. zero-shot prompts) as a :class:`TextClassifier`."""
    clf = TextClassifier(int(weights.shape[1]), int(weights.shape[0]))
    with torch.no_grad():
        clf.weight.copy_(weights)
    return clf.eval()
