"""Figures shared by the notebooks: one colour per method family, forest plots of results and paired differences.

Also the figures that explain the method and the data: :func:`pipeline_diagram` (CoMC end to end),
:func:`sprite_legend` (the toy world's class -> sprite key), :func:`cooccurrence_heatmaps` (observed /
expected co-occurrence on a diverging, centred scale) and :func:`prediction_gallery` (test images with
each method's top-k classes).

Every figure that shows methods colours them by :func:`method_color` (one colour per family of
:data:`~lcmc_core.experiments.rows.ROW_INFO`: zero-shot, training-free peers, the text classifier,
CoMC, TaI-DPT, the test-selected reference), so a reader can follow a method across notebooks.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FAMILY_COLORS", "MAPPING_COLORS", "method_family", "method_color", "forest_plot", "difference_plot",
           "core_range", "OFF_SCALE_IQR",
           "bars_with_errors", "PIPELINE_STEPS", "pipeline_texts", "pipeline_diagram", "sprite_legend", "cooccurrence_heatmaps",
           "prediction_gallery"]

FAMILY_COLORS = {"zero-shot": "#7f7f7f", "peer": "#9467bd", "trained": "#1f77b4", "CoMC": "#d62728",
                 "TaI-DPT": "#2ca02c", "reference": "#ff7f0e"}
#: "with / without mapping" in every ablation figure
MAPPING_COLORS = {"mAP (CoMC)": FAMILY_COLORS["CoMC"], "mAP (no mapping)": FAMILY_COLORS["trained"]}


def method_family(name: str) -> str:
    """The family of a comparison row (:data:`lcmc_core.experiments.rows.ROW_INFO`; "peer" for a row it does not know)."""
    from ..experiments.rows import family_of
    return family_of(name)


def method_color(name: str) -> str:
    """The colour of a method's family."""
    return FAMILY_COLORS[method_family(name)]


def _legend(ax, families):
    """The family legend outside the data: to the right of the axes."""
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color=FAMILY_COLORS[f], label=f) for f in FAMILY_COLORS if f in families],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="family", title_fontsize=8,
              borderaxespad=0.0)


#: Points further than this many interquartile ranges from the middle half of the values are drawn off scale.
OFF_SCALE_IQR = 3.0


def core_range(values) -> tuple[float, float]:
    """The range a zoomed axis shows: every value within :data:`OFF_SCALE_IQR` interquartile ranges of the quartiles
    (Tukey's far-out fences), so one far-off row cannot squeeze the others into a few pixels."""
    v = np.asarray(list(values), dtype=float)
    v = v[np.isfinite(v)]
    q1, q3 = np.percentile(v, [25, 75])
    iqr = max(q3 - q1, 1e-9)
    inside = v[(v >= q1 - OFF_SCALE_IQR * iqr) & (v <= q3 + OFF_SCALE_IQR * iqr)]
    return float(inside.min()), float(inside.max())


def _off_scale(ax, value: float, y: float, lo: float, hi: float, color: str, label: str) -> bool:
    """Draw a row whose value lies outside ``[lo, hi]`` as an arrow at the axis edge with its value; True if it did."""
    if lo <= value <= hi:
        return False
    left = value < lo
    x = lo if left else hi
    ax.plot(x, y, "<" if left else ">", color=color, ms=9, clip_on=False)
    ax.annotate(f"{label} (off scale)", (x, y), xytext=(8 if left else -8, 0), textcoords="offset points",
                ha="left" if left else "right", va="center", fontsize=8, color=color)
    return True


def forest_plot(ax, table: pd.DataFrame, reference: str | None = None, value: str = "mAP",
                low: str = "CI low", high: str = "CI high", xlabel: str = "test mAP (%)") -> None:
    """Point and interval per method on a zoomed axis, coloured by family, a dashed line at ``reference``'s value.

    Rows far from the others (:func:`core_range`) are drawn off scale: an arrow at the edge with their value.
    """
    y = np.arange(len(table))
    colors = [method_color(m) for m in table.index]
    has_ci = low in table and high in table
    lo, hi = core_range(table[value])
    span = max(hi - lo, 1.0)
    if has_ci:
        ends = pd.concat([table[low], table[high]])
        lo, hi = min(lo, ends[ends >= lo - span].min()), max(hi, ends[ends <= hi + span].max())
    pad = max(0.5, 0.05 * (hi - lo))
    lo, hi = lo - pad, hi + 4 * pad
    for yi, (_name, row), c in zip(y, table.iterrows(), colors):
        if _off_scale(ax, row[value], yi, lo, hi, c, f"{row[value]:.1f}"):
            continue
        if has_ci:
            ax.plot([max(row[low], lo), min(row[high], hi)], [yi, yi], color=c, lw=2)
        ax.plot(row[value], yi, "o", color=c, ms=6)
        ax.text(min(row[high], hi) if has_ci else row[value], yi, f"  {row[value]:.1f}", va="center", fontsize=8)
    if reference is not None and reference in table.index:
        ax.axvline(table.loc[reference, value], color=FAMILY_COLORS["zero-shot"], ls="--", lw=1)
    ax.set_yticks(y, table.index, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(lo, hi)
    ax.set_xlabel(xlabel)
    _legend(ax, {method_family(m) for m in table.index})


def difference_plot(ax, paired: pd.DataFrame,
                    xlabel: str = "CoMC minus the row (mAP points): family-wise 95% interval (thick), unadjusted (thin)"
                    ) -> None:
    """Paired differences around a line at 0: the family-wise interval (thick) over the unadjusted one (thin);
    filled where the family-wise interval excludes 0; far-off rows drawn off scale."""
    y = np.arange(len(paired))
    family = "family-wise low" in paired
    lo_col, hi_col = ("family-wise low", "family-wise high") if family else ("CI low", "CI high")
    lo, hi = core_range(list(paired["difference"]) + [0.0])
    span = max(hi - lo, 1.0)
    ends = pd.concat([paired[lo_col], paired[hi_col]])
    lo, hi = min(lo, ends[ends >= lo - span].min()), max(hi, ends[ends <= hi + span].max())
    pad = max(0.2, 0.05 * (hi - lo))
    lo, hi = lo - pad, hi + pad
    for yi, (name, row) in zip(y, paired.iterrows()):
        other = name.split(" - ", 1)[-1]
        c = method_color(other) if not name.startswith("mapping gain") else FAMILY_COLORS["CoMC"]
        if _off_scale(ax, row["difference"], yi, lo, hi, c, f"{row['difference']:+.1f}"):
            continue
        if family:
            ax.plot([max(row["CI low"], lo), min(row["CI high"], hi)], [yi, yi], color=c, lw=1)
        ax.plot([max(row[lo_col], lo), min(row[hi_col], hi)], [yi, yi], color=c, lw=3, alpha=0.7)
        excludes = row[lo_col] > 0 or row[hi_col] < 0
        ax.plot(row["difference"], yi, "o", color=c, ms=6, mfc=c if excludes else "white")
    ax.axvline(0, color="black", lw=1)
    ax.set_xlim(lo, hi)
    ax.set_yticks(y, paired.index, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)


def bars_with_errors(ax, table: pd.DataFrame, x: str, hue: str | None = None, value: str = "mAP",
                     error: str = "mAP std") -> None:
    """Bars of ``value`` +- ``error`` per ``x`` (grouped by ``hue``: "CoMC" in CoMC's colour, others the classifier's)."""
    groups = [None] if hue is None else list(dict.fromkeys(table[hue]))
    width = 0.8 / len(groups)
    for j, g in enumerate(groups):
        part = table if g is None else table[table[hue] == g]
        pos = np.arange(len(part)) + (j - (len(groups) - 1) / 2) * width
        color = FAMILY_COLORS["CoMC"] if g == "CoMC" else FAMILY_COLORS["trained"]
        b = ax.bar(pos, part[value], width, yerr=part[error], capsize=3, color=color, label=g)
        ax.bar_label(b, fmt="%.1f", fontsize=8)
    cats = list(dict.fromkeys(table[x].astype(str)))
    ax.set_xticks(np.arange(len(cats)), cats)


#: The boxes of :func:`pipeline_diagram`: (key, text, row, column); row 0 trains on text, row 1 infers on images.
#: ``{noise_std}``, ``{alpha}`` and ``{tau}`` are filled with the package's defaults (see :func:`pipeline_texts`).
PIPELINE_STEPS = (
    ("corpus", "training corpus\nLLM or template sentences\n+ the labels each names", 0, 0),
    ("text_encoder", "CLIP text encoder\n(frozen)", 0, 1),
    ("text_emb", "text embeddings\n+ Gaussian noise\n(std {noise_std:g} in training)", 0, 2),
    ("classifier", "linear classifier W\ntrained on text only\n(multi-label loss)", 0, 3),
    ("image", "test image", 1, 0),
    ("image_encoder", "CLIP image encoder\n(frozen ResNet)", 1, 1),
    ("features", "global embedding f\n+ local embeddings f_ij\n(attention pool, no pos. emb.)", 1, 2),
    ("mapping", "cross-modal mapping\nf' = a f + (1 - a) m\nm = softmax(f T' / tau) T\n(a = {alpha:g}, tau = {tau:g})", 1, 3),
    ("scores", "scores W f'\nglobal + local (max over\npositions), merged 0.5 / 0.5", 1, 4),
    ("memory", "text memory T\none prompt embedding\nper class", 0, 4),
)
_PIPELINE_ARROWS = (("corpus", "text_encoder"), ("text_encoder", "text_emb"), ("text_emb", "classifier"),
                    ("image", "image_encoder"), ("image_encoder", "features"), ("features", "mapping"),
                    ("mapping", "scores"), ("classifier", "scores"), ("memory", "mapping"),
                    ("text_encoder", "memory"))


def pipeline_texts() -> dict[str, str]:
    """The text of each :data:`PIPELINE_STEPS` box, with the defaults of the method filled in (never hand-copied)."""
    from lcmc_core.method.classifier import TrainConfig
    from lcmc_core.method.comc import CoMC

    defaults = CoMC()
    values = dict(noise_std=TrainConfig().noise_std, alpha=defaults.alpha, tau=defaults.temperature)
    return {key: text.format(**values) for key, text, _row, _col in PIPELINE_STEPS}


def pipeline_diagram(title: str = "CoMC: train on text only, map images towards text, score with the text classifier"):
    """A figure of the method end to end (:data:`PIPELINE_STEPS`): training on text (top), inference on images (bottom)."""
    import matplotlib.pyplot as plt

    texts = pipeline_texts()

    fig, ax = plt.subplots(figsize=(15, 5.2))
    ax.set_xlim(-0.6, 4.6)
    ax.set_ylim(-0.75, 1.75)
    ax.set_axis_off()
    boxes, rows = {}, {}
    colours = {0: "#dbe9f6", 1: "#fde0dd"}
    for key, _text, row, col in PIPELINE_STEPS:
        text = texts[key]
        face = "#fff2cc" if key in ("mapping", "memory") else colours[row]
        t = ax.text(col, 1 - row, text, ha="center", va="center", fontsize=9.5, zorder=3,
                    bbox=dict(boxstyle="round,pad=0.5", facecolor=face, edgecolor="#555555"))
        boxes[key], rows[key] = t, row
    fig.canvas.draw()  # lay the boxes out, so that arrows can run from edge to edge
    for a, b in _PIPELINE_ARROWS:
        if (a, b) == ("text_encoder", "memory"):  # the memory is encoded by the same text encoder
            start, end, rad = (0.5, 0.0), (0.3, 0.0), 0.25
        elif rows[a] == rows[b]:    # along a row: right edge -> left edge
            start, end, rad = (1.0, 0.5), (0.0, 0.5), 0.0
        else:                       # down from training to inference: bottom -> top
            start, end, rad = (0.5, 0.0), (0.5, 1.0), 0.0
        ax.annotate("", xy=end, xycoords=boxes[b].get_bbox_patch(), xytext=start,
                    textcoords=boxes[a].get_bbox_patch(), zorder=4,
                    arrowprops=dict(arrowstyle="-|>", color="#333333", lw=1.4, shrinkA=2, shrinkB=2,
                                    connectionstyle=f"arc3,rad={rad}"))
    ax.text(-0.55, 1.55, "training (text only)", fontsize=10, fontweight="bold", color="#1f4e79")
    ax.text(-0.55, -0.62, "inference (images)", fontsize=10, fontweight="bold", color="#7f2704")
    ax.set_title(title, fontsize=11)
    return fig


def sprite_legend(sprites, classnames, ncols: int = 10, title: str = "EmojiVOC: the sprite of each class"):
    """A key from class name to the sprite that draws it (one panel per class, the name under it)."""
    import matplotlib.pyplot as plt

    if len(sprites) != len(classnames):
        raise ValueError(f"sprite_legend: {len(sprites)} sprites for {len(classnames)} class names; expected one each")
    nrows = -(-len(sprites) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.35 * ncols, 1.6 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, sprite, name in zip(axes.flat, sprites, classnames):
        ax.imshow(sprite, interpolation="lanczos")
        ax.set_title(name, fontsize=9, y=-0.28)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def cooccurrence_heatmaps(ratios, titles, limit: float = 3.0, suptitle: str = ""):
    """Heatmaps of log2(observed / expected) co-occurrence side by side, on one diverging scale centred at 0.

    ``ratios``: C x C frames of :func:`lcmc_core.text.corpus.cooccurrence_ratio` (same classes);
    values are clipped to [-limit, limit] (pairs never seen together show at -limit), the
    diagonal is blank. Returns the figure. (The scale is centred by symmetric vmin/vmax; seaborn's
    ``center=`` would re-sample the colour map and warn.)
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    ratios, titles = list(ratios), list(titles)
    if len(ratios) != len(titles) or not ratios:
        raise ValueError(f"cooccurrence_heatmaps: {len(ratios)} tables for {len(titles)} titles; expected one title each")
    n = len(ratios[0])
    side = max(6.0, 0.32 * n + 2)
    fig, axes = plt.subplots(1, len(ratios), figsize=(side * len(ratios) + 1.5, side), squeeze=False)
    for i, (ax, r, t) in enumerate(zip(axes[0], ratios, titles)):
        values = r.clip(-limit, limit).where(~np.eye(n, dtype=bool))
        sns.heatmap(values, cmap="RdBu_r", vmin=-limit, vmax=limit, square=True, ax=ax,
                    cbar=i == len(ratios) - 1, xticklabels=True, yticklabels=True,
                    cbar_kws={"label": "log2(observed / expected if independent)", "shrink": 0.8})
        ax.set_title(t, fontsize=10)
        ax.set_xlabel("class")
        ax.set_ylabel("class")
        ax.tick_params(labelsize=8 if n <= 20 else 5)
        ax.grid(False)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    return fig


def prediction_gallery(images, truth, predictions, title: str, ncols: int = 4):
    """Images with their true labels and each method's top-k classes (correct ones marked +, wrong ones -).

    ``truth``: per image the list of true class names; ``predictions``: method -> per image the list
    of predicted class names (best first), e.g. from :func:`lcmc_core.reporting.tables.top_k_predictions`.
    """
    import matplotlib.pyplot as plt

    images = list(images)
    for method, preds in predictions.items():
        if len(preds) != len(images):
            raise ValueError(f"prediction_gallery: {len(preds)} predictions for {method!r}, {len(images)} images; "
                             "expected one per image")
    if len(truth) != len(images):
        raise ValueError(f"prediction_gallery: {len(truth)} label lists for {len(images)} images; expected one each")
    nrows = -(-len(images) // ncols)
    # inches: the image, the prediction lines under it (7.5 pt, ~1.3 line spacing), the next row's title
    image_in, text_in, title_in, top_in = 3.6, (len(predictions) + 0.6) * 7.5 * 1.3 / 72, 0.3, 0.8
    height = nrows * (image_in + text_in + title_in) + top_in
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, height), squeeze=False,
                             gridspec_kw=dict(hspace=(text_in + title_in) / image_in, wspace=0.25))
    # not tight_layout: it ignores the text under each image, which then ran into the next row's title
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - (top_in + title_in * 0.7) / height,
                        bottom=(text_in + 0.05) / height)
    for ax in axes.flat:
        ax.set_axis_off()
    for i, (ax, image) in enumerate(zip(axes.flat, images)):
        ax.imshow(image, interpolation="nearest")
        ax.set_title("true: " + ", ".join(truth[i]), fontsize=8.5, loc="left")
        lines = []
        for method, preds in predictions.items():
            marked = [f"{c} {'+' if c in truth[i] else '-'}" for c in preds[i]]
            lines.append(f"{method}: " + ", ".join(marked))
        ax.text(0, -0.02, "\n".join(lines), transform=ax.transAxes, va="top", ha="left", fontsize=7.5)
    fig.suptitle(title, fontsize=11)
    return fig
