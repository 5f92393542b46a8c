"""Ablations of CoMC around a finished :func:`~lcmc_core.runner.comparison.run_comparison`, and across toy CLIPs.

Each function varies one choice and returns a tidy pandas table of mAP (percent), reusing the
result's corpus, text embeddings and image features so that only the varied part is recomputed:
mapping strength ``alpha`` and temperature, the text memory (class prompts vs corpus sentences),
the scoring branch (global / local / merged), the training noise, the corpus size and the loss.
:func:`mapping_gain` summarises how much the mapping adds, the quantity plotted against the
modality gap across toy CLIP variants.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch

from ..method.classifier import split_validation, train_text_classifier
from ..method.mapping import score_images
from ..method.metrics import mean_average_precision
from .comparison import ComparisonResult, train_classifier

__all__ = ["sweep_mapping", "compare_memories", "compare_branches", "sweep_noise", "sweep_corpus_size",
           "corpus_size_grid", "compare_losses", "mapping_gain", "held_out_text_map", "variant_gap_views",
           "mapping_gain_by_variant"]


def _map(result: ComparisonResult, scores) -> float:
    s = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else scores
    return mean_average_precision(s, result.labels, result.config.difficult)


def _feats(result: ComparisonResult):
    return result.image_features.global_, result.image_features.local


def sweep_mapping(result: ComparisonResult, alphas: Iterable[float], temperatures: Iterable[float],
                  branch: str = "merged") -> pd.DataFrame:
    """mAP of the trained classifier for every (alpha, temperature); alpha = 1 means no mapping."""
    g, loc = _feats(result)
    W = result.classifiers["comc"].weight.detach()
    rows = []
    for t in temperatures:
        for a in alphas:
            s = score_images(W, g, loc, memory=result.memory, temperature=float(t), alpha=float(a),
                             local_weight=result.config.local_weight)
            rows.append({"alpha": float(a), "temperature": float(t), "mAP": _map(result, s[branch])})
    return pd.DataFrame(rows)


def compare_memories(result: ComparisonResult, memories: dict[str, torch.Tensor]) -> pd.DataFrame:
    """mAP of full CoMC (official alpha, temperature) with each named text memory, plus no mapping."""
    g, loc = _feats(result)
    W = result.classifiers["comc"].weight.detach()
    cfg = result.config
    rows = [{"memory": "none (no mapping)", "size": 0,
             "mAP": _map(result, score_images(W, g, loc, local_weight=cfg.local_weight)["merged"])}]
    for name, mem in memories.items():
        s = score_images(W, g, loc, memory=mem, temperature=cfg.temperature, alpha=cfg.alpha,
                         local_weight=cfg.local_weight, top_k=cfg.memory_top_k or None)
        row = {"memory": name, "size": int(mem.shape[0]), "mAP": _map(result, s["merged"])}
        if "bound" in s:  # top-k mapping: how far any score can be from the full mapping's
            row["score bound (top-k)"] = s["bound"]
        rows.append(row)
    return pd.DataFrame(rows)


def compare_branches(result: ComparisonResult) -> pd.DataFrame:
    """mAP of the global, local and merged scores, with and without the mapping."""
    g, loc = _feats(result)
    W = result.classifiers["comc"].weight.detach()
    cfg = result.config
    rows = []
    for mapped in (False, True):
        s = score_images(W, g, loc, memory=result.memory if mapped else None, temperature=cfg.temperature,
                         alpha=cfg.alpha, local_weight=cfg.local_weight)
        for branch in ("global", "local", "merged"):
            if s[branch] is not None:
                rows.append({"mapping": "CoMC" if mapped else "none", "branch": branch,
                             "mAP": _map(result, s[branch])})
    return pd.DataFrame(rows)


def _full_map(result: ComparisonResult, clf) -> tuple[float, float]:
    g, loc = _feats(result)
    W = clf.weight.detach()
    cfg = result.config
    mapped = score_images(W, g, loc, memory=result.memory, temperature=cfg.temperature, alpha=cfg.alpha,
                          local_weight=cfg.local_weight)["merged"]
    plain = score_images(W, g, loc, local_weight=cfg.local_weight)["merged"]
    return _map(result, mapped), _map(result, plain)


def sweep_noise(result: ComparisonResult, stds: Iterable[float]) -> pd.DataFrame:
    """Retrain the classifier with each Gaussian noise std; mAP with and without the mapping."""
    rows = []
    for std in stds:
        cfg = dataclasses.replace(result.config.classifier, noise_std=float(std))
        clf, _ = train_classifier(result.text_emb, result.corpus.targets, cfg, result.seed)
        with_map, without = _full_map(result, clf)
        rows.append({"noise_std": float(std), "mAP (CoMC)": with_map, "mAP (no mapping)": without})
    return pd.DataFrame(rows)


def sweep_corpus_size(result: ComparisonResult, sizes: Iterable[int]) -> pd.DataFrame:
    """Retrain on the first ``size`` generated sentences (prompt augmentation always kept); mAP per size."""
    is_prompt = np.array([s == "prompt" for s in result.corpus.sources])
    sentence_rows = np.flatnonzero(~is_prompt)
    prompt_rows = np.flatnonzero(is_prompt)
    rows = []
    for size in sizes:
        if size > len(sentence_rows):
            raise ValueError(f"sweep_corpus_size: size {size} exceeds the {len(sentence_rows)} generated "
                             "sentences of this result's corpus")
        idx = np.concatenate([sentence_rows[:int(size)], prompt_rows])
        clf, _ = train_classifier(result.text_emb[idx], result.corpus.targets[idx], result.config.classifier,
                                  result.seed)
        with_map, without = _full_map(result, clf)
        rows.append({"sentences": int(size), "mAP (CoMC)": with_map, "mAP (no mapping)": without})
    return pd.DataFrame(rows)


def compare_losses(result: ComparisonResult, losses: Iterable[str] = ("ranking", "asl", "bce")) -> pd.DataFrame:
    """Retrain the classifier with each loss; mAP with and without the mapping."""
    rows = []
    for loss in losses:
        cfg = dataclasses.replace(result.config.classifier, loss=loss)
        clf, _ = train_classifier(result.text_emb, result.corpus.targets, cfg, result.seed)
        with_map, without = _full_map(result, clf)
        rows.append({"loss": loss, "mAP (CoMC)": with_map, "mAP (no mapping)": without})
    return pd.DataFrame(rows)


def held_out_text_map(result: ComparisonResult, fraction: float = 0.1) -> tuple[object, list[dict]]:
    """Train on (1 - fraction) of the corpus and report held-out *text* mAP per epoch (no image is used)."""
    train_idx, val_idx = split_validation(len(result.corpus), fraction, result.seed)
    targets = torch.as_tensor(result.corpus.targets, dtype=torch.float32)
    return train_text_classifier(result.text_emb[train_idx], targets[train_idx], result.config.classifier,
                                 val=(result.text_emb[val_idx], targets[val_idx]), seed=result.seed)


def mapping_gain(result: ComparisonResult) -> dict:
    """mAP of full CoMC, of the same classifier without mapping, and their difference (the mapping's gain)."""
    with_map, without = _full_map(result, result.classifiers["comc"])
    return {"mAP (CoMC)": with_map, "mAP (no mapping)": without, "mapping gain": with_map - without}


def corpus_size_grid(result: ComparisonResult, candidates: Iterable[int] = (0, 1000, 5000)) -> list[int]:
    """Corpus sizes for :func:`sweep_corpus_size`: the candidates below the number of generated sentences
    in ``result.corpus`` (prompt augmentation excluded), then that number ("all")."""
    n = int(sum(s != "prompt" for s in result.corpus.sources))
    return sorted({int(c) for c in candidates if 0 <= int(c) < n} | {n})


def variant_gap_views(exp, variants: Iterable[str] | None = None, n: int | None = None, seed: int | None = None) -> dict:
    """For each toy CLIP variant: what the retrieval/gap figure shows, from its matched held-out pairs.

    Returns ``{variant: {"image_2d", "text_2d"`` (one 2-D PCA fitted on both modalities, (n, 2)
    each), ``"matched"``, ``"unmatched"`` (cosines, see :func:`lcmc_core.method.gap.matched_unmatched_cosines`),
    ``"gap_norm"``, ``"captions"``}}``. ``n`` defaults to :meth:`Experiment.pair_count`.
    """
    from ..images.toyclip import VARIANTS
    from ..method import gap

    out = {}
    seed = exp.params.seed if seed is None else seed
    for v in (list(VARIANTS) if variants is None else list(variants)):
        ev = exp.with_variant(v)
        img, txt, captions = ev.paired_embeddings(n or ev.pair_count())
        image_2d, text_2d = gap.pca_2d(img, txt)
        cos = gap.matched_unmatched_cosines(img, txt, seed=seed)
        out[v] = {"image_2d": image_2d, "text_2d": text_2d, "matched": cos["matched"],
                  "unmatched": cos["unmatched"], "gap_norm": gap.gap_norm(img, txt), "captions": captions}
    return out


def mapping_gain_by_variant(exp, variants: Iterable[str] | None = None, n_pairs: int | None = None,
                            progress: bool = False, **overrides) -> pd.DataFrame:
    """Gap vs mapping gain across toy CLIP variants: one comparison per variant (trains its classifiers).

    For each variant: its modality gap (:func:`lcmc_core.method.gap.gap_norm` on ``n_pairs`` matched
    held-out pairs), full CoMC mAP, the same classifier without mapping, their difference
    (:func:`mapping_gain`, in mAP points) and the global zero-shot mAP. ``overrides`` go to
    :meth:`Experiment.comparison` (e.g. ``n_boot=0``). Index ``variant``.
    """
    from ..images.toyclip import VARIANTS
    from ..method.gap import gap_norm

    rows = []
    for v in (list(VARIANTS) if variants is None else list(variants)):
        ev = exp.with_variant(v)
        res = ev.comparison(progress=progress, **overrides)
        img, txt, _ = ev.paired_embeddings(n_pairs or ev.pair_count())
        gain = mapping_gain(res)
        rows.append({"variant": v, "gap": gap_norm(img, txt),
                     "zero-shot mAP (%)": float(res.table.loc["zero-shot, global", "mAP"]),
                     "mAP no mapping (%)": gain["mAP (no mapping)"], "mAP CoMC (%)": gain["mAP (CoMC)"],
                     "mapping gain (mAP points)": gain["mapping gain"]})
    return pd.DataFrame(rows).set_index("variant")
