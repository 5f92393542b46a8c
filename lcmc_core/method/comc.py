"""CoMC as one estimator, shaped like scikit-learn's: hyperparameters in the constructor, ``fit``, learned attributes ``_``.

>>> model = CoMC(alpha=0.7, temperature=0.01).fit(text_emb, targets, memory=class_prompts)
>>> scores = model.decision_function(image_global, image_local)        # (N, C) numpy array

``fit`` trains the text-only classifier (:func:`~lcmc_core.method.classifier.train_text_classifier`,
the official recipe in :class:`~lcmc_core.method.classifier.TrainConfig`) on CLIP *text* embeddings
and keeps the text memory of the cross-modal mapping; ``decision_function`` maps image embeddings
towards the text modality (:func:`~lcmc_core.method.mapping.cross_modal_map`) and merges the global
score with the pooled local scores (:func:`~lcmc_core.method.mapping.score_images`). Everything is
tensors in, tensors (or arrays) out: models, datasets and caches are the runner's business.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..checks import check_int
from .classifier import TextClassifier, TrainConfig, train_text_classifier
from .mapping import score_images

__all__ = ["CoMC", "decision_functions", "replace"]


class CoMC:
    """CoMC (Liu et al., ICML 2024): a multi-label classifier trained on text, applied to mapped image embeddings.

    Parameters (official values as defaults): ``alpha`` (weight of the image embedding in the
    mapping; 1 = no mapping, 0 = DeCap's projection), ``temperature`` of the mapping's softmax,
    ``local_weight`` of the pooled local scores in the merge, ``map_global`` / ``map_local``
    (which embeddings are mapped), ``top_k`` (map with the exact top-k memory rows per query;
    None = every row), ``classifier`` (:class:`TrainConfig`), ``seed``.

    Learned attributes after :meth:`fit`: ``classifier_`` (:class:`TextClassifier`),
    ``coef_`` (its (C, D) weight as a tensor), ``memory_`` (the (M, D) text memory), ``history_``
    (per-epoch loss and learning rate), ``n_classes_``, ``n_features_``.
    """

    def __init__(self, alpha: float = 0.7, temperature: float = 0.01, local_weight: float = 0.5,
                 map_global: bool = True, map_local: bool = True, top_k: int | None = None,
                 classifier: TrainConfig | None = None, seed: int = 0):
        self.alpha = alpha
        self.temperature = temperature
        self.local_weight = local_weight
        self.map_global = map_global
        self.map_local = map_local
        self.top_k = top_k
        self.classifier = classifier if classifier is not None else TrainConfig()
        self.seed = seed

    # --- scikit-learn's parameter protocol ------------------------------------------------------
    _PARAMS = ("alpha", "temperature", "local_weight", "map_global", "map_local", "top_k", "classifier", "seed")

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """The constructor's parameters as a dict."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params) -> CoMC:
        """Set constructor parameters (unknown names are an error); returns ``self``."""
        unknown = sorted(set(params) - set(self._PARAMS))
        if unknown:
            raise ValueError(f"CoMC.set_params: unknown parameters {unknown}; expected some of {list(self._PARAMS)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.get_params().items() if v != CoMC().get_params()[k]}
        return f"CoMC({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    # --- learning ---------------------------------------------------------------------------
    def fit(self, text_emb, targets, memory=None, *, classnames: list[str] | None = None,
            val=None, progress: bool = False) -> CoMC:
        """Train the classifier on text embeddings (N, D) with {0, 1} targets (N, C); keep ``memory`` (M, D).

        ``memory=None`` means no mapping at inference (the classifier alone). ``val`` (text
        embeddings, targets) is scored after every epoch for monitoring only (never selection).
        """
        if not isinstance(self.classifier, TrainConfig):
            raise TypeError(f"CoMC.classifier: expected a TrainConfig, got {type(self.classifier).__name__}")
        check_int("CoMC.seed", self.seed, 0)
        clf, history = train_text_classifier(text_emb, targets, self.classifier, val=val, seed=self.seed,
                                             progress=progress, classnames=classnames)
        return self._set_fitted(clf, history, memory)

    def _set_fitted(self, clf: TextClassifier, history: list, memory) -> CoMC:
        """Adopt an already trained classifier (e.g. from a cache) as if :meth:`fit` had trained it."""
        self.classifier_ = clf.eval()
        self.coef_ = clf.weight.detach()
        self.history_ = list(history)
        self.n_classes_, self.n_features_ = clf.num_classes, clf.dim
        if memory is not None:
            memory = torch.as_tensor(np.asarray(memory)) if not isinstance(memory, torch.Tensor) else memory
            if memory.ndim != 2 or memory.shape[1] != self.n_features_:
                raise ValueError(f"memory: expected an (M, {self.n_features_}) matrix, got shape {tuple(memory.shape)}")
            memory = memory.detach().float()
        self.memory_ = memory
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "classifier_"):
            raise RuntimeError("this CoMC instance is not fitted yet: call fit(text_emb, targets, memory) first")

    # --- inference ----------------------------------------------------------------------------
    def _scoring_options(self) -> dict:
        return dict(memory=self.memory_, temperature=self.temperature, alpha=self.alpha,
                    local_weight=self.local_weight, map_global=self.map_global, map_local=self.map_local,
                    top_k=self.top_k)

    def scores(self, global_emb, local_emb=None, **options) -> dict:
        """The score dict of :func:`~lcmc_core.method.mapping.score_images`: ``global``, ``local``, ``merged`` (tensors)."""
        self._check_fitted()
        return score_images(self.coef_, global_emb, local_emb, **self._scoring_options(), **options)

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


def decision_functions(models: Mapping[str, CoMC], global_emb, local_emb=None, **options) -> dict[str, dict]:
    """Score several fitted models in as few passes over the (streamed) local embeddings as their settings allow.

    Models with the same mapping settings and memory share one pass (each chunk is read and
    mapped once, then every classifier applied). Returns ``name -> score dict`` as
    :meth:`CoMC.scores`.
    """
    groups: dict[tuple, dict[str, CoMC]] = {}
    for name, model in models.items():
        model._check_fitted()
        opts = model._scoring_options()
        memory = opts.pop("memory")
        key = (tuple(sorted(opts.items())), id(memory))
        groups.setdefault(key, {})[name] = model
    out: dict[str, dict] = {}
    for members in groups.values():
        first = next(iter(members.values()))
        results = score_images({name: m.coef_ for name, m in members.items()}, global_emb, local_emb,
                               **first._scoring_options(), **options)
        out.update(results)
    return {name: out[name] for name in models}


def replace(model: CoMC, **params) -> CoMC:
    """A fitted copy of ``model`` with other inference parameters (``alpha``, ``temperature``, ...): no retraining."""
    clone = CoMC(**{**model.get_params(), **params})
    if hasattr(model, "classifier_"):
        clone._set_fitted(model.classifier_, model.history_, model.memory_)
    return clone

