"""Figures shared by the notebooks: one colour per method family, forest plots of results and paired differences.

Also the figures of the method's steps (training curves, one image's mapping, the gap before and after),
the ablations, the seed study, and galleries of test images with each method's top-k classes. The
figures of the data (the method's pipeline, the toy world, the toy CLIPs, the corpus) are in
:mod:`.data_figures`.

Every figure that shows methods colours them by :func:`method_color` (one colour per family of
:data:`~lcmc_core.experiments.rows.ROW_INFO`: zero-shot, training-free peers, the text classifier,
CoMC, TaI-DPT, the test-selected reference), so a reader can follow a method across notebooks.
"""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

__all__ = ["FAMILY_COLORS", "MAPPING_COLORS", "method_family", "method_color", "forest_plot", "difference_plot",
           "core_range", "OFF_SCALE_IQR", "points_with_errors", "training_curves", "noise_example", "mapping_one_image",
           "pca_before_after", "cosine_histograms", "mapping_heatmap", "ablation_panels", "main_results",
           "per_class_ap", "learner_curves", "published_comparison", "gap_study", "top_k_gallery",
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
    """The family legend outside the data: one row under the axes."""
    from matplotlib.patches import Patch
    shown = [f for f in FAMILY_COLORS if f in families]
    ax.legend(handles=[Patch(color=FAMILY_COLORS[f], label=f) for f in shown], loc="upper center",
              bbox_to_anchor=(0.5, -0.09), ncol=len(shown), fontsize=8, title="family", title_fontsize=8,
              frameon=False)


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


def _legend_outside(ax) -> None:
    """The legend to the right of the axes, where it covers no data."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


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
    reference = str(paired.index[-1]).split(" - ", 1)[0] if len(paired) else ""
    ax.set_yticks(y, [n if n.startswith("mapping gain") else "minus " + n.split(" - ", 1)[-1] for n in paired.index],
                  fontsize=8)
    if reference:
        ax.set_ylabel(f"row compared with {reference}")
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)


def points_with_errors(ax, table: pd.DataFrame, label: str, value: str = "mAP", error: str = "mAP std",
                       color: str | None = None, marker: str = "o", offset: float = 0.0, name: str | None = None) -> None:
    """One point with a +- ``error`` bar per row of ``table`` (rows top to bottom, labelled by column ``label``).

    Points on a zoomed axis, not bars: a bar's length would say "from zero", which a zoomed axis does not show.
    """
    y = np.arange(len(table)) + offset
    ax.errorbar(table[value], y, xerr=table[error] if error in table else None, fmt=marker, capsize=3, ms=6,
                color=color or FAMILY_COLORS["CoMC"], label=name)
    ax.set_yticks(np.arange(len(table)), [str(v) for v in table[label]], fontsize=8)
    ax.set_ylim(len(table) - 0.5, -0.5)


#: Characters of one prediction line under a gallery image (its column is 4.4 inches at 7.5 pt).
GALLERY_LINE_CHARS = 72


def _short_names(methods: list[str]) -> dict[str, str]:
    """Each method's name without its bracketed protocol ("SPARC [compound ...]" -> "SPARC") where that stays unique."""
    short = {m: m.split(" [")[0] for m in methods}
    counts = {s: list(short.values()).count(s) for s in short.values()}
    return {m: s if counts[s] == 1 else m for m, s in short.items()}


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
    names = _short_names(list(predictions))
    for i, (ax, image) in enumerate(zip(axes.flat, images)):
        ax.imshow(image, interpolation="nearest")
        ax.set_title("true: " + ", ".join(truth[i]), fontsize=8.5, loc="left")
        lines = []
        for method, preds in predictions.items():
            marked = [f"{c} {'+' if c in truth[i] else '-'}" for c in preds[i]]
            lines.append(textwrap.shorten(f"{names[method]}: " + ", ".join(marked), GALLERY_LINE_CHARS,
                                          placeholder=" ..."))
        ax.text(0, -0.02, "\n".join(lines), transform=ax.transAxes, va="top", ha="left", fontsize=7.5)
    fig.suptitle(title, fontsize=11)
    return fig


# ---------------------------------------------------------------------------------------------
# the notebooks' figures (02-06): each returns the figure; the notebook saves it with a caption
# ---------------------------------------------------------------------------------------------
def training_curves(history, title: str = ""):
    """The classifier's training loss and learning rate per epoch (one :meth:`CoMC.fit`'s ``history_``)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    h = pd.DataFrame(history)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    axes[0].plot(h["epoch"] + 1, h["train_loss"], marker="o", color=FAMILY_COLORS["CoMC"])
    axes[0].set_ylabel("training loss (pairwise ranking, mean per text)")
    axes[0].set_title("loss per epoch (noisy texts)", fontsize=10)
    axes[1].plot(h["epoch"] + 1, h["lr"], marker="o", color=FAMILY_COLORS["trained"])
    axes[1].set_yscale("log")
    axes[1].set_ylabel("learning rate (log scale)")
    axes[1].set_title("schedule: one warm-up epoch, then cosine", fontsize=10)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def noise_example(example: dict, dims: int = 48, title: str = ""):
    """One text embedding's first ``dims`` coordinates before and after training's noise (``walkthrough.noisy_embedding``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 3.8))
    x = np.arange(min(dims, len(example["clean"])))
    ax.plot(x, example["clean"][x], "o-", ms=3, color=FAMILY_COLORS["trained"], label="clean (unit norm)")
    ax.plot(x, example["noisy"][x], "s-", ms=3, color=FAMILY_COLORS["CoMC"], alpha=0.8,
            label=f"+ noise, std {example['std']:g} (norm {example['norm']:.2f}, cosine to clean {example['cosine']:.2f})")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("embedding coordinate")
    ax.set_ylabel("value")
    _legend_outside(ax)
    ax.set_title(title or "one training text's embedding, before and after noise injection", fontsize=10)
    fig.tight_layout()
    return fig


def mapping_one_image(walk, memory_names, classnames, image=None, title: str = ""):
    """CoMC's mapping of one image: its cosine to every memory row, the softmax weights, and the class scores before
    and after (``walkthrough.mapping_of_one_image``); the image itself on the left when given."""
    import matplotlib.pyplot as plt

    panels = 4 if image is not None else 3
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 5.5),
                             gridspec_kw={"width_ratios": ([0.7] if image is not None else []) + [1, 1, 1.2]})
    axes = list(axes)
    if image is not None:
        ax = axes.pop(0)
        ax.imshow(image, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"test image {walk.index}")
        ax.set_ylabel("pixels")
        ax.set_title("the image", fontsize=10)
    y = np.arange(len(memory_names))
    top = set(np.argsort(-walk.weights)[:3])
    colors = [FAMILY_COLORS["CoMC"] if i in top else FAMILY_COLORS["zero-shot"] for i in y]
    axes[0].scatter(walk.similarities, y, c=colors, s=30, zorder=3)
    axes[0].hlines(y, walk.similarities.min(), walk.similarities, color="lightgrey", lw=1)
    span = float(walk.similarities.max() - walk.similarities.min()) or 0.01
    axes[0].set_xlim(walk.similarities.min() - 0.1 * span, walk.similarities.max() + 0.1 * span)
    axes[0].set_xlabel("cosine(image, memory row) (zoomed axis)")
    axes[0].set_title("1. similarity to each memory row", fontsize=10)
    axes[1].barh(y, walk.weights, color=colors)
    axes[1].set_xlabel(f"softmax weight (temperature {walk.temperature:g})")
    axes[1].set_title("2. attention over the memory (top 3 red)", fontsize=10)
    for ax in axes[:2]:
        ax.set_yticks(y, memory_names, fontsize=7)
        ax.set_ylim(len(y) - 0.5, -0.5)
        ax.set_ylabel("memory row (class prompt)")
    yc = np.arange(len(classnames))
    axes[2].plot(walk.scores_before, yc, "o", color=FAMILY_COLORS["trained"], label="raw image embedding f")
    axes[2].plot(walk.scores_after, yc, "s", color=FAMILY_COLORS["CoMC"],
                 label=f"mapped: {walk.alpha:g} f + {1 - walk.alpha:g} m")
    for a, b, yi in zip(walk.scores_before, walk.scores_after, yc):
        axes[2].annotate("", (b, yi), (a, yi), arrowprops={"arrowstyle": "->", "color": "grey", "lw": 0.8})
    axes[2].set_yticks(yc, classnames, fontsize=7)
    axes[2].set_ylim(len(yc) - 0.5, -0.5)
    axes[2].set_xlabel("class score (classifier logit)")
    axes[2].set_ylabel("class")
    axes[2].set_title("3. scores before -> after the mapping", fontsize=10)
    _legend_outside(axes[2])
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def pca_before_after(img2d, txt2d, mapped2d, mem2d, gaps: tuple[float, float], alpha: float, tau: float,
                     title: str = "", pairs: int = 30):
    """One 2-D PCA of images (raw and mapped), their matched captions and the memory; grey lines join ``pairs`` pairs."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(14, 6), sharex=True, sharey=True)
    k = min(pairs, len(img2d))
    panels = (("image embedding (raw)", img2d, FAMILY_COLORS["trained"], gaps[0]),
              (f"image mapped (alpha {alpha:g}, tau {tau:g})", mapped2d, FAMILY_COLORS["CoMC"], gaps[1]))
    for ax, (name, pts, color, gap) in zip(axes, panels):
        for (x0, y0), (x1, y1) in zip(pts[:k], txt2d[:k]):
            ax.plot([x0, x1], [y0, y1], color="grey", lw=0.6, alpha=0.7)
        ax.scatter(*pts.T, s=6, alpha=0.5, label=name, color=color)
        ax.scatter(*txt2d.T, s=6, alpha=0.5, label="text (matched captions)", color="tab:orange")
        ax.scatter(*mem2d.T, s=40, marker="x", color="black", label="text memory (class prompts)")
        ax.set_xlabel("PC 1 (one PCA for both panels)")
        ax.set_ylabel("PC 2")
        ax.set_title(f"{'before' if ax is axes[0] else 'after'} mapping: gap {gap:.2f}", fontsize=10)
        ax.legend(markerscale=2, fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def cosine_histograms(cosines: dict, title: str = ""):
    """Matched vs unmatched image-text cosines, one panel per entry of ``cosines`` (shared bins and axes)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    values = np.concatenate([np.concatenate([c["matched"], c["unmatched"]]) for c in cosines.values()])
    bins = np.linspace(values.min(), values.max(), 61)
    fig, axes = plt.subplots(1, len(cosines), figsize=(6.5 * len(cosines), 4.5), sharex=True, sharey=True,
                             squeeze=False)
    for ax, (name, c) in zip(axes[0], cosines.items()):
        sns.histplot({"matched pairs": c["matched"], "unmatched pairs": c["unmatched"]}, stat="density",
                     common_norm=False, bins=bins, element="step", ax=ax)
        ax.set_xlabel("cosine similarity (image, text)")
        ax.set_ylabel("density")
        ax.set_title(f"{name}: matched {c['matched_mean']:.3f}, unmatched {c['unmatched_mean']:.3f}", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def mapping_heatmap(grid: pd.DataFrame, official: tuple[float, float], no_mapping: float, title: str = ""):
    """mAP difference from no mapping for every (alpha, temperature) of a sweep; the official cell boxed."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    delta = grid - no_mapping
    lim = float(np.abs(delta.to_numpy()).max()) or 1.0
    fig, ax = plt.subplots(figsize=(8, 6.5))
    sns.heatmap(delta, annot=True, fmt="+.1f", cmap="RdBu_r", vmin=-lim, vmax=lim,
                cbar_kws={"label": f"mAP points vs no mapping ({no_mapping:.1f}, alpha = 1)"}, ax=ax)
    alphas, temps = list(grid.index), list(grid.columns)
    if official[0] in alphas and official[1] in temps:
        ax.add_patch(plt.Rectangle((temps.index(official[1]), alphas.index(official[0])), 1, 1, fill=False,
                                   edgecolor="black", lw=2.5))
    ax.set_xlabel("temperature tau of the mapping's softmax")
    ax.set_ylabel("alpha (weight of the image embedding; 1 = no mapping)")
    ax.set_title(title or "mapping sweep: difference from no mapping (box: the official setting)", fontsize=10)
    fig.tight_layout()
    return fig


def ablation_panels(memories, branches, at_official_tau, noise, sizes, losses, zero_shot: float,
                    official_alpha: float, official_noise: float, title: str = ""):
    """The ablations of notebook 04 as points +- std over seeds (CoMC red, no mapping blue, zero-shot dashed grey)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(18, 10.5))
    comc, plain = MAPPING_COLORS["mAP (CoMC)"], MAPPING_COLORS["mAP (no mapping)"]
    zs_kw = dict(color=FAMILY_COLORS["zero-shot"], ls="--", lw=1, label="zero-shot (published protocol)")
    # text memory: one point per memory (the "none" row is the classifier without mapping)
    ax = axes[0, 0]
    colors = [plain if s == 0 else comc for s in memories["size"]]
    for i, (_, row) in enumerate(memories.iterrows()):
        ax.errorbar(row["mAP"], i, xerr=row.get("mAP std", 0), fmt="o", capsize=3, color=colors[i])
    ax.set_yticks(range(len(memories)), [f"{m}\n({s} rows)" if s else m for m, s in
                                         zip(memories["memory"], memories["size"])], fontsize=8)
    ax.set_ylim(len(memories) - 0.5, -0.5)
    ax.set_ylabel("text memory of the mapping")
    ax.set_title("text memory", fontsize=10)
    # branches: with and without mapping
    ax = axes[0, 1]
    for offset, (mapping, color) in zip((-0.15, 0.15), (("none", plain), ("CoMC", comc))):
        part = branches[branches["mapping"] == mapping]
        points_with_errors(ax, part, "branch", color=color, offset=offset,
                           name="CoMC mapping" if mapping == "CoMC" else "no mapping")
    ax.set_ylabel("scoring branch")
    ax.set_title("scoring branch, with and without the mapping", fontsize=10)
    # alpha at the official temperature
    ax = axes[0, 2]
    ax.errorbar(at_official_tau["alpha"], at_official_tau["mAP"], yerr=at_official_tau["mAP std"], marker="o",
                capsize=3, color=comc, label="CoMC (merged scores)")
    ax.axvline(official_alpha, color="black", ls=":", lw=1, label=f"official alpha {official_alpha:g}")
    ax.set_xlabel("alpha (1 = no mapping)")
    ax.set_ylabel("test mAP (%)")
    ax.set_title("mapping strength at the official temperature", fontsize=10)
    # noise and corpus size: with and without mapping
    for ax, table, x, xlabel, name in ((axes[1, 0], noise, "noise std", "training noise std", "noise injection"),
                                       (axes[1, 1], sizes, "sentences", "generated sentences used (0 drawn at 100, "
                                        "log scale; prompts always kept)", "corpus size")):
        xs = table[x].clip(lower=100) if x == "sentences" else table[x]
        for column, marker, label, color in (("mAP (CoMC)", "o", "CoMC (with mapping)", comc),
                                             ("mAP (no mapping)", "s", "same classifier, no mapping", plain)):
            ax.errorbar(xs, table[column], yerr=table[f"{column} std"], marker=marker, capsize=3, label=label,
                        color=color)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test mAP (%)")
        ax.set_title(name, fontsize=10)
    axes[1, 0].axvline(official_noise, color="black", ls=":", lw=1, label=f"official std {official_noise:g}")
    axes[1, 1].set_xscale("log")
    # losses
    ax = axes[1, 2]
    points_with_errors(ax, losses, "loss", value="mAP (CoMC)", error="mAP (CoMC) std", color=comc, offset=-0.15,
                       name="CoMC (with mapping)")
    points_with_errors(ax, losses, "loss", value="mAP (no mapping)", error="mAP (no mapping) std", color=plain,
                       marker="s", offset=0.15, name="same classifier, no mapping")
    ax.set_ylabel("training loss (the official code's six)")
    ax.set_title("training loss", fontsize=10)
    for ax in (axes[0, 0], axes[0, 1], axes[1, 2]):
        ax.set_xlabel("test mAP (%), mean +- std over seeds (zoomed axis)")
        ax.axvline(zero_shot, **zs_kw)
    for ax in (axes[0, 2], axes[1, 0], axes[1, 1]):
        ax.axhline(zero_shot, **zs_kw)
    for ax in axes.flat:
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def main_results(table: pd.DataFrame, paired: pd.DataFrame, reference: str | None, title: str = ""):
    """The headline figure: every method's mAP with its interval (left), CoMC minus each row (right)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(18, 0.42 * max(len(table), len(paired)) + 3),
                             gridspec_kw={"width_ratios": [1.1, 1], "wspace": 0.95})
    forest_plot(axes[0], table, reference=reference,
                xlabel="test mAP (%): mean over seeds, 95% interval over seeds and images")
    axes[0].set_ylabel("method")
    axes[0].set_title("every method (dashed: the best zero-shot protocol)", fontsize=10)
    difference_plot(axes[1], paired)
    axes[1].set_title("CoMC (full) minus each row (filled: the family-wise interval excludes 0)", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def per_class_ap(per_class: pd.DataFrame, title: str = ""):
    """Average precision per class of a few methods (columns), coloured by family."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    columns = list(per_class.columns)
    long = per_class.reset_index().melt(id_vars="class", var_name="method", value_name="AP (%)")
    fig, ax = plt.subplots(figsize=(min(36, max(12, 0.22 * len(per_class) * len(columns))), 5))
    palette = {c: method_color(c) for c in columns}
    if len(set(palette.values())) < len(columns):   # two methods of one family: tell them apart by shade
        palette = dict(zip(columns, sns.color_palette("tab10", len(columns))))
    sns.barplot(data=long, x="class", y="AP (%)", hue="method", palette=palette, ax=ax)
    many = len(per_class) > 25
    ax.tick_params(axis="x", rotation=90 if many else 60, labelsize=7 if many else 10)
    ax.set_xlabel("class")
    ax.set_ylabel("test AP (%)")
    _legend_outside(ax)
    ax.set_title(title or "per-class average precision", fontsize=10)
    fig.tight_layout()
    return fig


def learner_curves(curves: dict, title: str = ""):
    """Training loss per epoch of the text-only learners (``{name: history}``), one panel each."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4.5), squeeze=False)
    for ax, (name, history) in zip(axes[0], curves.items()):
        h = pd.DataFrame(history)
        ax.plot(h["epoch"] + 1, h["train_loss"], marker="o", color=method_color(name))
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (ranking, per text)")
        ax.set_title(name, fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def published_comparison(both: pd.DataFrame, dataset: str):
    """mAP measured in this run (red) beside numbers published by others (grey, source in brackets)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.45 * len(both) + 2))
    ours = both["source"] == "this run"
    bars = ax.barh(np.arange(len(both)), both["mAP (%)"], color=np.where(ours, FAMILY_COLORS["CoMC"], "lightgrey"),
                   edgecolor="black")
    ax.bar_label(bars, fmt="%.1f", fontsize=8, padding=2)
    ax.set_yticks(np.arange(len(both)), [f"{m}  [{s}]" for m, s in zip(both.index, both["source"])], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 105)
    ax.set_xlabel("mAP (%) (bars from 0)")
    ax.set_ylabel("method [source]")
    ax.set_title(f"{dataset}: measured in this run (red) vs published by others (grey; CLIP RN50 unless noted; "
                 "other code, prompts and corpora)", fontsize=10)
    fig.tight_layout()
    return fig


def gap_study(per_seed: pd.DataFrame, summary: pd.DataFrame, title: str = ""):
    """Gap vs the mapping's gain per toy CLIP (left); zero-shot, the classifier and CoMC per variant (right)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(16, 5.8), gridspec_kw={"width_ratios": [1, 1.2]})
    ax = axes[0]
    gain = "mapping gain (mAP points)"
    ax.scatter(per_seed["gap"], per_seed[gain], color="lightgrey", s=25, label="one toy CLIP seed")
    yerr = np.vstack([summary[gain] - summary[f"{gain} CI low"], summary[f"{gain} CI high"] - summary[gain]])
    ax.errorbar(summary["gap"], summary[gain], xerr=summary["gap std"], yerr=yerr, fmt="o", capsize=4, ms=8,
                color=FAMILY_COLORS["CoMC"], label="variant mean, 95% interval over seeds and images")
    for _, row in summary.iterrows():
        ax.annotate(row["variant"], (row["gap"], row[gain]), textcoords="offset points", xytext=(8, 6), fontsize=9)
    ax.axhline(0, color="grey", lw=1, ls="--")
    ax.set_xlabel("modality gap (|mean image - mean text|, held-out pairs, no-pos pool)")
    ax.set_ylabel("mapping gain (CoMC - same classifier without mapping, mAP points)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    ax.set_title("gap vs mapping gain", fontsize=10)
    ax = axes[1]
    rows = (("zero-shot mAP (%) [published protocol]", "zero-shot, published protocol (no local branch)", "zero-shot", "v"),
            ("zero-shot mAP (%) [CoMC's features]", "zero-shot on CoMC's features, with its local branch",
             "zero-shot", "o"),
            ("mAP no mapping (%)", "text classifier + local branch, no mapping", "trained", "s"),
            ("mAP CoMC (%)", "CoMC (full): mapping + local branch", "CoMC", "D"))
    for k, (col, label, fam, marker) in enumerate(rows):
        y = np.arange(len(summary)) + (k - 1.5) * 0.18
        err = np.vstack([summary[col] - summary[f"{col} CI low"], summary[f"{col} CI high"] - summary[col]])
        ax.errorbar(summary[col], y, xerr=err, fmt=marker, capsize=3, color=FAMILY_COLORS[fam], label=label,
                    mfc="white" if "published" in col else None)
    ax.set_yticks(np.arange(len(summary)), summary["variant"])
    ax.set_ylim(len(summary) - 0.5, -0.5)
    ax.set_ylabel("toy CLIP variant")
    ax.set_xlabel("test mAP (%): mean over toy CLIP seeds, 95% interval over seeds and images (zoomed axis)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    ax.set_title("like for like: zero-shot and CoMC on the same features, per variant", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def top_k_gallery(scores: dict, labels, images, classnames, seed: int = 0, n: int = 8, k: int = 3, title: str = ""):
    """``n`` test images drawn with ``seed``, their true labels and each method's top-``k`` classes (``scores``: name ->
    (N, C) scores; ``images``: a callable index -> image)."""
    from .tables import label_names, top_k_predictions
    picked = np.sort(np.random.default_rng(seed).choice(len(labels), size=min(n, len(labels)), replace=False))
    top = top_k_predictions(scores, classnames, picked, k=k)
    return prediction_gallery([images(int(i)) for i in picked], label_names(np.asarray(labels)[picked], classnames,
                                                                             sep=None), top, title=title)
