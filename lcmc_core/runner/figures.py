"""Figures shared by the notebooks: one colour per method family, forest plots of results and paired differences.

Every figure that shows methods colours them by :func:`method_color` (one colour per family of
:data:`~lcmc_core.runner.comparison.ROWS`: zero-shot, training-free peers, the text classifier,
CoMC, TaI-DPT, the test-selected reference), so a reader can follow a method across notebooks.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FAMILY_COLORS", "MAPPING_COLORS", "method_family", "method_color", "forest_plot", "difference_plot",
           "bars_with_errors"]

FAMILY_COLORS = {"zero-shot": "#7f7f7f", "peer": "#9467bd", "trained": "#1f77b4", "CoMC": "#d62728",
                 "TaI-DPT": "#2ca02c", "reference": "#ff7f0e"}
#: "with / without mapping" in every ablation figure
MAPPING_COLORS = {"mAP (CoMC)": FAMILY_COLORS["CoMC"], "mAP (no mapping)": FAMILY_COLORS["trained"]}


def method_family(name: str) -> str:
    """The family of a comparison row (the rows of :data:`lcmc_core.runner.comparison.ROWS`, TaI-DPT's, others)."""
    from .comparison import ROWS
    if name in ROWS:
        return ROWS[name][0]
    if name.startswith("TaI-DPT"):
        return "TaI-DPT"
    return "CoMC" if name.startswith("CoMC") else "trained" if name.startswith("text") else "zero-shot"


def method_color(name: str) -> str:
    """The colour of a method's family."""
    return FAMILY_COLORS[method_family(name)]


def _legend(ax, families):
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color=FAMILY_COLORS[f], label=f) for f in FAMILY_COLORS if f in families],
              loc="lower right", fontsize=8, title="family", title_fontsize=8)


def forest_plot(ax, table: pd.DataFrame, reference: str | None = None, value: str = "mAP",
                low: str = "CI low", high: str = "CI high", xlabel: str = "test mAP (%)") -> None:
    """Point and interval per method on a zoomed axis, coloured by family, a dashed line at ``reference``'s value."""
    y = np.arange(len(table))
    colors = [method_color(m) for m in table.index]
    has_ci = low in table and high in table
    for yi, (_name, row), c in zip(y, table.iterrows(), colors):
        if has_ci:
            ax.plot([row[low], row[high]], [yi, yi], color=c, lw=2)
        ax.plot(row[value], yi, "o", color=c, ms=6)
        ax.text(row[high] if has_ci else row[value], yi, f"  {row[value]:.1f}", va="center", fontsize=8)
    if reference is not None and reference in table.index:
        ax.axvline(table.loc[reference, value], color=FAMILY_COLORS["zero-shot"], ls="--", lw=1,
                   label=f"{reference[:40]}")
    ax.set_yticks(y, table.index, fontsize=8)
    ax.invert_yaxis()
    lo = (table[low] if has_ci else table[value]).min()
    hi = (table[high] if has_ci else table[value]).max()
    pad = max(1.0, 0.08 * (hi - lo))
    ax.set_xlim(lo - pad, hi + 3 * pad)
    ax.set_xlabel(xlabel)
    _legend(ax, {method_family(m) for m in table.index})


def difference_plot(ax, paired: pd.DataFrame, xlabel: str = "difference in mAP points (paired 95% interval)") -> None:
    """Paired differences with their intervals around a line at 0; filled where the interval excludes 0."""
    y = np.arange(len(paired))
    for yi, (name, row) in zip(y, paired.iterrows()):
        other = name.split(" - ", 1)[-1]
        c = method_color(other) if not name.startswith("mapping gain") else FAMILY_COLORS["CoMC"]
        ax.plot([row["CI low"], row["CI high"]], [yi, yi], color=c, lw=2)
        excludes = row["CI low"] > 0 or row["CI high"] < 0
        ax.plot(row["difference"], yi, "o", color=c, ms=6, mfc=c if excludes else "white")
    ax.axvline(0, color="black", lw=1)
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
