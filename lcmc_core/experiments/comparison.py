"""The whole CoMC method, its baselines and its training-free peers on one dataset and one CLIP, in one call.

:func:`run_comparison` builds (or reads) the text corpus, encodes it with the CLIP text tower,
trains the text-only classifier (and the variants the baselines need), extracts global and local
image features, and scores every method with the same functions, returning a pandas table.
Every row names its protocol (:mod:`lcmc_core.experiments.rows` holds one line per row; the notebooks
print it):

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
means and paired intervals: :mod:`lcmc_core.experiments.seeds`.

Every CoMC row comes from one fitted :class:`~lcmc_core.method.comc.CoMC` (the run's estimator, its
hyperparameters taken from the parameters' ``method`` group) and its variants
(:meth:`~lcmc_core.method.comc.CoMC.with_params`), so every hyperparameter reaches every row that
uses it; the comparison's own settings (:class:`ComparisonSettings`: which memory, which global
pooling, how the training texts are built, which rows) and the evaluation's conventions
(:class:`Evaluation`) are separate.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..cache import cache_dir, load_torch, save_torch_atomic
from ..checks import check_choice, check_int, check_real
from ..errors import WriteError
from ..images.features import EveryNthRow, ImageFeatures, encode_texts_cached, extract_image_features
from ..images.models import LoadedCLIP
from ..memory import release_freed_memory
from ..method.classifier import TextClassifier, TrainConfig, train_text_classifier
from ..method.comc import CoMC, decision_functions
from ..method.mapping import embedding_mean, mean_shift, score_images
from ..method.metrics import average_precision_per_class, bootstrap_map_ci, f1_at_top_k, mean_average_precision
from ..method.peers import DECAP_ALPHA, i0t_scores, image_text_scores, sparc_scores, sparc_standardize
from ..method.zero_shot import text_memory, zero_shot_classifier
from ..text import corpus as corpus_mod
from ..text.label_sets import get_label_set
from ..text.labels import LabelSet
from ..text.prompts import CLASS_PROMPT, TEMPLATE_SETS, prompt_texts
from .rows import ROW_INFO, Row

__all__ = ["ComparisonSettings", "Evaluation", "ComparisonResult", "ZeroShotWeights", "SparcPrompts",
           "sparc_prompt_embeddings", "check_sparc_fits", "released_checkpoint_for", "SPARC_SOURCES", "build_training_corpus",
           "class_prompt_embeddings", "zero_shot_weights", "zero_shot_protocol_weights", "evaluate_scores",
           "train_classifier", "fit_cached", "run_comparison", "compare_on_embeddings", "select_epoch_on_test",
           "METRIC_NOTE", "ZERO_SHOT_PROTOCOL", "GAP_PROTOCOL", "DENSE_LOCAL_WEIGHT", "DENSE_POOL_TEMPERATURE"]

# Bump when classifier training changes (invalidates cached classifiers).
CLASSIFIER_CODE_VERSION = "2"

#: The zero-shot protocol of every "zero-shot mAP" outside the main table (toy CLIP table, ablations).
ZERO_SHOT_PROTOCOL = ("published protocol: CLIP's encode_image pooling (with positional embedding), "
                      "class weights = mean of OpenAI's 80 ImageNet templates")
#: The gap protocol of every gap number: the embeddings CoMC scores.
GAP_PROTOCOL = ("gap = |mean image - mean text| of L2-normalised embeddings, images pooled without positional "
                "embedding (CoMC's global feature), texts = matched captions")
#: The official ZeroshotCLIP_dense baseline: global and local scores merged 0.5 / 0.5, local scores pooled by a
#: softmax over positions of the logit-scaled (100) cosines. Constants of that baseline, not CoMC's settings.
DENSE_LOCAL_WEIGHT = 0.5
DENSE_POOL_TEMPERATURE = 0.01

#: Where SPARC's compound prompts come from (``auto`` picks one from the run, see :class:`ComparisonSettings`).
SPARC_SOURCES = ("auto", "toy-world", "llm", "template", "none")

#: Most bootstrap resamples: percentile intervals are stable long before (1,000 is the convention).
MAX_BOOT = 100_000

METRIC_NOTE = ("mAP: TaI-DPT/CoMC convention (per class, precision at each positive's rank, averaged); "
               "CF1/OF1: ML-GCN definition, a label is "
               "predicted when it is among the image's top 3 scores and its raw score >= 0, i.e. sigmoid >= 0.5 "
               "(per-class precision/recall averaged = C, pooled = O); zero-shot cosine scores are all "
               "positive, so for them this is plain top-3.")


@dataclass(frozen=True)
class ComparisonSettings:
    """How the comparison is built around the estimator (``comparison.*`` of the run's parameters)."""

    memory: str = field(default="prompts", metadata={"help": "text memory: prompts (one per class, official) | corpus"})
    global_pool: str = field(default="no-pos", metadata={"help": "global image embedding: no-pos (official) | clip"})
    k_range: tuple[int, int] = field(default=(1, 5), metadata={"help": "labels requested per sentence (low, high)"})
    prompt_copies: int = field(default=9, metadata={"help": "copies of the class prompt per class in the training texts"})
    prompt_templates: str = field(default="openai", metadata={
        "help": "templates of the training prompts: openai (official: 9 copies + OpenAI's 80) | own | none"})
    corpus_labels: str = field(default="extracted", metadata={
        "help": "labels of a generated sentence: extracted (the classes its text names) | requested (official)"})
    taidpt: bool = field(default=True, metadata={"help": "add the TaI-DPT rows (prompt tuning on the same corpus)"})
    sparc_prompts: str = field(default="auto", metadata={
        "help": "SPARC's compound prompts: auto (toy-world in the toy world, llm with an LLM corpus, else template) | "
                "toy-world | llm | template | none (no SPARC rows)"})
    sparc_prompts_per_class: int = field(default=15, metadata={
        "help": "compound prompts per class (toy-world, template: that many x C in all; llm: asked per class)"})
    released_checkpoint: bool = field(default=False, metadata={
        "help": "add the CoMC authors' released COCO checkpoint as a row (coco2014 with RN50 only)"})

    def __post_init__(self):
        check_choice("comparison.memory", self.memory, ("prompts", "corpus"))
        check_choice("comparison.global_pool", self.global_pool, ("no-pos", "clip"))
        lo, hi = self.k_range
        check_int("comparison.k_range[0]", lo, 1)
        check_int("comparison.k_range[1]", hi, lo)
        check_int("comparison.prompt_copies", self.prompt_copies, 0)
        check_choice("comparison.prompt_templates", self.prompt_templates,
                     tuple(k for k in TEMPLATE_SETS if k != "select"))
        check_choice("comparison.corpus_labels", self.corpus_labels, ("extracted", "requested"))
        check_choice("comparison.sparc_prompts", self.sparc_prompts, SPARC_SOURCES)
        check_int("comparison.sparc_prompts_per_class", self.sparc_prompts_per_class, 1, 100)


@dataclass(frozen=True)
class Evaluation:
    """The evaluation's conventions (``evaluation.*`` of the run's parameters)."""

    difficult: str = field(default="negative", metadata={"help": "VOC difficult labels: negative | ignore"})
    f1_threshold: float | None = field(default=0.0, metadata={"help": "raw-score threshold of CF1/OF1 (null: top-3 only)"})
    n_boot: int = field(default=1000, metadata={"help": f"bootstrap resamples (0: none; <= {MAX_BOOT:,})"})

    def __post_init__(self):
        check_choice("evaluation.difficult", self.difficult, ("negative", "ignore"))
        if self.f1_threshold is not None:
            check_real("evaluation.f1_threshold", self.f1_threshold)
        check_int("evaluation.n_boot", self.n_boot, 0, MAX_BOOT)


@dataclass
class ComparisonResult:
    """The comparison table, every row's scores, per-class AP, and the fitted estimators behind the CoMC rows."""

    table: pd.DataFrame
    scores: dict[str, np.ndarray]              # keyed by Row (a str) or an extra row's name
    per_class_ap: pd.DataFrame
    labels: np.ndarray
    estimators: dict[str, CoMC]                # "comc" (the run's estimator), "no_noise", "c3"
    corpus: corpus_mod.Corpus
    image_features: ImageFeatures
    memory: torch.Tensor
    text_emb: torch.Tensor
    settings: ComparisonSettings
    evaluation: Evaluation
    seed: int = 0
    #: the official protocol's choice: ``{"epoch": 0-based, "selection_map": mAP on test[0::10] per epoch}``
    selection: dict = field(default_factory=dict)

    @property
    def estimator(self) -> CoMC:
        """The run's fitted CoMC estimator (the "CoMC (full)" row)."""
        return self.estimators["comc"]

    def map_of(self, scores) -> float:
        """mAP of (N, C) scores on this result's test labels, with its evaluation's conventions."""
        s = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
        return mean_average_precision(s, self.labels, self.evaluation.difficult)


def build_training_corpus(label_set: LabelSet | str, settings: ComparisonSettings | None = None, *, size: int = 20000,
                          seed: int = 0, generator: str = "template", path=None) -> corpus_mod.Corpus:
    """The classifier's training texts: generated (or, with ``path``, read) sentences plus the single-label prompts."""
    settings = settings or ComparisonSettings()
    ls = get_label_set(label_set)
    if path:
        base = corpus_mod.read_corpus(path, ls).records()
    else:
        base = corpus_mod.build_corpus(ls, size, seed, generator=generator, k_range=settings.k_range)
    if settings.corpus_labels == "requested":  # the official generator trains on the labels it asked for
        base = [{**{k: v for k, v in r.items() if k != "label_ids"}, "labels": r["requested"]}
                if r.get("requested") else r for r in base]
    augmentation = corpus_mod.prompt_augmentation(ls, copies=settings.prompt_copies, templates=settings.prompt_templates)
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
class SparcPrompts:
    """SPARC's prompts, embedded: the simple prompts' class weights, the compound prompts and the classes each names."""

    simple: torch.Tensor              # (C, D): each class's bare name, embedded as written (SPARC's simple prompt)
    compound: torch.Tensor            # (P, D)
    class_compound: list[list[int]]   # for each class, the compound prompts naming it
    texts: list[str]                  # the P compound prompts
    source: str                       # where they come from (toy-world, llm, template)


def sparc_prompt_embeddings(loaded: LoadedCLIP, label_set: LabelSet | str, prompts: list[str], source: str,
                            cache=None) -> SparcPrompts:
    """Embed SPARC's simple prompts (the bare class names, as its official code) and ``prompts``; assign them to classes."""
    from ..text.compound import assign_compound_prompts
    ls = get_label_set(label_set)
    if not prompts:
        from ..errors import ConfigError
        raise ConfigError(f"SPARC: no compound prompts from source {source!r}; set comparison.sparc_prompts=none "
                          f"to leave SPARC out")
    return SparcPrompts(simple=encode_texts_cached(loaded, list(ls.prompt_names), cache, progress=False),
                        compound=encode_texts_cached(loaded, list(prompts), cache, progress=False),
                        class_compound=assign_compound_prompts(ls, prompts), texts=list(prompts), source=source)


def check_sparc_fits(sparc: SparcPrompts, n_images: int, label_set: LabelSet | str) -> None:
    """Refuse, before any training, a test set too small for SPARC's per-class PCA (N > k + 1, as its official code)."""
    from ..errors import ConfigError
    k, cls = max((len(cols), c) for c, cols in enumerate(sparc.class_compound))
    if n_images <= k + 1:
        raise ConfigError(f"comparison.sparc_prompts_per_class: SPARC needs more test images than a class's compound "
                          f"prompts + 1 (its official code asserts N > k + 1): class "
                          f"{get_label_set(label_set).classnames[cls]!r} is named by {k} compound prompts, the test set "
                          f"has {n_images} images; lower comparison.sparc_prompts_per_class, add test images, or set "
                          f"comparison.sparc_prompts=none")


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


def evaluate_scores(scores, labels, evaluation: Evaluation | None = None, seed: int = 0) -> dict:
    """mAP, its bootstrap 95% interval and CF1/OF1@3 of an N x C score matrix."""
    ev = evaluation or Evaluation()
    scores = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    out = {"mAP": mean_average_precision(scores, labels, ev.difficult)}
    if ev.n_boot:
        out["CI low"], out["CI high"] = bootstrap_map_ci(scores, labels, n_boot=ev.n_boot, seed=seed,
                                                         difficult=ev.difficult)
    f1 = f1_at_top_k(scores, labels, k=3, threshold=ev.f1_threshold)
    out["CF1@3"], out["OF1@3"] = f1["CF1"], f1["OF1"]
    return out


def train_classifier(text_emb: torch.Tensor, targets, config: TrainConfig, seed: int = 0,
                     classnames=None, cache=None, use_cache: bool = True, input_shift=None,
                     input_scale=None):
    """Train the text-only classifier with a fixed number of epochs (no model selection); cached on disk.

    ``input_shift`` / ``input_scale`` standardise the texts batch by batch (see
    :func:`~lcmc_core.method.classifier.train_text_classifier`); they are part of the cache key.
    Returns ``(classifier, history, epoch_weights)``: the (E, C, D) weights after every epoch are
    kept in the cache entry (what the official protocol selects from).
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
            return clf.eval(), blob["history"], blob["epoch_weights"]
    epochs: list = []
    clf, history = train_text_classifier(text_emb, torch.as_tensor(targets, dtype=torch.float32),
                                         config, seed=seed, classnames=classnames, input_shift=input_shift,
                                         input_scale=input_scale, epoch_weights=epochs)
    stacked = torch.stack(epochs)
    if path is not None:
        try:
            save_torch_atomic({"state_dict": clf.state_dict(), "history": history, "epoch_weights": stacked}, path)
        except WriteError as exc:   # a read-only shared cache: the result stands, it is just not kept
            import warnings
            warnings.warn(f"the trained classifier is not cached: {exc}", UserWarning, stacklevel=2)
    return clf, history, stacked


def fit_cached(estimator: CoMC, text_emb: torch.Tensor, targets, memory, *, classnames=None, cache=None,
               input_shift=None) -> CoMC:
    """``estimator.fit(text_emb, targets, memory)`` through the classifier cache: the same weights, trained once.

    Returns a fitted copy of ``estimator`` (its hyperparameters unchanged). ``input_shift`` trains on
    mean-centred texts (the C3 row).
    """
    estimator.check_params()
    clf, history, epochs = train_classifier(text_emb, targets, estimator.classifier, estimator.seed, classnames, cache,
                                            input_shift=input_shift)
    return CoMC.from_classifier(clf, memory, history=history, epoch_weights=epochs, **estimator.get_params())


def run_comparison(loaded: LoadedCLIP, dataset, estimator: CoMC | None = None, *,
                   settings: ComparisonSettings | None = None, evaluation: Evaluation | None = None,
                   corpus: corpus_mod.Corpus | None = None, corpus_size: int = 20000, cache=None,
                   progress: bool = True, image_features: ImageFeatures | None = None, batch_size: int = 64,
                   num_workers: int = 0, extra_rows=None, sparc_prompts: tuple[list[str], str] | None = None
                   ) -> ComparisonResult:
    """Run CoMC, every baseline and every peer on ``dataset`` with ``loaded`` and return the comparison table.

    ``estimator`` is the (unfitted) CoMC whose hyperparameters and seed the CoMC rows use (default:
    the official ones, seed 0). ``corpus`` is the training corpus (prompt augmentation included, see
    :func:`build_training_corpus`); by default a template corpus of ``corpus_size`` sentences from the
    estimator's seed. ``extra_rows(corpus, text_emb, feats, estimator) -> {row: (N, C) scores}`` adds rows
    scored like the others (TaI-DPT's, see :mod:`lcmc_core.method.taidpt`); ``estimator`` there is the
    fitted CoMC. ``sparc_prompts`` = ``(compound prompts, their source)`` adds the SPARC rows.
    """
    estimator = estimator if estimator is not None else CoMC()
    settings = settings or ComparisonSettings()
    ls = get_label_set(dataset.label_set)
    corpus = corpus if corpus is not None else build_training_corpus(ls, settings, size=corpus_size,
                                                                     seed=estimator.seed)
    text_emb = encode_texts_cached(loaded, corpus.texts, cache, progress=progress)
    prompt_emb = class_prompt_embeddings(loaded, ls, cache)
    zs = zero_shot_protocol_weights(loaded, ls, cache)
    feats = image_features or extract_image_features(loaded, dataset, local=True, global_pool=settings.global_pool,
                                                     cache=cache, progress=progress, batch_size=batch_size,
                                                     num_workers=num_workers)
    sparc = sparc_prompt_embeddings(loaded, ls, *sparc_prompts, cache=cache) if sparc_prompts else None
    if sparc is not None:
        check_sparc_fits(sparc, len(dataset.labels), ls)
    return compare_on_embeddings(corpus, text_emb, prompt_emb, zs, feats, dataset.labels, estimator,
                                 settings=settings, evaluation=evaluation, cache=cache, extra_rows=extra_rows, sparc=sparc)


def select_epoch_on_test(estimator: CoMC, feats: ImageFeatures, labels, difficult: str = "negative",
                         step: int = 10) -> dict:
    """The official trainer's model selection: the epoch whose full-CoMC mAP on ``test[0::step]`` is highest.

    Scores every epoch's weights (``estimator.epoch_weights_``) with the estimator's mapping. Returns
    ``{"epoch": 0-based index of the first best epoch, "selection_map": [mAP per epoch], "step": step}``;
    the official code validates COCO on every tenth test image (``step=10``).
    """
    idx = np.arange(0, len(labels), step)
    g = feats.global_[idx]
    loc = feats.local                                       # a FeatureFile is read a block of those rows at a time
    if loc is not None:
        loc = loc[::step] if isinstance(loc, torch.Tensor) else EveryNthRow(loc, step)
    scored = score_images({e: w for e, w in enumerate(estimator.epoch_weights_)}, g, loc,
                          **estimator.scoring_options())
    y = np.asarray(labels)[idx]
    maps = [mean_average_precision(scored[e]["merged"].numpy(), y, difficult) for e in range(len(scored))]
    return {"epoch": int(np.argmax(maps)), "selection_map": [float(m) for m in maps], "step": step}


def _fit_estimators(estimator: CoMC, corpus, text_emb, memory, cache) -> dict[str, CoMC]:
    """The run's estimator and the trained variants the baselines need: without noise, and C3's (centred texts)."""
    fit = dict(classnames=corpus.label_set.classnames, cache=cache)
    comc = fit_cached(estimator, text_emb, corpus.targets, memory, **fit)
    no_noise = fit_cached(estimator.with_params(classifier={"noise_std": 0.0}), text_emb, corpus.targets, memory, **fit)
    # C3: the classifier trained on mean-centred (re-normalised) texts, no mapping (images are centred instead)
    c3 = fit_cached(estimator.with_params(alpha=1.0), text_emb, corpus.targets, None,
                    input_shift=text_emb.detach().float().mean(0), **fit)
    return {"comc": comc, "no_noise": no_noise, "c3": c3}


def _zero_shot_rows(zero_shot: ZeroShotWeights, feats: ImageFeatures, text_emb: torch.Tensor,
                    sparc: SparcPrompts | None = None) -> dict:
    """The rows scored on CLIP's own image pooling: the zero-shot protocols and the peers built on them."""
    g_clip, loc = feats.global_clip, feats.local
    if g_clip is None:
        return {}
    published = g_clip @ zero_shot.published.T
    runs = {Row.ZERO_SHOT_PUBLISHED: published, Row.ZERO_SHOT_SELECT: g_clip @ zero_shot.select.T}
    if loc is not None:
        runs[Row.ZERO_SHOT_DENSE] = score_images(zero_shot.single, g_clip, loc, local_weight=DENSE_LOCAL_WEIGHT,
                                                 local_pool="softmax", pool_temperature=DENSE_POOL_TEMPERATURE)["merged"]
    runs[Row.I0T] = i0t_scores(g_clip, zero_shot.published, g_clip.mean(0), text_emb.detach().float().mean(0))
    runs[Row.SPARC_STANDARDISATION] = torch.as_tensor(sparc_standardize(published))
    if sparc is not None:
        runs[Row.SPARC] = torch.as_tensor(sparc_scores(published, *_sparc_prompt_scores(sparc, g_clip)))
    release_freed_memory()   # the (N, D) and (N, C) temporaries, else kept by malloc (~1 GB at NUS-WIDE size)
    return runs


def _sparc_prompt_scores(sparc: SparcPrompts, g_clip: torch.Tensor) -> tuple:
    """``(simple_scores, compound_scores, class_compound)`` of :func:`~lcmc_core.method.peers.sparc_scores`."""
    return g_clip @ sparc.simple.T, image_text_scores(g_clip, sparc.compound), sparc.class_compound


def _estimator_rows(fitted: dict[str, CoMC], zero_shot: ZeroShotWeights, feats: ImageFeatures, labels,
                    evaluation: Evaluation, sparc: SparcPrompts | None = None,
                    released: CoMC | None = None) -> tuple[dict, dict]:
    """The rows of the fitted estimators and their variants (and the official protocol's epoch choice)."""
    comc, no_noise, c3 = fitted["comc"], fitted["no_noise"], fitted["c3"]
    g, loc = feats.global_, feats.local
    selection = select_epoch_on_test(comc, feats, labels, evaluation.difficult)
    official = CoMC.from_classifier(comc.epoch_weights_[selection["epoch"]], comc.memory_, **comc.get_params())
    zero = CoMC.from_classifier(zero_shot.published, None, **{**comc.get_params(), "alpha": 1.0})
    out = decision_functions({"zs": zero, "clf": comc.with_params(alpha=1.0), "comc": comc, "no_noise": no_noise,
                              "decap": comc.with_params(alpha=DECAP_ALPHA), "official": official}, g, loc,
                             keep={"zs": ["merged"], "clf": ["global", "merged"], "comc": ["global", "merged"],
                                   "no_noise": ["merged"], "decap": ["merged"], "official": ["merged"]})
    mu_l = embedding_mean(loc) if loc is not None else None
    mu_g = g.mean(0)
    c3_merged = c3.scores(g, loc, global_transform=lambda x: mean_shift(x, mu_g),
                          local_transform=(lambda x: mean_shift(x, mu_l)) if loc is not None else None)["merged"]
    runs = {
        Row.ZERO_SHOT_OWN_FEATURES: out["zs"]["merged"],
        Row.CLASSIFIER_GLOBAL: out["clf"]["global"],
        Row.CLASSIFIER: out["clf"]["merged"],
        Row.C3: c3_merged,
        Row.DECAP: out["decap"]["merged"],
        Row.COMC_NO_NOISE: out["no_noise"]["merged"],
        Row.COMC_GLOBAL: out["comc"]["global"],
        Row.COMC: out["comc"]["merged"],
        Row.COMC_SPARC_STANDARDISATION: torch.as_tensor(sparc_standardize(out["comc"]["merged"])),
        Row.COMC_OFFICIAL_PROTOCOL: out["official"]["merged"],
    }
    if released is not None:
        runs[Row.COMC_RELEASED] = released.scores(g, loc)["merged"]
    del g, out
    feats.release()   # the global features are done with; SPARC's fusion reads CLIP's own pooling instead
    g_clip = feats.global_clip if sparc is not None else None
    if g_clip is not None:
        runs[Row.COMC_SPARC_FUSION] = torch.as_tensor(
            sparc_scores(runs[Row.COMC], *_sparc_prompt_scores(sparc, g_clip)))
    del g_clip
    feats.release()
    release_freed_memory()
    return runs, selection


def _evaluate_rows(runs: dict, labels, classnames, evaluation: Evaluation, seed: int):
    """The table (index: display names), every row's scores as arrays, and per-class AP."""
    rows, scores, per_class = [], {}, {}
    for name, sc in runs.items():
        sc = sc.detach().cpu().numpy() if isinstance(sc, torch.Tensor) else np.asarray(sc)
        scores[name] = sc
        rows.append({"method": str(name), **evaluate_scores(sc, labels, evaluation, seed)})
        per_class[str(name)] = average_precision_per_class(sc, labels, evaluation.difficult)
        release_freed_memory()   # each row's sorting and resampling buffers
    table = pd.DataFrame(rows).set_index("method")
    return table, scores, pd.DataFrame(per_class, index=pd.Index(classnames, name="class"))


def released_checkpoint_for(label_set: LabelSet | str, dim: int) -> CoMC:
    """The authors' released COCO estimator, after checking it fits: the coco2014 classes and RN50's 1024 dimensions."""
    from ..errors import ConfigError
    ls = get_label_set(label_set)
    if ls.classnames != get_label_set("coco2014").classnames or dim != 1024:
        raise ConfigError(f"comparison.released_checkpoint: the authors' released classifier scores the 80 COCO 2014 "
                          f"classes on CLIP RN50's 1024-dimensional features; this run has {ls.name} ({len(ls)} classes) "
                          f"and {dim} dimensions: set it only with dataset coco2014 and clip_model RN50-quickgelu")
    return CoMC.from_official_checkpoint()


def compare_on_embeddings(corpus: corpus_mod.Corpus, text_emb: torch.Tensor, prompt_emb: torch.Tensor,
                          zero_shot, feats: ImageFeatures, labels, estimator: CoMC | None = None, *,
                          settings: ComparisonSettings | None = None, evaluation: Evaluation | None = None,
                          cache=None, timings: dict | None = None, extra_rows=None,
                          sparc: SparcPrompts | None = None) -> ComparisonResult:
    """The comparison from embeddings alone: fit the estimators on ``text_emb``, score every row on ``feats``.

    ``zero_shot`` is a :class:`ZeroShotWeights` (or one (C, D) matrix, used for every protocol).
    Rows needing CLIP's own pooling are dropped when ``feats.global_clip`` is None, rows needing the
    local branch when ``feats.local`` is None (:data:`~lcmc_core.experiments.rows.ROW_INFO`).
    ``extra_rows`` as in :func:`run_comparison`; ``sparc`` adds the SPARC rows; the settings'
    ``released_checkpoint`` the authors' released COCO checkpoint. ``timings``, if given, receives the
    seconds spent training, scoring and evaluating.
    """
    estimator = estimator if estimator is not None else CoMC()
    settings, evaluation = settings or ComparisonSettings(), evaluation or Evaluation()
    if not isinstance(zero_shot, ZeroShotWeights):
        zero_shot = ZeroShotWeights(zero_shot, zero_shot, zero_shot)
    t0 = time.perf_counter()
    memory = text_memory(settings.memory, prompt_emb, text_emb)
    fitted = _fit_estimators(estimator, corpus, text_emb, memory, cache)
    t1 = time.perf_counter()
    released = released_checkpoint_for(corpus.label_set, text_emb.shape[1]) if settings.released_checkpoint else None
    # Each stage reads the global features it needs (feats on disk: read on first use) and releases
    # them after, so CLIP's own pooling and the run's pooling are never both held beside every row.
    runs = {**_zero_shot_rows(zero_shot, feats, text_emb, sparc)}
    feats.release()
    trained, selection = _estimator_rows(fitted, zero_shot, feats, labels, evaluation, sparc, released)
    runs.update(trained)
    runs = {row: runs[row] for row in Row if row in runs and (feats.local is not None or not ROW_INFO[row].needs_local)}
    if extra_rows is not None:
        runs.update({name: torch.as_tensor(np.asarray(sc))
                     for name, sc in extra_rows(corpus, text_emb, feats, fitted["comc"]).items()})
        feats.release()
    t2 = time.perf_counter()
    table, scores, per_class_ap = _evaluate_rows(runs, labels, corpus.label_set.classnames, evaluation,
                                                 estimator.seed)
    if timings is not None:
        timings.update(train_s=t1 - t0, score_s=t2 - t1, evaluate_s=time.perf_counter() - t2)
    return ComparisonResult(table=table, scores=scores, per_class_ap=per_class_ap, labels=np.asarray(labels),
                            estimators=fitted, corpus=corpus, image_features=feats, memory=memory, text_emb=text_emb,
                            settings=settings, evaluation=evaluation, seed=estimator.seed, selection=selection)
