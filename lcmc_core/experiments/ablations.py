"""Ablations of CoMC around a finished :func:`~lcmc_core.experiments.comparison.run_comparison`, and across toy CLIPs.

Each function varies one choice and returns a tidy pandas table of mAP (percent), reusing the
result's corpus, text embeddings and image features so that only the varied part is recomputed:
mapping strength ``alpha`` and temperature, the text memory (class prompts vs corpus sentences),
the scoring branch (global / local / merged), the training noise, the corpus size and the loss.
:func:`mapping_gain` summarises how much the mapping adds, the quantity plotted against the
modality gap across toy CLIP variants. :func:`mapping_view` and :func:`mapping_explorer` show one
(alpha, temperature) at a time, the latter as ipywidgets sliders in an interactive session.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch

from ..method.classifier import LOSSES, split_validation, train_text_classifier
from ..method.comc import CoMC
from ..method.metrics import mean_average_precision
from .comparison import ComparisonResult, fit_cached
from .rows import Row

__all__ = ["sweep_mapping", "compare_memories", "compare_branches", "sweep_noise", "sweep_corpus_size",
           "corpus_size_grid", "compare_losses", "mapping_gain", "held_out_text_map", "variant_gap_views",
           "mapping_gain_by_variant", "gap_study", "STUDY_ROWS", "STUDY_COMPARISONS", "compare_corpus_labels",
           "text_map_by_label_count", "mapping_view", "mapping_explorer", "LOSS_NAMES", "SWEEP_ALPHAS",
           "SWEEP_TEMPERATURES", "NOISE_STDS", "CORPUS_SIZES", "ablation_tables"]

#: The grids notebook 04 sweeps (each holds the official value: alpha 0.7, tau 0.01, noise std 0.1).
SWEEP_ALPHAS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0)
SWEEP_TEMPERATURES = (0.003, 0.01, 0.03, 0.1, 1.0)
NOISE_STDS = (0.0, 0.05, 0.1, 0.2, 0.3)
CORPUS_SIZES = (0, 300, 1000, 5000)

#: Spelled-out names of the official code's losses (the keys are ``TrainConfig.loss`` values).
LOSS_NAMES = {
    "double_ranking": "pairwise ranking, margin 1 (official double_ranking)",
    "ranking": "pairwise ranking on doubled differences (official ranking)",
    "asl": "asymmetric loss (gamma- 2, gamma+ 1, clip 0.05)",
    "bce": "binary cross-entropy (official sigmoid)",
    "focal": "focal loss (gamma 2)",
    "soft_ce": "soft cross-entropy over classes",
}


def _scores(result: ComparisonResult, estimator: CoMC) -> dict:
    """The score dict of ``estimator`` on the result's test images."""
    return estimator.scores(result.image_features.global_, result.image_features.local)


def sweep_mapping(result: ComparisonResult, alphas: Iterable[float], temperatures: Iterable[float],
                  branch: str = "merged") -> pd.DataFrame:
    """mAP of the run's fitted estimator for every (alpha, temperature); alpha = 1 means no mapping."""
    rows = []
    for t in temperatures:
        for a in alphas:
            s = _scores(result, result.estimator.with_params(alpha=float(a), temperature=float(t)))
            rows.append({"alpha": float(a), "temperature": float(t), "mAP": result.map_of(s[branch])})
    return pd.DataFrame(rows)


def compare_memories(result: ComparisonResult, memories: dict[str, torch.Tensor]) -> pd.DataFrame:
    """mAP of the run's estimator (its alpha, temperature, top-k) with each named text memory, plus no mapping."""
    est = result.estimator
    rows = [{"memory": "none (no mapping)", "size": 0,
             "mAP": result.map_of(_scores(result, est.with_params(alpha=1.0))["merged"])}]
    for name, mem in memories.items():
        variant = CoMC.from_classifier(est.classifier_, mem, **est.get_params())
        s = _scores(result, variant)
        row = {"memory": name, "size": int(mem.shape[0]), "mAP": result.map_of(s["merged"])}
        if "bound" in s:  # top-k mapping: how far any score can be from the full mapping's
            row["score bound (top-k)"] = s["bound"]
        rows.append(row)
    return pd.DataFrame(rows)


def compare_branches(result: ComparisonResult) -> pd.DataFrame:
    """mAP of the global, local and merged scores, with and without the mapping."""
    rows = []
    for mapped in (False, True):
        s = _scores(result, result.estimator if mapped else result.estimator.with_params(alpha=1.0))
        for branch in ("global", "local", "merged"):
            if s[branch] is not None:
                rows.append({"mapping": "CoMC" if mapped else "none", "branch": branch,
                             "mAP": result.map_of(s[branch])})
    return pd.DataFrame(rows)


def _with_and_without_mapping(result: ComparisonResult, estimator: CoMC) -> tuple[float, float]:
    """Merged mAP of a fitted estimator with its mapping, and with none (alpha 1)."""
    return (result.map_of(_scores(result, estimator)["merged"]),
            result.map_of(_scores(result, estimator.with_params(alpha=1.0))["merged"]))


def _refit(result: ComparisonResult, estimator: CoMC, rows=None) -> CoMC:
    """``estimator`` fitted (through the classifier cache) on the result's corpus, or on its ``rows``."""
    emb, targets = result.text_emb, result.corpus.targets
    if rows is not None:
        emb, targets = emb[rows], targets[rows]
    return fit_cached(estimator, emb, targets, result.memory)


def sweep_noise(result: ComparisonResult, stds: Iterable[float]) -> pd.DataFrame:
    """Retrain the classifier with each Gaussian noise std; mAP with and without the mapping."""
    rows = []
    for std in stds:
        est = _refit(result, result.estimator.with_params(classifier={"noise_std": float(std)}))
        with_map, without = _with_and_without_mapping(result, est)
        rows.append({"noise std": float(std), "mAP (CoMC)": with_map, "mAP (no mapping)": without})
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
        with_map, without = _with_and_without_mapping(result, _refit(result, result.estimator, idx))
        rows.append({"sentences": int(size), "mAP (CoMC)": with_map, "mAP (no mapping)": without})
    return pd.DataFrame(rows)


def compare_losses(result: ComparisonResult, losses: Iterable[str] = LOSSES) -> pd.DataFrame:
    """Retrain the classifier with each of the official code's losses; mAP with and without the mapping."""
    rows = []
    for loss in losses:
        est = _refit(result, result.estimator.with_params(classifier={"loss": loss}))
        with_map, without = _with_and_without_mapping(result, est)
        rows.append({"loss": LOSS_NAMES.get(loss, loss), "mAP (CoMC)": with_map, "mAP (no mapping)": without})
    return pd.DataFrame(rows)


def compare_corpus_labels(exp, seed: int | None = None, **overrides) -> pd.DataFrame:
    """Train on the labels each sentence *names* (ours) vs the labels it was *requested* with (official).

    One row per choice: full CoMC mAP, the mAP without mapping, and the share of generated
    sentences whose two label sets differ (0 for the template generator, which names exactly what it
    is asked for; an LLM drops or adds labels).
    """
    rows = []
    for choice in ("extracted", "requested"):
        res = exp.comparison(progress=False, seed=seed, corpus_labels=choice, n_boot=0, **overrides)
        gain = mapping_gain(res)
        c = res.corpus
        names = c.label_set.classnames
        generated = [i for i, src in enumerate(c.sources) if src != "prompt"]
        differ = sum(1 for i in generated if c.requested[i] is not None
                     and set(c.requested[i]) != {names[j] for j in np.flatnonzero(c.targets[i])})
        rows.append({"corpus labels": choice, "mAP (CoMC)": gain["mAP (CoMC)"],
                     "mAP (no mapping)": gain["mAP (no mapping)"],
                     "sentences whose labels differ (%)": 100.0 * differ / max(1, len(generated))})
    return pd.DataFrame(rows)


def ablation_tables(results, exp) -> dict[str, pd.DataFrame]:
    """Every ablation of notebook 04 over the seeds' results, mean and std over seeds (``corpus_labels``: seed 0).

    Keys: ``memory`` (class prompts vs corpus sentences), ``branches``, ``noise`` (:data:`NOISE_STDS`),
    ``corpus_size`` (:data:`CORPUS_SIZES` below every seed's corpus, then all of it), ``losses``,
    ``corpus_labels`` (:func:`compare_corpus_labels`, the run's first seed only: it runs two comparisons).
    """
    from .seeds import mean_std, over_seeds

    if results[0].settings.memory != "prompts":
        raise ValueError("ablation_tables: the memory ablation compares against the official class-prompt memory; "
                         "run it with comparison.memory=prompts")
    n_all = min(corpus_size_grid(r)[-1] for r in results)
    return {
        "memory": mean_std(over_seeds(lambda r: compare_memories(r, {"class prompts": r.memory,
                                                                     "corpus sentences": r.text_emb}), results),
                           ["memory", "size"], ["mAP"]),
        "branches": mean_std(over_seeds(compare_branches, results), ["mapping", "branch"], ["mAP"]),
        "noise": mean_std(over_seeds(sweep_noise, results, NOISE_STDS), "noise std"),
        "corpus_size": mean_std(over_seeds(sweep_corpus_size, results, [n for n in CORPUS_SIZES if n < n_all] + [n_all]),
                                "sentences"),
        "losses": mean_std(over_seeds(compare_losses, results), "loss"),
        "corpus_labels": compare_corpus_labels(exp),
    }


def held_out_text_map(result, fraction: float = 0.1) -> tuple[object, list[dict]]:
    """Train on (1 - fraction) of the corpus and report held-out *text* mAP per epoch (no image is used).

    ``result``: a :class:`ComparisonResult` or an :class:`~lcmc_core.experiments.experiment.FittedRun`
    (its corpus, text embeddings, estimator and seed).

    Held-out texts are scored *without* the training noise (clean embeddings), the mAP over all
    held-out texts at once, as for images; see :func:`text_map_by_label_count` for why it is lower
    than the image mAP.
    """
    train_idx, val_idx = split_validation(len(result.corpus), fraction, result.seed)
    targets = torch.as_tensor(result.corpus.targets, dtype=torch.float32)
    return train_text_classifier(result.text_emb[train_idx], targets[train_idx], result.estimator.classifier,
                                 val=(result.text_emb[val_idx], targets[val_idx]), seed=result.seed)


def text_map_by_label_count(result, fraction: float = 0.1, classifier=None) -> pd.DataFrame:
    """Held-out text mAP of the classifier by the number of labels a text names, beside the test images'.

    Rows: every held-out text, each group of texts naming k labels (k = 1, 2, ...), and the test
    images; columns: how many items, the mean labels per item, mAP over that group, and the mean
    per-item label-ranking AP (how well each item's own labels are ranked above its other classes:
    ranking *within* an item, which the cross-item mAP does not measure). ``classifier`` is the one
    :func:`held_out_text_map` trained with the same ``fraction`` (trained here when not given).
    """
    from sklearn.metrics import label_ranking_average_precision_score

    clf = classifier if classifier is not None else held_out_text_map(result, fraction)[0]
    _, val_idx = split_validation(len(result.corpus), fraction, result.seed)
    with torch.no_grad():
        x = torch.nn.functional.normalize(result.text_emb[val_idx].float(), dim=1)
        scores = clf(x).numpy()
    y = result.corpus.targets[val_idx]
    k = y.sum(1)
    groups = [("all held-out texts", np.ones(len(y), bool))] + [(f"texts naming {int(j)} label(s)", k == j)
                                                               for j in np.unique(k) if (k == j).sum() >= 20]
    rows = []
    for name, mask in groups:
        present = y[mask].sum(0) > 0
        rows.append({"items": name, "count": int(mask.sum()), "labels per item": float(k[mask].mean()),
                     "mAP over classes present (%)": mean_average_precision(scores[mask][:, present],
                                                                          y[mask][:, present]),
                     "label-ranking AP (%)": 100 * label_ranking_average_precision_score(y[mask], scores[mask])})
    img = _scores(result, result.estimator.with_params(alpha=1.0))["global"].numpy()   # the classifier, no mapping
    yi = (result.labels == 1).astype(int)
    keep = yi.sum(1) > 0
    present = yi.sum(0) > 0
    rows.append({"items": "test images (classifier, no mapping, global)", "count": int(len(yi)),
                 "labels per item": float(yi.sum(1).mean()),
                 "mAP over classes present (%)": mean_average_precision(img[:, present], yi[:, present]),
                 "label-ranking AP (%)": 100 * label_ranking_average_precision_score(yi[keep], img[keep])})
    return pd.DataFrame(rows).set_index("items")


def mapping_gain(result: ComparisonResult) -> dict:
    """mAP of full CoMC, of the same classifier without mapping, and their difference (the mapping's gain)."""
    with_map, without = _with_and_without_mapping(result, result.estimator)
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


#: The rows the seed study compares, by its column names: zero-shot as published (no local branch), zero-shot on
#: CoMC's own features with its local branch (like for like), the classifier without mapping, CoMC.
STUDY_ROWS = {"zero-shot mAP (%) [published protocol]": Row.ZERO_SHOT_PUBLISHED,
              "zero-shot mAP (%) [CoMC's features]": Row.ZERO_SHOT_OWN_FEATURES,
              "mAP no mapping (%)": Row.CLASSIFIER, "mAP CoMC (%)": Row.COMC}
#: The study's comparisons: (name, minuend column, subtrahend column).
STUDY_COMPARISONS = (("mapping gain (mAP points)", "mAP CoMC (%)", "mAP no mapping (%)"),
                     ("CoMC - zero-shot, like for like (mAP points)", "mAP CoMC (%)",
                      "zero-shot mAP (%) [CoMC's features]"))


def mapping_gain_by_variant(exp, variants: Iterable[str] | None = None, n_pairs: int | None = None,
                            progress: bool = False, n_boot: int = 0, **overrides) -> pd.DataFrame:
    """Gap vs mapping gain across toy CLIP variants: one comparison per variant (trains its classifiers).

    For each variant: its modality gap (:func:`lcmc_core.method.gap.gap_norm` on ``n_pairs`` matched
    held-out pairs), the mAP of each of :data:`STUDY_ROWS` (zero-shot published and on CoMC's own
    features, the classifier without mapping, CoMC) and the mapping's gain (:func:`mapping_gain`).
    ``n_boot`` > 0 adds column ``boots``: each row's mAP on ``n_boot`` resamples of the test images
    (``{column: (n_boot,) array}``, the same resamples for every row). ``overrides`` go to
    :meth:`Experiment.comparison`. Index ``variant``.
    """
    from ..images.toyclip import VARIANTS
    from ..method.gap import gap_norm
    from ..method.metrics import per_seed_bootstrap_maps

    rows = []
    for v in (list(VARIANTS) if variants is None else list(variants)):
        ev = exp.with_variant(v)
        res = ev.comparison(progress=progress, **{"n_boot": 0, **overrides})
        img, txt, _ = ev.paired_embeddings(n_pairs or ev.pair_count())
        gain = mapping_gain(res)
        row = {"variant": v, "gap": gap_norm(img, txt)}
        row.update({col: float(res.table.loc[r, "mAP"]) for col, r in STUDY_ROWS.items()})
        row["mapping gain (mAP points)"] = gain["mapping gain"]
        if n_boot:
            boots = per_seed_bootstrap_maps({col: [res.scores[r]] for col, r in STUDY_ROWS.items()}, res.labels,
                                            n_boot, seed=int(ev.params.seed), difficult=res.evaluation.difficult)
            row["boots"] = {col: b[0] for col, b in boots.items()}
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant")


def gap_study(exp, clip_seeds: Iterable[int], variants: Iterable[str] | None = None, progress: bool = False,
              n_boot: int = 1000, confidence: float = 0.95, **overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The toy CLIP seed study: :func:`mapping_gain_by_variant` for several toy CLIP seeds, then per-variant intervals.

    Seed ``s`` trains the toy CLIPs with seed ``s`` and draws their corpus, classifier and test scenes
    with it (``exp.replace(seed=s)``). Returns ``(per_seed, summary)``: one row per (variant, seed), and
    per variant the mean and std over seeds of the gap and of each row's mAP with a 95% interval from a
    two-level bootstrap (toy CLIP seeds drawn with replacement, then each drawn seed's own test images),
    and :data:`STUDY_COMPARISONS` (the mapping's gain; CoMC minus zero-shot on the same features, like
    for like) with family-wise intervals over all of them (:func:`~lcmc_core.method.metrics.family_wise_comparisons`)
    and their verdicts. With 3 seeds the seed part of an interval is narrow (see the metrics module).
    """
    from ..method.metrics import family_wise_comparisons, percentile_interval, two_level_means

    seeds = [int(s) for s in clip_seeds]
    frames = [mapping_gain_by_variant(exp.replace(seed=s), variants, progress=progress, n_boot=n_boot, **overrides)
              .reset_index().assign(seed=s) for s in seeds]
    per_seed = pd.concat(frames, ignore_index=True)
    boots = per_seed.pop("boots") if "boots" in per_seed else None
    columns = list(STUDY_ROWS)
    summary = per_seed.groupby("variant", sort=False).agg(
        **{"gap": ("gap", "mean"), "gap std": ("gap", "std")},
        **{c: (c, "mean") for c in columns + ["mapping gain (mAP points)"]},
        **{f"{c} std": (c, "std") for c in columns + ["mapping gain (mAP points)"]}).reset_index()
    summary["seeds"] = len(seeds)
    if boots is None:
        return per_seed, summary
    names, estimates, diffs, where = [], [], [], []
    for i, variant in enumerate(summary["variant"]):
        mask = (per_seed["variant"] == variant).to_numpy()
        stacked = {c: np.stack([b[c] for b in boots[mask]]) for c in columns}      # (seeds, n_boot)
        means = two_level_means(stacked, seed=seeds[0])
        for c in columns:
            summary.loc[i, f"{c} CI low"], summary.loc[i, f"{c} CI high"] = percentile_interval(means[c], confidence)
        for name, a, b in STUDY_COMPARISONS:
            summary.loc[i, name] = float(summary.loc[i, a] - summary.loc[i, b])
            names.append(f"{variant}: {name}")
            estimates.append(float(summary.loc[i, a] - summary.loc[i, b]))
            diffs.append(means[a] - means[b])
            where.append((i, name))
    records = family_wise_comparisons(names, estimates, np.stack(diffs), confidence, better="helps", worse="hurts",
                                      same="not distinguishable from zero")
    for (i, name), rec in zip(where, records):
        summary.loc[i, f"{name} CI low"], summary.loc[i, f"{name} CI high"] = rec["CI low"], rec["CI high"]
        summary.loc[i, f"{name} family-wise low"] = rec["family-wise low"]
        summary.loc[i, f"{name} family-wise high"] = rec["family-wise high"]
        summary.loc[i, f"{name} verdict"] = rec["verdict"]
    return per_seed, summary


def mapping_view(result: ComparisonResult, alpha: float, temperature: float, n_points: int = 300,
                 projection=None) -> dict:
    """What one (alpha, temperature) does: merged mAP (and without mapping), the gap to the corpus, 2-D points.

    Points: ``n_points`` test images (mapped, by direction), as many training texts and the text
    memory, on fixed PCA axes (``projection``: a fitted 2-D PCA, by default fitted on the raw images,
    the texts and the memory, so that the mapped images move against fixed axes as alpha and
    temperature change). Returns a dict with ``mAP``, ``mAP_no_mapping``, ``gap``, ``gap_no_mapping``,
    ``image_2d``, ``raw_2d``, ``text_2d``, ``memory_2d`` and the ``projection``.
    """
    from sklearn.decomposition import PCA

    from ..method.gap import gap_norm

    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"mapping_view: alpha={alpha!r}; expected a number in [0, 1] (1 = no mapping)")
    if not float(temperature) > 0:
        raise ValueError(f"mapping_view: temperature={temperature!r}; expected a number > 0")
    g = result.image_features.global_
    variant = result.estimator.with_params(alpha=float(alpha), temperature=float(temperature))
    mapped_scores = _scores(result, variant)
    raw_scores = _scores(result, variant.with_params(alpha=1.0))
    global_map, _ = variant.mapping_transforms()
    mapped = global_map(g) if global_map is not None else g
    rng = np.random.default_rng(result.seed)
    img_idx = np.sort(rng.choice(len(g), min(n_points, len(g)), replace=False))
    txt_idx = np.sort(rng.choice(len(result.text_emb), min(n_points, len(result.text_emb)), replace=False))
    def unit(x):  # by direction, as the mapping and the scores see them
        return torch.nn.functional.normalize(torch.as_tensor(x).float(), dim=-1).numpy()

    raw, texts, memory = unit(g[img_idx]), unit(result.text_emb[txt_idx]), unit(result.memory)
    if projection is None:
        projection = PCA(n_components=2, svd_solver="full").fit(np.concatenate([raw, texts, memory]))
    return {"alpha": float(alpha), "temperature": float(temperature),
            "mAP": result.map_of(mapped_scores["merged"]), "mAP_no_mapping": result.map_of(raw_scores["merged"]),
            "gap": gap_norm(mapped, result.text_emb), "gap_no_mapping": gap_norm(g, result.text_emb),  # normalises rows
            "image_2d": projection.transform(unit(mapped[img_idx])), "raw_2d": projection.transform(raw),
            "text_2d": projection.transform(texts), "memory_2d": projection.transform(memory),
            "projection": projection}


def mapping_explorer(result: ComparisonResult, n_points: int = 300):
    """ipywidgets sliders for alpha and the temperature that redraw :func:`mapping_view` (for JupyterLab; not headless)."""
    import ipywidgets
    import matplotlib.pyplot as plt

    est = result.estimator
    first = mapping_view(result, est.alpha, est.temperature, n_points)
    projection = first["projection"]

    def draw(alpha: float, temperature: float):
        v = mapping_view(result, alpha, temperature, n_points, projection=projection)
        fig, ax = plt.subplots(figsize=(8, 6))
        ax.scatter(*v["raw_2d"].T, s=5, alpha=0.25, color="lightgrey", label="images, no mapping")
        ax.scatter(*v["image_2d"].T, s=6, alpha=0.5, color="#d62728", label="images, mapped")
        ax.scatter(*v["text_2d"].T, s=6, alpha=0.4, color="tab:orange", label="training texts")
        ax.scatter(*v["memory_2d"].T, s=40, marker="x", color="black", label="text memory")
        ax.set_xlabel("PC 1 (fixed axes)")
        ax.set_ylabel("PC 2 (fixed axes)")
        ax.legend(fontsize=8, markerscale=2)
        ax.set_title(f"alpha {alpha:g}, tau {temperature:.3g}: mAP {v['mAP']:.1f} (no mapping {v['mAP_no_mapping']:.1f}), "
                     f"gap {v['gap']:.2f} (no mapping {v['gap_no_mapping']:.2f})", fontsize=10)
        plt.show()

    return ipywidgets.interactive(
        draw,
        alpha=ipywidgets.FloatSlider(value=est.alpha, min=0.0, max=1.0, step=0.05, description="alpha"),
        temperature=ipywidgets.FloatLogSlider(value=est.temperature, base=10, min=-3, max=0, step=0.1,
                                              description="tau"))
