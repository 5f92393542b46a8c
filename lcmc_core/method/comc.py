"""CoMC as one scikit-learn estimator, the single owner of the method's hyperparameters.

>>> model = CoMC(alpha=0.7, temperature=0.01).fit(text_emb, targets, memory=class_prompts)
>>> scores = model.decision_function(image_global, image_local)        # (N, C) numpy array

Every hyperparameter of the method is declared once, in :class:`CoMC`'s constructor, with its
default (the official value), its type and a one-line help (:func:`hyperparameters` reads them back:
the experiments' parameter tree and the profiles are built from it). The functions below the
estimator (:func:`~lcmc_core.method.mapping.cross_modal_map`, :func:`~lcmc_core.method.mapping.score_images`,
:func:`~lcmc_core.method.classifier.train_text_classifier`) take them as arguments and repeat no default.

``fit`` trains the text-only classifier (the official recipe in
:class:`~lcmc_core.method.classifier.TrainConfig`, noise injection included) on CLIP *text* embeddings and
keeps the text memory of the cross-modal mapping; ``decision_function`` maps image embeddings towards
the text modality and merges the global score with the pooled local scores. Variants of a fitted
estimator (another alpha, temperature, branch, ...) come from :meth:`CoMC.with_params`, which keeps the
trained classifier when only inference hyperparameters change; :meth:`CoMC.from_classifier` adopts a
classifier trained elsewhere (a cache, another recipe, zero-shot prompts).
"""
from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone

from ..checks import check_int
from .classifier import TextClassifier, TrainConfig, train_text_classifier
from .mapping import check_unit_rows, cross_modal_map, score_images

__all__ = ["CoMC", "Hyper", "Hyperparameter", "hyperparameters", "decision_functions"]


class Hyper(NamedTuple):
    """What a hyperparameter of :class:`CoMC` is for, and when it acts (``"inference"``: no retraining needed)."""

    help: str
    stage: str  # "training" or "inference"


class Hyperparameter(NamedTuple):
    """One constructor parameter of :class:`CoMC`: name, type, default (the official value), help and stage."""

    name: str
    type: Any
    default: Any
    help: str
    stage: str


class CoMC(BaseEstimator):
    """CoMC (Liu et al., ICML 2024): a multi-label classifier trained on text, applied to mapped image embeddings.

    Every parameter is a hyperparameter of the method (see :func:`hyperparameters`); the defaults are the
    official code's. Learned attributes after :meth:`fit`: ``classifier_`` (:class:`TextClassifier`),
    ``coef_`` (its (C, D) weight), ``memory_`` (the (M, D) text memory, or None: no mapping),
    ``history_`` (per-epoch loss and learning rate), ``epoch_weights_`` ((E, C, D) weights after every
    epoch, or None), ``n_classes_``, ``n_features_``.
    """

    def __init__(
        self,
        alpha: Annotated[float, Hyper("mapping: weight of the image embedding (1 = no mapping, 0 = DeCap's "
                                      "projection onto the memory)", "inference")] = 0.7,
        temperature: Annotated[float, Hyper("mapping: softmax temperature over the memory (0.01 = CLIP's logit "
                                            "scale 100)", "inference")] = 0.01,
        memory_top_k: Annotated[int | None, Hyper("mapping: only the k most similar memory rows per embedding, "
                                                  "exactly (null: every row)", "inference")] = None,
        local_weight: Annotated[float, Hyper("weight of the pooled local scores in the merged score",
                                             "inference")] = 0.5,
        map_global: Annotated[bool, Hyper("map the global image embedding", "inference")] = True,
        map_local: Annotated[bool, Hyper("map every local image embedding", "inference")] = True,
        classifier: Annotated[TrainConfig, Hyper("the classifier's training recipe: noise injection, loss, "
                                                 "optimiser, schedule", "training")] = TrainConfig(),
        seed: Annotated[int, Hyper("seed of the classifier's initialisation, batch order and noise",
                                   "training")] = 0,
    ):
        self.alpha = alpha
        self.temperature = temperature
        self.memory_top_k = memory_top_k
        self.local_weight = local_weight
        self.map_global = map_global
        self.map_local = map_local
        self.classifier = classifier
        self.seed = seed

    # --- hyperparameters ---------------------------------------------------------------------
    def check_params(self) -> CoMC:
        """Check every hyperparameter's type and range (one-line ``ValueError`` naming it); returns ``self``."""
        from ..checks import check_real
        check_real("CoMC.alpha", self.alpha, 0, 1)
        check_real("CoMC.temperature", self.temperature, 0, low_open=True)
        if self.memory_top_k is not None:
            check_int("CoMC.memory_top_k", self.memory_top_k, 1)
        check_real("CoMC.local_weight", self.local_weight, 0, 1)
        for name in ("map_global", "map_local"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"CoMC.{name}: expected true or false, got {getattr(self, name)!r}")
        if not isinstance(self.classifier, TrainConfig):
            raise ValueError(f"CoMC.classifier: expected a TrainConfig, got {type(self.classifier).__name__}")
        check_int("CoMC.seed", self.seed, 0)
        return self

    def with_params(self, **params) -> CoMC:
        """A copy with other hyperparameters; it stays fitted when only inference hyperparameters change.

        ``classifier`` may be a dict of :class:`TrainConfig` fields to change (``classifier={"noise_std": 0}``).
        Changing a training hyperparameter (``classifier``, ``seed``) returns an unfitted copy: call
        :meth:`fit` on it.
        """
        if isinstance(params.get("classifier"), Mapping):
            import dataclasses
            params["classifier"] = dataclasses.replace(self.classifier, **params["classifier"])
        new = clone(self).set_params(**params)
        stages = {h.name: h.stage for h in hyperparameters()}
        retrain = any(stages[k] == "training" and params[k] != getattr(self, k) for k in params)
        if _is_fitted(self) and not retrain:
            new._adopt(self.classifier_, self.memory_, self.history_, self.epoch_weights_)
        return new.check_params()

    # --- learning ---------------------------------------------------------------------------
    def fit(self, text_emb, targets, memory, *, classnames: list[str] | None = None, val=None,
            progress: bool = False) -> CoMC:
        """Train the classifier on text embeddings (N, D) with {0, 1} targets (N, C); keep ``memory`` (M, D).

        ``memory`` (unit rows, e.g. one class-prompt embedding per class) is required: pass
        ``memory=None`` to choose no mapping at inference (then ``alpha``, ``temperature`` and
        ``memory_top_k`` are unused, and a warning says so unless ``alpha`` is 1). ``val`` (text
        embeddings, targets) is scored after every epoch for monitoring only (never selection).
        """
        self.check_params()
        epochs: list = []
        clf, history = train_text_classifier(text_emb, targets, self.classifier, val=val, seed=self.seed,
                                             progress=progress, classnames=classnames, epoch_weights=epochs)
        return self._adopt(clf, memory, history, torch.stack(epochs) if epochs else None)

    @classmethod
    def from_classifier(cls, trained, memory, /, *, history=(), epoch_weights=None, **params) -> CoMC:
        """A fitted estimator from a classifier ``trained`` elsewhere: a :class:`TextClassifier` or a (C, D) weight.

        ``memory`` as in :meth:`fit` (None: no mapping); ``params`` are the estimator's hyperparameters
        (defaults: the official ones); ``history`` and ``epoch_weights`` as :meth:`fit` records them.
        """
        if not isinstance(trained, TextClassifier):
            weight = torch.as_tensor(np.asarray(trained) if not isinstance(trained, torch.Tensor) else trained)
            if weight.ndim != 2:
                raise ValueError(f"trained: expected a TextClassifier or a (C, D) weight, got shape {tuple(weight.shape)}")
            clf = TextClassifier(int(weight.shape[1]), int(weight.shape[0]))
            with torch.no_grad():
                clf.weight.copy_(weight.float())
            trained = clf
        return cls(**params).check_params()._adopt(trained, memory, history, epoch_weights)

    @classmethod
    def from_official_checkpoint(cls, checkpoint=None, memory=None, **params) -> CoMC:
        """The CoMC authors' released COCO classifier and text memory as a fitted estimator.

        ``checkpoint`` (``model-best.pth.tar``) and ``memory`` (``coco_templates.pt``) default to the
        copies packaged with lcmc (:mod:`lcmc_core.method.official`: SHA-256 checked, loaded without
        executing pickle code). With the default hyperparameters (the official inference settings),
        :meth:`decision_function` is the official test script's score on CLIP RN50 features; classes are
        in the COCO category order. ``official_files_verified_`` records whether both files are the
        released ones.
        """
        from .official import load_official_classifier, load_official_memory, packaged_official_files, verify_official_file
        files = packaged_official_files()
        checkpoint = files.classifier if checkpoint is None else checkpoint
        memory = files.memory if memory is None else memory
        model = cls.from_classifier(load_official_classifier(checkpoint), load_official_memory(memory), **params)
        import warnings
        with warnings.catch_warnings():  # the loaders above already warned about a file that is not the released one
            warnings.simplefilter("ignore")
            model.official_files_verified_ = (verify_official_file(checkpoint, "classifier")
                                              and verify_official_file(memory, "memory"))
        return model

    def _adopt(self, clf: TextClassifier, memory, history, epoch_weights) -> CoMC:
        """Set the learned attributes from a trained classifier and a memory (checked: unit rows, matching D)."""
        self.classifier_ = clf.eval()
        self.coef_ = clf.weight.detach()
        self.history_ = list(history)
        self.epoch_weights_ = epoch_weights
        self.n_classes_, self.n_features_ = clf.num_classes, clf.dim
        if memory is not None:
            memory = torch.as_tensor(np.asarray(memory)) if not isinstance(memory, torch.Tensor) else memory
            if memory.ndim != 2 or memory.shape[1] != self.n_features_ or memory.shape[0] == 0:
                raise ValueError(f"memory: expected an (M, {self.n_features_}) matrix with M >= 1, got shape "
                                 f"{tuple(memory.shape)}")
            memory = memory.detach().float()
            check_unit_rows(memory, "memory")
        elif self.alpha != 1.0:
            import warnings
            warnings.warn(f"CoMC: memory=None, so nothing is mapped: alpha={self.alpha}, temperature={self.temperature} "
                          f"and memory_top_k={self.memory_top_k} are unused", UserWarning, stacklevel=3)
        self.memory_ = memory
        return self

    def _check_fitted(self) -> None:
        if not _is_fitted(self):
            raise RuntimeError("this CoMC instance is not fitted yet: call fit(text_emb, targets, memory) first")

    # --- inference ----------------------------------------------------------------------------
    def scoring_options(self) -> dict:
        """The arguments of :func:`~lcmc_core.method.mapping.score_images` this estimator scores with."""
        self._check_fitted()
        memory = None if self.alpha == 1.0 else self.memory_   # alpha 1 maps nothing
        return dict(memory=memory, temperature=self.temperature, alpha=self.alpha,
                    local_weight=self.local_weight, map_global=self.map_global, map_local=self.map_local,
                    top_k=self.memory_top_k)

    def mapping_transforms(self) -> tuple:
        """``(global_fn, local_fn)``: this estimator's mapping of global / local embeddings (None where nothing is
        mapped), for scoring another model's classifier on mapped embeddings (e.g. TaI-DPT + CoMC mapping)."""
        self._check_fitted()
        if self.memory_ is None or self.alpha == 1.0:
            return None, None

        def mapped(x):
            return cross_modal_map(x, self.memory_.to(x.device), self.temperature, self.alpha, top_k=self.memory_top_k)

        return (mapped if self.map_global else None), (mapped if self.map_local else None)

    def scores(self, global_emb, local_emb=None, **options) -> dict:
        """The score dict of :func:`~lcmc_core.method.mapping.score_images`: ``global``, ``local``, ``merged`` (tensors).

        Image embeddings must be L2-normalised (a one-line error names the one that is not); ``options``
        are further arguments of ``score_images`` (``global_transform``, ``image_chunk``, ``device``, ...).
        """
        options = {**self.scoring_options(), **options}
        return score_images(self.coef_, global_emb, local_emb, check_unit=True, **options)

    def decision_function(self, global_emb, local_emb=None) -> np.ndarray:
        """Scores (N, C) of images: the mapped global score merged with the pooled mapped local score."""
        return self.scores(global_emb, local_emb)["merged"].detach().cpu().numpy()

    def predict(self, global_emb, local_emb=None, k: int = 3, threshold: float = 0.0) -> np.ndarray:
        """Multi-hot predictions (N, C): each image's top-``k`` classes whose score is at least ``threshold``."""
        scores = self.decision_function(global_emb, local_emb)
        k = check_int("k", k, 1, scores.shape[1])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        pred = np.zeros_like(scores, dtype=np.int8)
        np.put_along_axis(pred, top, 1, axis=1)
        return pred * (scores >= threshold)


def _is_fitted(model: CoMC) -> bool:
    return hasattr(model, "classifier_")


def hyperparameters() -> list[Hyperparameter]:
    """Every hyperparameter of :class:`CoMC`, read from its constructor: name, type, default, help, stage."""
    hints = typing.get_type_hints(CoMC.__init__, include_extras=True)
    out = []
    for name, param in inspect.signature(CoMC.__init__).parameters.items():
        if name == "self":
            continue
        hint = hints[name]
        meta = next(m for m in hint.__metadata__ if isinstance(m, Hyper))
        out.append(Hyperparameter(name, typing.get_args(hint)[0], param.default, meta.help, meta.stage))
    return out


_SCORE_ENTRIES = ("global", "local", "merged", "bound")  # the keys of score_images' dicts


def decision_functions(models: Mapping[str, CoMC], global_emb, local_emb=None, *,
                       keep: Mapping[str, Sequence[str]] | None = None, **options) -> dict[str, dict]:
    """Score several fitted models in as few passes over the (streamed) local embeddings as their settings allow.

    Models with the same inference hyperparameters and memory share one pass (each chunk is read
    and mapped once, then every classifier applied). Returns ``name -> score dict`` as
    :meth:`CoMC.scores`; ``keep`` (``name -> keys``, e.g. ``{"zs": ["merged"]}``) keeps only those
    entries of a model's dict, dropping the other (N, C) matrices as soon as its pass ends.
    """
    keep = dict(keep or {})
    unknown = sorted(set(keep) - set(models))
    if unknown:
        raise ValueError(f"keep: names {unknown} are not among the models {sorted(models)}")
    for name, keys in keep.items():
        if isinstance(keys, str) or not set(keys) <= set(_SCORE_ENTRIES):
            raise ValueError(f"keep[{name!r}]: expected a list of entries among {_SCORE_ENTRIES}, got {keys!r}")
    groups: dict[tuple, dict[str, CoMC]] = {}
    for name, model in models.items():
        opts = model.scoring_options()
        memory = opts.pop("memory")
        key = (tuple(sorted(opts.items())), id(memory))
        groups.setdefault(key, {})[name] = model
    out: dict[str, dict] = {}
    for members in groups.values():
        first = next(iter(members.values()))
        scored = score_images({name: m.coef_ for name, m in members.items()}, global_emb, local_emb,
                              **first.scoring_options(), check_unit=True, **options)
        for name, res in scored.items():
            out[name] = {k: v for k, v in res.items() if k in keep.get(name, res)}
        del scored
    return {name: out[name] for name in models}

