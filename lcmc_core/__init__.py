"""lcmc_core: CoMC (ICML 2024), a text-only multi-label classifier applied to images through CLIP, with its baselines.

The public API, importable from the package (loaded on first use, so ``import lcmc_core`` stays light)::

    from lcmc_core import CoMC, load_clip, extract_image_features, encode_texts, load_dataset

    model = CoMC().fit(text_emb, targets, memory=class_prompts)      # the official hyperparameters
    scores = model.decision_function(image_global, image_local)

The package is layered; each module's docstring says what it is for:

* ``method`` (tensors in, tensors out): ``comc`` (the estimator), ``classifier``, ``mapping``,
  ``zero_shot``, ``metrics``, ``gap``;
* ``text``: ``labels`` and ``label_sets``, ``prompts``, ``corpus``, ``generators``, ``validation``,
  ``generation``;
* ``images``: ``models`` (:func:`load_clip`), ``features``, ``datasets``, ``toyworld``, ``toyclip``;
* ``experiments`` (the paper's experiments): ``params``, ``profiles``, ``experiment``, ``rows``,
  ``comparison``, ``seeds``, ``ablations``, ``published``;
* ``reporting`` (tables, figures, saving them) and ``harness`` (the headless notebook runner,
  provenance, the results README, verify);
* shared: ``errors`` (:class:`LcmcError`), ``checks``, ``cache``, ``secrets``, ``memory``,
  ``environment`` (the lock file), ``outputs`` (where a notebook's outputs go).
"""
from __future__ import annotations

import importlib

__version__ = "0.2.0"

# name -> module that defines it
_API = {
    "CoMC": "lcmc_core.method.comc",
    "TrainConfig": "lcmc_core.method.classifier",
    "TextClassifier": "lcmc_core.method.classifier",
    "train_text_classifier": "lcmc_core.method.classifier",
    "cross_modal_map": "lcmc_core.method.mapping",
    "score_images": "lcmc_core.method.mapping",
    "mean_shift": "lcmc_core.method.mapping",
    "zero_shot_classifier": "lcmc_core.method.zero_shot",
    "mean_average_precision": "lcmc_core.method.metrics",
    "average_precision_per_class": "lcmc_core.method.metrics",
    "f1_at_top_k": "lcmc_core.method.metrics",
    "bootstrap_map_ci": "lcmc_core.method.metrics",
    "load_clip": "lcmc_core.images.models",
    "LoadedCLIP": "lcmc_core.images.models",
    "image_embeddings": "lcmc_core.images.features",
    "encode_texts": "lcmc_core.images.features",
    "extract_image_features": "lcmc_core.images.features",
    "get_label_set": "lcmc_core.text.label_sets",
    "build_corpus": "lcmc_core.text.corpus",
    "read_corpus": "lcmc_core.text.corpus",
    "write_corpus": "lcmc_core.text.corpus",
    "generate_corpus": "lcmc_core.text.generation",
    "Params": "lcmc_core.experiments.params",
    "Experiment": "lcmc_core.experiments.experiment",
    "Row": "lcmc_core.experiments.rows",
    "run_comparison": "lcmc_core.experiments.comparison",
    "reproduce": "lcmc_core.harness.reproduce",
    "LcmcError": "lcmc_core.errors",
    "ConfigError": "lcmc_core.errors",
}
_RENAMED = {"load_dataset": ("lcmc_core.images.datasets", "load")}

__all__ = sorted([*_API, *_RENAMED, "__version__"])


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
    elif name in _RENAMED:
        module, attr = _RENAMED[name]
        value = getattr(importlib.import_module(module), attr)
    else:
        raise AttributeError(f"module 'lcmc_core' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
