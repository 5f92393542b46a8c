"""The whole CoMC method, its baselines and its training-free peers on one dataset and one CLIP, in one call.

:func:`run_comparison` builds (or reads) the text corpus, encodes it with the CLIP text tower,
trains the text-only classifier (and the variants the baselines need), extracts global and local
image features, and scores every method with the same functions, returning a pandas table.
Every row names its protocol (:data:`ROWS` holds one line per row; the notebooks print it):

* **zero-shot CLIP** as the published rows (CLIP's own ``encode_image`` pooling, OpenAI's 80
  ImageNet templates), as the official repository's ``ZeroshotCLIP2`` (7 "select" templates +
  "a photo of a {}.") and ``ZeroshotCLIP_dense`` (the same global pool, plus the local
  embeddings scored by one prompt and pooled by a softmax over positions), and on CoMC's own
  features (no positional embedding, local max pooling) for a like-for-like reference;
* **peers**, training-free, on the same features (:mod:`lcmc_core.method.peers`): I0T's post-hoc
  per-modality centring and SPARC's score standardisation on the published zero-shot scores,
  DeCap's projection (the mapping with alpha 0) and C3's mean shift for the text classifier;
* **the text classifier** without mapping, **CoMC** without noise, global only, full, with SPARC's
  standardisation on top, and under the **official protocol** (the epoch chosen on every tenth test
  image, as the official trainer does: it selects on test images, so it is a labelled reference,
  not a result).

Metrics: mAP (TaI-DPT/CoMC convention; ``difficult`` option), a bootstrap 95% interval over
images, and CF1/OF1 at top-3 (ML-GCN definition, threshold on raw scores; stated with every
table). The mean-shift, I0T and SPARC rows estimate statistics of the evaluated images themselves
(unlabelled, i.e. transductive), the text mean on the training corpus. Several seeds, their
means and paired intervals: :mod:`lcmc_core.runner.seeds`.
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
from ..method.mapping import embedding_mean, mean_shift, score_images
from ..method.metrics import average_precision_per_class, bootstrap_map_ci, f1_at_top_k, mean_average_precision
from ..method.peers import DECAP_ALPHA, sparc_standardize, standardize_modality
from ..method.zero_shot import text_memory, zero_shot_classifier
from ..text import corpus as corpus_mod
from ..text.label_sets import get_label_set
from ..text.labels import LabelSet
from ..text.prompts import CLASS_PROMPT, TEMPLATE_SETS, prompt_texts

__all__ = ["MethodConfig", "ComparisonResult", "ZeroShotWeights", "build_training_corpus", "class_prompt_embeddings",
           "zero_shot_weights", "zero_shot_protocol_weights", "evaluate_scores", "train_classifier", "fit_comc",
           "run_comparison", "compare_on_embeddings", "select_epoch_on_test", "METRIC_NOTE", "ROWS", "ROW_FAMILIES",
           "ZERO_SHOT_PROTOCOL", "GAP_PROTOCOL"]

# Bump when classifier training changes (invalidates cached classifiers).
CLASSIFIER_CODE_VERSION = "2"

#: The zero-shot protocol of every "zero-shot mAP" outside the main table (toy CLIP table, ablations).
ZERO_SHOT_PROTOCOL = ("published protocol: CLIP's encode_image pooling (with positional embedding), "
                      "class weights = mean of OpenAI's 80 ImageNet templates")
#: The gap protocol of every gap number: the embeddings CoMC scores.
GAP_PROTOCOL = ("gap = |mean image - mean text| of L2-normalised embeddings, images pooled without positional "
                "embedding (CoMC's global feature), texts = matched captions")

# row name -> (family, what it is); the order is the table's
ROWS: dict[str, tuple[str, str]] = {
    "zero-shot CLIP [published: encode_image, 80 OpenAI templates]": (
        "zero-shot", "CLIP's own image embedding, class weights = mean of OpenAI's 80 ImageNet prompts; the "
        "protocol of the published zero-shot rows (e.g. SPARC Table 2)"),
    "zero-shot CLIP [official ZeroshotCLIP2: 7 select templates + 'a photo of a {}.']": (
        "zero-shot", "the official repository's prompt-ensemble baseline, same image embedding"),
    "zero-shot CLIP + local [official ZeroshotCLIP_dense]": (
        "zero-shot", "the official dense baseline: global as above, local embeddings scored by 'a photo of a {}.', "
        "pooled by softmax over positions of the logit-scaled scores, merged 0.5 / 0.5"),
    "zero-shot on CoMC's features [no-pos pool + local max]": (
        "zero-shot", "the 80-template weights on exactly the features CoMC scores (like for like)"),
    "zero-shot + I0T post-hoc centring [published protocol]": (
        "peer", "I0T (ACL 2025): images centred on the test images' mean, class weights on the corpus mean, "
        "re-normalised (transductive)"),
    "zero-shot + SPARC score standardisation [published protocol]": (
        "peer", "SPARC (CVPR 2025): per-image then per-class z-score of the published zero-shot scores"),
    "text classifier, global": ("trained", "trained on text only, applied to raw image embeddings"),
    "text classifier, global+local": ("trained", "+ local branch (max over positions), merged 0.5 / 0.5"),
    "text classifier + C3 mean shift, global+local": (
        "peer", "C3 (ICLR 2024): classifier trained on centred texts, images centred on their own mean"),
    "text classifier + DeCap projection (alpha 0), global+local": (
        "peer", "DeCap (ICLR 2023): image embeddings replaced by their projection onto the text memory"),
    "CoMC without noise injection": ("CoMC", "full inference, classifier trained with noise std 0"),
    "CoMC mapping, global only": ("CoMC", "mapping of the global embedding, no local branch"),
    "CoMC (full)": ("CoMC", "mapping of global and local embeddings (alpha 0.7, tau 0.01), merged 0.5 / 0.5"),
    "CoMC + SPARC score standardisation": ("CoMC", "SPARC's standardisation applied to CoMC's scores"),
    "CoMC, official protocol (selects epoch on test images)": (
        "reference", "the epoch of best CoMC mAP on every tenth test image, as the official trainer; "
        "uses test labels, so it is not a result"),
}
#: One colour family per kind of row, for every figure.
ROW_FAMILIES = ("zero-shot", "peer", "trained", "CoMC", "TaI-DPT", "reference")

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
    prompt_templates: str = field(default="openai", metadata={
        "help": "templates of the training prompts: openai (official: 9 copies + OpenAI's 80) | own | none"})
    corpus_labels: str = field(default="extracted", metadata={
        "help": "labels of a generated sentence: extracted (the classes its text names) | requested (official)"})
    classifier: TrainConfig = field(default_factory=TrainConfig)
    taidpt: bool = field(default=True, metadata={"help": "add the TaI-DPT rows (prompt tuning on the same corpus)"})
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
        check_choice("MethodConfig.corpus_labels", self.corpus_labels, ("extracted", "requested"))
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
    #: the official protocol's choice: ``{"epoch": 0-based, "selection_map": mAP on test[0::10] per epoch}``
    selection: dict = field(default_factory=dict)


def build_training_corpus(label_set: LabelSet | str, config: MethodConfig | None = None, *, size: int = 20000,
                          seed: int = 0, generator: str = "template", path=None) -> corpus_mod.Corpus:
    """The classifier's training texts: generated (or, with ``path``, read) sentences plus the single-label prompts."""
    config = config or MethodConfig()
    ls = get_label_set(label_set)
    if path:
        base = corpus_mod.read_corpus(path, ls).records()
    else:
        base = corpus_mod.build_corpus(ls, size, seed, generator=generator, k_range=config.k_range)
    if config.corpus_labels == "requested":  # the official generator trains on the labels it asked for
        base = [{**{k: v for k, v in r.items() if k != "label_ids"}, "labels": r["requested"]}
                if r.get("requested") else r for r in base]
    augmentation = corpus_mod.prompt_augmentation(ls, copies=config.prompt_copies, templates=config.prompt_templates)
    return corpus_mod.corpus_from_records(list(base) + augmentation, ls, origin="training corpus")


def class_prompt_embeddings(loaded: LoadedCLIP, label_set: LabelSet | str, cache=None,
                            template: str = "a photo of {a}.") -> torch.Tensor:
    """One L2-normalised class-prompt embedding per class (C x D): the mapping's text memory."""
    ls = get_label_set(label_set)
    texts = [p[0] for p in prompt_texts(ls.prompt_names, [template])]
    return encode_texts_cached(loaded, texts, cache, progress=False)


def zero_shot_weights(loaded: LoadedCLIP, label_set: LabelSet | str, cache=None,
                      templates=TEMPLATE_SETS["openai"]) -> torch.Tensor:
    """CLIP's zero-shot classifier (C x D): per class, the normalised mean of its prompt embeddings (default: OpenAI's 80)."""
    ls = get_label_set(label_set)
    texts = prompt_texts(ls.prompt_names, templates)
    emb = encode_texts_cached(loaded, [t for per_class in texts for t in per_class], cache, progress=False)
    t = len(texts[0])
    return zero_shot_classifier([emb[c * t:(c + 1) * t] for c in range(len(ls))])


@dataclass
class ZeroShotWeights:
    """The zero-shot class weights of each protocol (C x D each)."""

    published: torch.Tensor          # OpenAI's 80 ImageNet templates
    select: torch.Tensor             # the official ZeroshotCLIP2 set
    single: torch.Tensor             # "a photo of a {}." (the official dense baseline's prompt)


def zero_shot_protocol_weights(loaded: LoadedCLIP, label_set: LabelSet | str, cache=None) -> ZeroShotWeights:
    """The class weights of every zero-shot protocol of the comparison."""
    return ZeroShotWeights(published=zero_shot_weights(loaded, label_set, cache, TEMPLATE_SETS["openai"]),
                           select=zero_shot_weights(loaded, label_set, cache, TEMPLATE_SETS["select"]),
                           single=zero_shot_weights(loaded, label_set, cache, (CLASS_PROMPT,)))


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
                     input_scale=None, return_epoch_weights: bool = False):
    """Train the text-only classifier with a fixed number of epochs (no model selection); cached on disk.

    ``input_shift`` / ``input_scale`` standardise the texts batch by batch (see
    :func:`~lcmc_core.method.classifier.train_text_classifier`); they are part of the cache key.
    Returns ``(classifier, history)``, and with ``return_epoch_weights`` also the (E, C, D) weights
    after every epoch (kept in the cache entry; what the official protocol selects from).
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
                h.update(b"standardised" + torch.as_tensor(extra).detach().float().cpu().numpy().tobytes())
        path = cache_dir(cache) / "classifiers" / f"{h.hexdigest()[:20]}.pt"
        blob = load_torch(path, "cached classifier")
        if blob is not None and "epoch_weights" in blob:
            clf = TextClassifier(text_emb.shape[1], targets.shape[1], config=config, classnames=classnames)
            clf.load_state_dict(blob["state_dict"])
            out = (clf.eval(), blob["history"])
            return out + (blob["epoch_weights"],) if return_epoch_weights else out
    epochs: list = []
    clf, history = train_text_classifier(text_emb, torch.as_tensor(targets, dtype=torch.float32),
                                         config, seed=seed, classnames=classnames, input_shift=input_shift,
                                         input_scale=input_scale, epoch_weights=epochs)
    stacked = torch.stack(epochs)
    if path is not None:
        save_torch_atomic({"state_dict": clf.state_dict(), "history": history, "epoch_weights": stacked}, path)
    return (clf, history, stacked) if return_epoch_weights else (clf, history)


def fit_comc(model: CoMC, text_emb: torch.Tensor, targets, memory=None, classnames=None, cache=None,
             input_shift=None, input_scale=None) -> CoMC:
    """:meth:`CoMC.fit` through the classifier cache: the same weights as ``fit``, trained once per corpus and recipe."""
    clf, history, epochs = train_classifier(text_emb, targets, model.classifier, model.seed, classnames, cache,
                                            input_shift=input_shift, input_scale=input_scale,
                                            return_epoch_weights=True)
    model = model._set_fitted(clf, history, memory)
    model.epoch_weights_ = epochs
    return model


def run_comparison(loaded: LoadedCLIP, dataset, config: MethodConfig | None = None, *,
                   corpus: corpus_mod.Corpus | None = None, corpus_size: int = 20000, seed: int = 0,
                   cache=None, progress: bool = True, image_features: ImageFeatures | None = None,
                   batch_size: int = 64, num_workers: int = 0, extra_rows=None) -> ComparisonResult:
    """Run CoMC, every baseline and every peer on ``dataset`` with ``loaded`` and return the comparison table.

    ``corpus`` is the training corpus (prompt augmentation included, see
    :func:`build_training_corpus`); by default a template corpus of ``corpus_size`` sentences
    from ``seed``. ``extra_rows(corpus, text_emb, feats, seed) -> {row name: (N, C) scores}`` adds
    rows scored like the others (TaI-DPT's, see :mod:`lcmc_core.method.taidpt`).
    """
    config = config or MethodConfig()
    ls = get_label_set(dataset.label_set)
    corpus = corpus if corpus is not None else build_training_corpus(ls, config, size=corpus_size, seed=seed)
    text_emb = encode_texts_cached(loaded, corpus.texts, cache, progress=progress)
    prompt_emb = class_prompt_embeddings(loaded, ls, cache)
    zs = zero_shot_protocol_weights(loaded, ls, cache)
    feats = image_features or extract_image_features(loaded, dataset, local=True, global_pool=config.global_pool,
                                                     cache=cache, progress=progress, batch_size=batch_size,
                                                     num_workers=num_workers)
    extra = extra_rows(corpus, text_emb, feats, seed) if extra_rows is not None else None
    return compare_on_embeddings(corpus, text_emb, prompt_emb, zs, feats, dataset.labels, config, seed=seed,
                                 cache=cache, extra_scores=extra)


def select_epoch_on_test(epoch_weights: torch.Tensor, feats: ImageFeatures, labels, memory, config: MethodConfig,
                         step: int = 10) -> dict:
    """The official trainer's model selection: the epoch whose full-CoMC mAP on ``test[0::step]`` is highest.

    Returns ``{"epoch": 0-based index of the first best epoch, "selection_map": [mAP per epoch]}``;
    the official code validates COCO on every tenth test image (``step=10``).
    """
    idx = np.arange(0, len(labels), step)
    g = feats.global_[idx]
    loc = feats.local[::step] if feats.local is not None else None     # a FeatureFile reads only those rows
    scored = score_images({e: w for e, w in enumerate(epoch_weights)}, g, loc, memory=memory,
                          temperature=config.temperature, alpha=config.alpha, local_weight=config.local_weight,
                          top_k=config.memory_top_k or None)
    y = np.asarray(labels)[idx]
    maps = [mean_average_precision(scored[e]["merged"].numpy(), y, config.difficult) for e in range(len(scored))]
    return {"epoch": int(np.argmax(maps)), "selection_map": [float(m) for m in maps], "step": step}


def compare_on_embeddings(corpus: corpus_mod.Corpus, text_emb: torch.Tensor, prompt_emb: torch.Tensor,
                          zero_shot, feats: ImageFeatures, labels, config: MethodConfig,
                          seed: int = 0, cache=None, timings: dict | None = None,
                          extra_scores: dict | None = None) -> ComparisonResult:
    """The comparison from embeddings alone: fit the CoMC models on ``text_emb``, score every row on ``feats``.

    ``zero_shot`` is a :class:`ZeroShotWeights` (or one (C, D) matrix, used for every protocol).
    Rows needing CLIP's own pooling are dropped when ``feats.global_clip`` is None, rows needing the
    local branch when ``feats.local`` is None. ``extra_scores`` (row name -> (N, C)) are added as
    rows. ``timings``, if given, receives the seconds spent training, scoring and evaluating.
    """
    if not isinstance(zero_shot, ZeroShotWeights):
        zero_shot = ZeroShotWeights(zero_shot, zero_shot, zero_shot)
    ls = corpus.label_set
    t0 = time.perf_counter()
    memory = text_memory(config.memory, prompt_emb, text_emb)
    g, loc, g_clip = feats.global_, feats.local, feats.global_clip
    mapping = dict(alpha=config.alpha, temperature=config.temperature, local_weight=config.local_weight,
                   top_k=config.memory_top_k or None, seed=seed)
    fit = dict(classnames=ls.classnames, cache=cache)
    comc = fit_comc(CoMC(classifier=config.classifier, **mapping), text_emb, corpus.targets, memory, **fit)
    no_noise = fit_comc(CoMC(classifier=dataclasses.replace(config.classifier, noise_std=0.0), **mapping),
                        text_emb, corpus.targets, memory, **fit)
    # C3: the classifier trained on mean-centred (re-normalised) texts, images centred on their own mean
    text_mean = text_emb.detach().float().mean(0)
    c3 = fit_comc(CoMC(classifier=config.classifier, **mapping), text_emb, corpus.targets, None,
                  input_shift=text_mean, **fit)
    zero = CoMC(**mapping)._set_fitted(_weights_as_classifier(zero_shot.published), [], None)
    plain = CoMC(**mapping)._set_fitted(comc.classifier_, comc.history_, None)
    decap = CoMC(**{**mapping, "alpha": DECAP_ALPHA})._set_fitted(comc.classifier_, comc.history_, memory)
    selection = select_epoch_on_test(comc.epoch_weights_, feats, labels, memory, config)
    official = CoMC(**mapping)._set_fitted(_weights_as_classifier(comc.epoch_weights_[selection["epoch"]]), [],
                                           memory)
    t1 = time.perf_counter()

    mu_g = g.mean(0)
    mu_l = embedding_mean(loc) if loc is not None else None
    centred = dict(global_transform=lambda x: mean_shift(x, mu_g),
                   local_transform=(lambda x: mean_shift(x, mu_l)) if loc is not None else None)
    out = decision_functions({"zs": zero, "clf": plain, "comc": comc, "no_noise": no_noise, "decap": decap,
                              "official": official}, g, loc)
    c3_scores = c3.scores(g, loc, **centred)
    runs = {}
    if g_clip is not None:
        published = g_clip @ zero_shot.published.T
        i0t_img = standardize_modality(g_clip, g_clip.mean(0))
        i0t_cls = standardize_modality(zero_shot.published, text_mean)
        runs.update({
            "zero-shot CLIP [published: encode_image, 80 OpenAI templates]": published,
            "zero-shot CLIP [official ZeroshotCLIP2: 7 select templates + 'a photo of a {}.']":
                g_clip @ zero_shot.select.T,
        })
        if loc is not None:
            # official dense: logits 100 cos; local pooled by softmax over positions of the scaled logits
            dense = score_images(zero_shot.single, g_clip, loc, local_pool="softmax", pool_temperature=0.01)
            runs["zero-shot CLIP + local [official ZeroshotCLIP_dense]"] = dense["merged"]
        runs.update({
            "zero-shot + I0T post-hoc centring [published protocol]": i0t_img @ i0t_cls.T,
            "zero-shot + SPARC score standardisation [published protocol]":
                torch.as_tensor(sparc_standardize(published)),
        })
    runs.update({
        "zero-shot on CoMC's features [no-pos pool + local max]": out["zs"]["merged"],
        "text classifier, global": out["clf"]["global"],
        "text classifier, global+local": out["clf"]["merged"],
        "text classifier + C3 mean shift, global+local": c3_scores["merged"],
        "text classifier + DeCap projection (alpha 0), global+local": out["decap"]["merged"],
        "CoMC without noise injection": out["no_noise"]["merged"],
        "CoMC mapping, global only": out["comc"]["global"],
        "CoMC (full)": out["comc"]["merged"],
        "CoMC + SPARC score standardisation": torch.as_tensor(sparc_standardize(out["comc"]["merged"])),
        "CoMC, official protocol (selects epoch on test images)": out["official"]["merged"],
    })
    if loc is None:  # a tower without a local branch: drop the rows that need it
        runs = {k: v for k, v in runs.items() if "local" not in k and k not in (
            "CoMC (full)", "CoMC + SPARC score standardisation")}
    order = list(ROWS)
    runs = dict(sorted(runs.items(), key=lambda kv: order.index(kv[0])))
    for name, sc in (extra_scores or {}).items():
        runs[name] = torch.as_tensor(np.asarray(sc))
    t2 = time.perf_counter()
    rows, scores, per_class = [], {}, {}
    for name, sc in runs.items():
        sc = sc.detach().cpu().numpy() if isinstance(sc, torch.Tensor) else np.asarray(sc)
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
                            config=config, seed=seed, models={"comc": comc, "no_noise": no_noise, "c3": c3},
                            selection=selection)


def _weights_as_classifier(weights: torch.Tensor) -> TextClassifier:
    """A (C, D) weight matrix (e.g. zero-shot prompts) as a :class:`TextClassifier`."""
    clf = TextClassifier(int(weights.shape[1]), int(weights.shape[0]))
    with torch.no_grad():
        clf.weight.copy_(weights)
    return clf.eval()
