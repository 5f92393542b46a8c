"""Figures shared by the notebooks: one colour per method family, forest plots of results and paired differences.

Also :func:`prediction_gallery` (test images with each method's top-k classes). The figures of the
data (the method's pipeline, the toy world, the toy CLIPs, the corpus) are in :mod:`.data_figures`.

Every figure that shows methods colours them by :func:`method_color` (one colour per family of
:data:`~lcmc_core.experiments.rows.ROW_INFO`: zero-shot, training-free peers, the text classifier,
CoMC, TaI-DPT, the test-selected reference), so a reader can follow a method across notebooks.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FAMILY_COLORS", "MAPPING_COLORS", "method_family", "method_color", "forest_plot", "difference_plot",
           "core_range", "OFF_SCALE_IQR",
           "bars_with_errors", "prediction_gallery"]

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
