"""Figures of the data: the method's pipeline, the toy world, the toy CLIPs, the corpus.

Notebooks 00 (toy world) and 01 (corpus) call one function per figure; each returns a matplotlib
figure (or None where there is nothing to draw) whose title carries the toy-world note when given,
and whose axes that draw data have x and y labels. Figures are laid out by matplotlib's
constrained layout, so titles, tick labels, axis labels and legends take their own room instead
of running into a neighbouring panel.

* :func:`pipeline_diagram`: CoMC end to end, the numbers in its boxes read from the estimator
  (:class:`~lcmc_core.method.comc.CoMC`, official defaults unless another is given).
* :func:`sample_scenes`, :func:`sprite_legend`: EmojiVOC scenes with labels and captions; the class -> sprite key.
* :func:`label_frequency`, :func:`labels_per_sentence`: how often each class occurs, labels per sentence.
* :func:`toy_clip_metrics`, :func:`pretraining_curves`, :func:`variant_retrieval_gap`: the toy CLIP variants.
* :func:`generation_outcomes`: accepted / rejected / pending answers of corpus generation (None when all were accepted).
* :func:`cooccurrence_heatmaps`: log2(observed / expected) label co-occurrence, corpus beside test set.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .tables import figure_title, wrap_text

__all__ = ["PIPELINE_STEPS", "PIPELINE_ARROWS", "pipeline_texts", "pipeline_diagram", "sample_scenes", "sprite_legend",
           "label_frequency", "labels_per_sentence", "variant_colors", "toy_clip_metrics", "pretraining_curves",
           "variant_retrieval_gap", "generation_outcomes", "cooccurrence_heatmaps", "NEVER_TOGETHER_COLOR",
           "DIAGONAL_COLOR", "NOT_SEEN_COLOR", "OPENAI_CLIP_COCO_GAP"]

#: Gap norm of OpenAI's CLIP on MS-COCO image-caption pairs (Liang et al., *Mind the Gap*, NeurIPS 2022): a reference line.
OPENAI_CLIP_COCO_GAP = 0.82


def _styled(make):
    """Draw the figure in seaborn's ``whitegrid`` style at ``notebook`` scale, whatever the caller's settings."""
    @functools.wraps(make)
    def wrapper(*args, **kwargs):
        import seaborn as sns
        with sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
            return make(*args, **kwargs)
    return wrapper


def _figure(nrows: int = 1, ncols: int = 1, **kwargs):
    """A figure laid out by constrained layout (room for every title, label and legend) and its axes grid."""
    import matplotlib.pyplot as plt
    return plt.subplots(nrows, ncols, layout="constrained", squeeze=False, **kwargs)


def _class_ticks(ax, names: Sequence[str]) -> None:
    """Class names under the bars, rotated about their right end so each label ends at its own bar."""
    small = len(names) > 25
    ax.set_xticks(np.arange(len(names)), list(names), rotation=90 if small else 55, ha="center" if small else "right",
                  rotation_mode="default" if small else "anchor", fontsize=7 if small else 10)


# ------------------------------------------------------------------------------------------ the method

#: The boxes of :func:`pipeline_diagram`: (key, text, row, column); row 2 trains on text, row 1 holds the text
#: memory, row 0 infers on images. ``{...}`` fields are filled from the estimator (:func:`pipeline_texts`).
PIPELINE_STEPS = (
    ("corpus", "training corpus\nLLM or template sentences\n+ the labels each names", 2, 0),
    ("text_encoder", "CLIP text encoder\n(frozen)", 2, 1),
    ("text_emb", "text embeddings\n(unit length) + Gaussian\nnoise, std {noise_std:g}\n(training only)", 2, 2),
    ("classifier", "linear classifier W\ntrained on text only\n(multi-label loss)", 2, 4),
    ("memory", "text memory T\none prompt embedding\nper class (unit rows)", 1, 3),
    ("image", "test image", 0, 0),
    ("image_encoder", "CLIP image encoder\n(frozen ResNet)", 0, 1),
    ("features", "global embedding f\n+ local embeddings f_ij\n(attention pool without\npositional embedding)", 0, 2),
    ("mapping", "cross-modal mapping of every f\nm = normalize(softmax(f Tᵀ / τ) T)\n"
                "f′ = α f + (1 − α) m\n(f′ not renormalised)\nα = {alpha:g}, τ = {tau:g}", 0, 3),
    ("scores", "scores W f′\n(1 − w) global + w local,\nlocal: max over positions\nw = {local_weight:g}", 0, 4),
)
#: The arrows of :func:`pipeline_diagram`: (from, to) keys of :data:`PIPELINE_STEPS`.
PIPELINE_ARROWS = (("corpus", "text_encoder"), ("text_encoder", "text_emb"), ("text_emb", "classifier"),
                   ("text_encoder", "memory"), ("memory", "mapping"), ("classifier", "scores"),
                   ("image", "image_encoder"), ("image_encoder", "features"), ("features", "mapping"),
                   ("mapping", "scores"))
_STAGES = {2: "training\n(text only)", 1: "text memory\n(inference)", 0: "inference\n(images)"}


def pipeline_texts(estimator=None) -> dict[str, str]:
    """The text of each :data:`PIPELINE_STEPS` box, numbers read from ``estimator`` (default ``CoMC()``: the official values)."""
    from ..method.comc import CoMC

    est = CoMC() if estimator is None else estimator
    values = dict(noise_std=est.classifier.noise_std, alpha=est.alpha, tau=est.temperature, local_weight=est.local_weight)
    return {key: text.format(**values) for key, text, _row, _col in PIPELINE_STEPS}


@_styled
def pipeline_diagram(estimator=None,
                     title: str = "CoMC: train on text only, map images towards text, score with the text classifier"):
    """A figure of the method end to end (:data:`PIPELINE_STEPS`): training on text (top), the text memory, inference (bottom).

    The y axis names the stage of each row, the x axis the order of the steps; numbers come from
    :func:`pipeline_texts` (``estimator``'s hyperparameters).
    """
    texts = pipeline_texts(estimator)
    fig, axes = _figure(figsize=(15, 6.8))
    ax = axes[0, 0]
    ax.set_xlim(-0.6, 4.6)
    ax.set_ylim(-0.55, 2.55)
    ax.grid(False)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_xticks([])
    ax.set_yticks(list(_STAGES), list(_STAGES.values()), fontsize=10)
    ax.tick_params(axis="y", length=0)
    for label, color in zip(ax.get_yticklabels(), ("#1f4e79", "#5c4a00", "#7f2704")):
        label.set_color(color)
        label.set_fontweight("bold")
    ax.set_xlabel("order of the steps (left to right; arrows carry each step's output)")
    ax.set_ylabel("stage")
    boxes = {}
    faces = {2: "#dbe9f6", 1: "#fff2cc", 0: "#fde0dd"}
    for key, _text, row, col in PIPELINE_STEPS:
        face = "#fff2cc" if key in ("mapping", "memory") else faces[row]
        boxes[key] = ax.text(col, row, texts[key], ha="center", va="center", fontsize=10, zorder=3,
                             bbox=dict(boxstyle="round,pad=0.5", facecolor=face, edgecolor="#555555"))
    rows = {key: row for key, _text, row, _col in PIPELINE_STEPS}
    cols = {key: col for key, _text, _row, col in PIPELINE_STEPS}
    fig.canvas.draw()  # lay the boxes out, so that arrows can run from edge to edge
    for a, b in PIPELINE_ARROWS:
        if rows[a] == rows[b]:                # along a row: right edge -> left edge
            start, end, rad = (1.0, 0.5), (0.0, 0.5), 0.0
        elif cols[a] == cols[b]:              # straight down
            start, end, rad = (0.5, 0.0), (0.5, 1.0), 0.0
        else:                                 # down and to the right (text encoder -> memory)
            start, end, rad = (0.5, 0.0), (0.0, 0.5), 0.2
        ax.annotate("", xy=end, xycoords=boxes[b].get_bbox_patch(), xytext=start,
                    textcoords=boxes[a].get_bbox_patch(), zorder=4,
                    arrowprops=dict(arrowstyle="-|>", color="#333333", lw=1.4, shrinkA=2, shrinkB=2,
                                    connectionstyle=f"arc3,rad={rad}"))
    ax.set_title(title, fontsize=12)
    return fig


# ------------------------------------------------------------------------------------------ the toy world

@_styled
def sample_scenes(scenes, captions: Sequence[str], classnames: Sequence[str], note: str = "", ncols: int = 4,
                  width: int = 34):
    """Scenes of a :class:`~lcmc_core.images.toyworld.ToySplit` in a grid, each titled with its scene type, its labels
    (ground truth) and its caption (``captions``, one per scene; wrapped to ``width`` characters)."""
    from .tables import label_names

    images = list(scenes.images)
    if len(captions) != len(images) or not images:
        raise ValueError(f"sample_scenes: {len(images)} scenes and {len(captions)} captions; expected one caption per "
                         f"scene (at least one scene)")
    labels = label_names(scenes.labels, classnames)
    nrows = -(-len(images) // ncols)
    fig, axes = _figure(nrows, ncols, figsize=(3.3 * ncols, 4.1 * nrows))
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, image, names, caption, kind in zip(axes.flat, images, labels, captions, scenes.scene_types):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(f"{kind} | labels: {wrap_text(names, width)}\ncaption: {wrap_text(repr(caption), width)}",
                     fontsize=8.5, loc="left")
    fig.suptitle(figure_title(f"EmojiVOC {scenes.split} scenes ({scenes.image_size} px) with their labels and an "
                              "alt-text caption", note), fontsize=11)
    return fig


@_styled
def sprite_legend(sprites, classnames: Sequence[str], note: str = "", ncols: int = 10,
                  title: str = "EmojiVOC: the sprite of each class"):
    """A key from class name to the sprite that draws it: one panel per class, its name above it (titles take
    their own room in the layout, so a row's names never sit under the row above)."""
    if len(sprites) != len(classnames):
        raise ValueError(f"sprite_legend: {len(sprites)} sprites for {len(classnames)} class names; expected one each")
    nrows = -(-len(sprites) // ncols)
    fig, axes = _figure(nrows, ncols, figsize=(1.45 * ncols, 1.75 * nrows + 0.8))
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, sprite, name in zip(axes.flat, sprites, classnames):
        ax.imshow(sprite, interpolation="lanczos")
        ax.set_title(name, fontsize=9)
    fig.suptitle(figure_title(title, note), fontsize=11)
    return fig


@_styled
def label_frequency(counts: pd.Series, n_items: int, item: str, ylabel: str, source: str, note: str = "",
                    color: str = "tab:blue"):
    """Bars: the share (%) of ``n_items`` items (``item``: "image", "sentence") carrying each class of ``counts``.

    The title says ``source``, the number of items and the mean number of labels per item.
    """
    if n_items <= 0:
        raise ValueError(f"label_frequency: n_items={n_items!r}; expected a positive number of {item}s")
    share = 100 * np.asarray(counts, dtype=float) / n_items
    fig, axes = _figure(figsize=(max(8.0, 0.42 * len(counts) + 2), 4.8))
    ax = axes[0, 0]
    ax.bar(np.arange(len(share)), share, color=color)
    ax.set_xlim(-0.6, len(share) - 0.4)
    _class_ticks(ax, [str(c) for c in counts.index])
    ax.set_xlabel("class")
    ax.set_ylabel(ylabel)
    ax.set_title(figure_title(f"Label frequency, {source} ({n_items} {item}s, "
                              f"{float(np.sum(counts)) / n_items:.2f} labels per {item})", note), fontsize=10)
    return fig


@_styled
def labels_per_sentence(per_text: pd.Series, k_range: Sequence[int] | None = None, note: str = ""):
    """Bars: the share (%) of sentences naming 0, 1, 2, ... labels (``per_text``: :func:`~lcmc_core.text.corpus.labels_per_text`).

    ``k_range``: the range of the number of labels requested per sentence, when the corpus was generated here.
    """
    total = max(int(per_text.sum()), 1)
    k = np.asarray(per_text.index, dtype=int)
    mean = float((k * per_text.to_numpy()).sum()) / total
    fig, axes = _figure(figsize=(7, 4.3))
    ax = axes[0, 0]
    ax.bar(k, 100 * per_text.to_numpy() / total, color="tab:green")
    ax.set_xticks(k)
    ax.set_xlabel("labels named by a sentence")
    ax.set_ylabel("sentences (%)")
    asked = f"; requested k ~ U{{{k_range[0]}..{k_range[1]}}}" if k_range is not None else ""
    ax.set_title(figure_title(f"Labels per sentence ({total} sentences, mean {mean:.2f}{asked})", note, 70), fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------ the toy CLIPs

def variant_colors(variants: Sequence[str]) -> dict[str, tuple]:
    """One colour per toy CLIP variant, the same in every figure (:data:`~lcmc_core.images.toyclip.VARIANTS` in order first)."""
    import seaborn as sns

    from ..images.toyclip import VARIANTS

    order = list(VARIANTS) + [v for v in variants if v not in VARIANTS]
    palette = sns.color_palette("deep", len(order))
    return {v: palette[order.index(v)] for v in variants}


_RETRIEVAL = (("i2t R@1 (%)", "image → text\nR@1"), ("i2t R@5 (%)", "image → text\nR@5"),
              ("t2i R@1 (%)", "text → image\nR@1"), ("t2i R@5 (%)", "text → image\nR@5"))


@_styled
def toy_clip_metrics(report: Mapping, note: str = ""):
    """Three panels per toy CLIP variant (one colour each): retrieval recall, zero-shot mAP against chance, modality gap.

    ``report``: :func:`~lcmc_core.images.toyclip.build_variants`'s report (as tabulated by
    :func:`~lcmc_core.reporting.tables.toy_clip_metrics_table`). One legend for the figure, below the panels.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from .tables import toy_clip_metrics_table

    metrics = toy_clip_metrics_table(report)
    n_heldout = next(iter(report["variants"].values()))["metrics"]["n_heldout"]
    variants = list(metrics.index)
    colors = variant_colors(variants)
    fig, axes = _figure(1, 3, figsize=(16, 5.4), gridspec_kw={"width_ratios": [2.0, 1.25, 1.25]})
    ax_r, ax_z, ax_g = axes[0]
    width = 0.8 / len(variants)
    for j, v in enumerate(variants):
        pos = np.arange(len(_RETRIEVAL)) + (j - (len(variants) - 1) / 2) * width
        ax_r.bar(pos, [metrics.loc[v, c] for c, _ in _RETRIEVAL], width, color=colors[v])
    chance_r1 = float(metrics["chance R@1 (%)"].iloc[0])
    ax_r.axhline(chance_r1, color="grey", ls="--", lw=1.2)
    ax_r.set_xticks(np.arange(len(_RETRIEVAL)), [short for _, short in _RETRIEVAL])
    ax_r.set_xlabel("retrieval direction and measure")
    ax_r.set_ylabel(f"recall on {n_heldout} held-out pairs (%)")
    ax_r.set_title("retrieval on held-out pairs")

    x = np.arange(len(variants))
    zs = metrics["zero-shot mAP (%) [published protocol]"]
    ax_z.bar(x, zs, 0.7, color=[colors[v] for v in variants])
    chance_map = float(metrics["chance mAP (%)"].iloc[0])
    ax_z.axhline(chance_map, color="grey", ls=":", lw=1.5)
    ax_z.set_ylim(0, max(100.0, float(zs.max()) * 1.05))
    ax_z.set_ylabel("zero-shot mAP on the test split (%)")
    ax_z.set_title("zero-shot mAP (published protocol)", fontsize=11)

    gap = metrics["modality gap [no-pos pool]"]
    ax_g.bar(x, gap, 0.7, color=[colors[v] for v in variants])
    ax_g.axhline(OPENAI_CLIP_COCO_GAP, color="black", ls="-.", lw=1.2)
    ax_g.set_ylim(0, max(1.0, float(gap.max()) * 1.1))
    ax_g.set_ylabel("gap: |mean image − mean text|")
    ax_g.set_title("modality gap of the scored embedding", fontsize=11)
    for ax in (ax_z, ax_g):
        ax.set_xticks(x, variants, fontsize=9)
        ax.set_xlabel("toy CLIP variant")
    for ax, values, fmt in ((ax_z, zs, "{:.1f}"), (ax_g, gap, "{:.2f}")):
        for xi, val in zip(x, values):
            ax.annotate(fmt.format(val), (xi, val), xytext=(0, -3), textcoords="offset points", ha="center",
                        va="top", fontsize=9, color="white", fontweight="bold")
    handles = [Patch(color=colors[v], label=v) for v in variants]
    handles += [Line2D([], [], color="grey", ls="--", label=f"chance R@1 ({chance_r1:.2g}%)"),
                Line2D([], [], color="grey", ls=":", lw=1.5, label=f"chance mAP ({chance_map:.1f}%)"),
                Line2D([], [], color="black", ls="-.", label=f"OpenAI CLIP on MS-COCO ({OPENAI_CLIP_COCO_GAP:g})")]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9, title="toy CLIP variant / reference",
               title_fontsize=9)
    fig.suptitle(figure_title("Toy CLIP variants: retrieval, zero-shot mAP and modality gap", note), fontsize=11)
    return fig


@_styled
def pretraining_curves(curves: pd.DataFrame, note: str = "", size: str = ""):
    """Contrastive loss and learned logit scale per optimisation step, one line per variant (``curves``:
    :func:`~lcmc_core.reporting.tables.pretraining_curves`)."""
    variants = list(dict.fromkeys(curves["variant"]))
    colors = variant_colors(variants)
    fig, axes = _figure(1, 2, figsize=(13, 4.8))
    for ax, column, ylabel, lw in ((axes[0, 0], "loss", "contrastive loss (per batch)", 1.0),
                                   (axes[0, 1], "logit_scale", "logit scale (1 / temperature)", 1.5)):
        for v in variants:
            part = curves[curves["variant"] == v]
            ax.plot(part["step"], part[column], color=colors[v], lw=lw, label=v)
        ax.set_xlabel("optimisation step")
        ax.set_ylabel(ylabel)
        ax.legend(title="variant", fontsize=9, title_fontsize=9)
    axes[0, 1].set_ylim(0, None)
    fig.suptitle(figure_title("Toy CLIP pretraining" + (f" ({size} size)" if size else ""), note), fontsize=11)
    return fig


@_styled
def variant_retrieval_gap(views: Mapping[str, Mapping], metrics: pd.DataFrame, note: str = "", n_lines: int = 30):
    """Per variant (a row): a 2-D PCA of held-out image and caption embeddings with ``n_lines`` matched pairs joined,
    and histograms of matched and unmatched cosines on one x axis for all variants.

    ``views``: :func:`~lcmc_core.experiments.ablations.variant_gap_views`; ``metrics``: the variants' retrieval table.
    """
    import seaborn as sns

    if not views:
        raise ValueError("variant_retrieval_gap: no variant to draw; expected variant_gap_views(...) output")
    all_cos = np.concatenate([np.concatenate([v["matched"], v["unmatched"]]) for v in views.values()])
    bins = np.linspace(all_cos.min(), all_cos.max(), 41)   # one x-axis for every variant's histogram
    fig, axes = _figure(len(views), 2, figsize=(13, 4.6 * len(views)))
    for (variant, v), (ax_pca, ax_hist) in zip(views.items(), axes):
        m = metrics.loc[variant]
        k = min(n_lines, len(v["image_2d"]))
        for (x0, y0), (x1, y1) in zip(v["image_2d"][:k], v["text_2d"][:k]):
            ax_pca.plot([x0, x1], [y0, y1], color="grey", lw=0.6, alpha=0.7)
        ax_pca.scatter(*np.asarray(v["image_2d"]).T, s=6, alpha=0.5, label="image")
        ax_pca.scatter(*np.asarray(v["text_2d"]).T, s=6, alpha=0.5, label="caption")
        ax_pca.set_xlabel("PC 1")
        ax_pca.set_ylabel("PC 2")
        ax_pca.legend(markerscale=3, fontsize=9)
        ax_pca.set_title(f"{variant}: gap {v['gap_norm']:.2f}, i2t R@1 {m['i2t R@1 (%)']:.1f}%, "
                         f"t2i R@1 {m['t2i R@1 (%)']:.1f}%", fontsize=10)
        sns.histplot({"matched pairs": v["matched"], "unmatched pairs": v["unmatched"]}, stat="density",
                     common_norm=False, bins=bins, element="step", ax=ax_hist)
        ax_hist.set_xlim(bins[0], bins[-1])
        ax_hist.set_xlabel("cosine similarity (image, caption)")
        ax_hist.set_ylabel("density")
        ax_hist.set_title(f"{variant}: matched mean {np.mean(v['matched']):.2f}, "
                          f"unmatched mean {np.mean(v['unmatched']):.2f}", fontsize=10)
    n = len(next(iter(views.values()))["matched"])
    fig.suptitle(figure_title(f"Held-out image-caption pairs ({n} per variant): PCA, lines join {k} matched pairs", note),
                 fontsize=11)
    return fig


# ------------------------------------------------------------------------------------------ the corpus

@_styled
def generation_outcomes(summary, note: str = ""):
    """Bars: answers per outcome of corpus generation (accepted, rejected per reason, pending), or None when
    every answer was accepted (nothing rejected, nothing pending: a chart of zeros says nothing) or without a summary."""
    from .tables import generation_outcomes as outcome_counts

    if summary is None:
        return None
    counts = outcome_counts(summary)
    if not counts.drop("accepted").any():
        return None
    counts = counts[(counts > 0) | (counts.index == "accepted")]
    s = summary.to_dict() if hasattr(summary, "to_dict") else dict(summary)
    gen = s.get("generator") or {}
    fig, axes = _figure(figsize=(8.5, 0.45 * len(counts) + 1.8))
    ax = axes[0, 0]
    y = np.arange(len(counts))
    colors = ["tab:green" if o == "accepted" else "tab:grey" if o == "pending" else "tab:red" for o in counts.index]
    ax.barh(y, counts.to_numpy(), color=colors)
    for yi, c in zip(y, counts.to_numpy()):
        ax.annotate(f"{c}", (c, yi), xytext=(3, 0), textcoords="offset points", va="center", fontsize=9)
    ax.set_yticks(y, list(counts.index))
    ax.invert_yaxis()
    ax.set_xlim(0, counts.max() * 1.12)
    ax.set_xlabel("answers")
    ax.set_ylabel("outcome")
    ax.set_title(figure_title(f"Generation outcomes: {s.get('accepted')} of {s.get('n')} requests accepted "
                              f"({gen.get('source') or gen.get('name') or 'generator'})", note, 70), fontsize=10)
    return fig


#: Cells of :func:`cooccurrence_heatmaps` that have no finite ratio, each in a colour that is not on the diverging scale.
NEVER_TOGETHER_COLOR = "#6e6e6e"   # observed 0 while both classes occur (log2 = -inf): grey, on no end of the scale
DIAGONAL_COLOR = "#dcdcdc"         # a class with itself: undefined (light grey, hatched)
NOT_SEEN_COLOR = "#ffffff"         # a class that never occurs in that data: no expectation (white, cross-hatched)


def _cells(ax, mask: np.ndarray, color: str, label: str, hatch: str | None = None):
    """Squares over the cells of ``mask`` (row i, column j at x = j, y = i) in one colour: a labelled collection."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    rows, cols = np.nonzero(mask)
    patches = [Rectangle((j, i), 1, 1) for i, j in zip(rows, cols)]
    coll = PatchCollection(patches, facecolor=color, edgecolor="white" if hatch is None else "#999999",
                           linewidth=0.3, hatch=hatch, label=label, zorder=2)
    coll.set_gid(label)
    ax.add_collection(coll)
    return coll


@_styled
def cooccurrence_heatmaps(ratios, titles, limit: float = 3.0, suptitle: str = ""):
    """Heatmaps of log2(observed / expected) co-occurrence side by side, on one diverging scale centred at 0.

    ``ratios``: C x C frames of :func:`lcmc_core.text.corpus.cooccurrence_ratio` (same classes). Finite
    values are drawn clipped to [-limit, limit] (the colour bar's arrows mark the clipping); pairs never
    seen together (-inf) get :data:`NEVER_TOGETHER_COLOR` (grey), the diagonal (a class with itself) is
    hatched light grey, pairs with a class that never occurs are cross-hatched white; a legend names each
    that is present.
    """
    import matplotlib as mpl
    from matplotlib.patches import Patch

    ratios, titles = list(ratios), list(titles)
    if len(ratios) != len(titles) or not ratios:
        raise ValueError(f"cooccurrence_heatmaps: {len(ratios)} tables for {len(titles)} titles; expected one title each")
    n = len(ratios[0])
    if any(r.shape != (n, n) for r in ratios):
        raise ValueError(f"cooccurrence_heatmaps: tables of shapes {[r.shape for r in ratios]}; expected all {n} x {n}")
    side = max(6.0, 0.3 * n + 2.2)
    fig, axes = _figure(1, len(ratios), figsize=(side * len(ratios) + 1.8, side + 1.2))
    cmap = mpl.colormaps["RdBu_r"]
    norm = mpl.colors.Normalize(vmin=-limit, vmax=limit)
    eye = np.eye(n, dtype=bool)
    present = {}
    mesh = None
    for ax, r, t in zip(axes[0], ratios, titles):
        values = r.to_numpy(dtype=float)
        finite = np.isfinite(values) & ~eye
        mesh = ax.pcolormesh(np.ma.masked_array(np.clip(values, -limit, limit), ~finite), cmap=cmap, norm=norm)
        for mask, color, label, hatch in ((np.isneginf(values) & ~eye, NEVER_TOGETHER_COLOR, "never together (0 observed)", None),
                                          (eye, DIAGONAL_COLOR, "diagonal: a class with itself (undefined)", "///"),
                                          (np.isnan(values) & ~eye, NOT_SEEN_COLOR, "a class never occurs here", "xx")):
            if mask.any():
                _cells(ax, mask, color, label, hatch)
                present[label] = Patch(facecolor=color, edgecolor="#999999", hatch=hatch, label=label)
        ax.set_xlim(0, n)
        ax.set_ylim(n, 0)
        ax.set_aspect("equal")
        ax.grid(False)
        small = n > 20
        ax.set_xticks(np.arange(n) + 0.5, list(r.columns), rotation=90, fontsize=6 if small else 8)
        ax.set_yticks(np.arange(n) + 0.5, list(r.index), fontsize=6 if small else 8)
        ax.set_xlabel("class")
        ax.set_ylabel("class")
        ax.set_title(t, fontsize=10)
    fig.colorbar(mesh, ax=list(axes[0]), shrink=0.75, extend="both",
                 label=f"log2(observed / expected if independent), clipped to [{-limit:g}, {limit:g}]")
    if present:
        fig.legend(handles=list(present.values()), loc="outside lower center", ncol=len(present), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig
