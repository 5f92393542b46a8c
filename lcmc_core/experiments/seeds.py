"""Several seeds of one comparison: mean +- std per method, intervals over seeds and images, family-wise verdicts.

A *seed* fixes the generated corpus and the classifier's initialisation, batches and noise; the
test images stay the same. :func:`summarise_seeds` turns one
:class:`~lcmc_core.experiments.comparison.ComparisonResult` per seed into

* ``per_seed``: every method's mAP / CF1 / OF1 for every seed (the CSV readers re-analyse);
* ``table``: mean and std over seeds, and a 95% interval of the seed-mean mAP from a **two-level
  bootstrap** (:func:`lcmc_core.method.metrics.two_level_bootstrap_maps`): each resample draws the
  seeds and the test images with replacement, the same draws for every row, so the interval holds
  the seed-to-seed variation as well as the test images' luck;
* ``paired``: CoMC (full) minus every other row, and the mapping's gain (CoMC (full) minus the same
  classifier without mapping), each with its std over seeds, its unadjusted two-level interval
  (``CI low`` / ``CI high``, paired on both levels) and a **family-wise** interval (``family-wise
  low`` / ``high``): simultaneous for all the comparisons with CoMC at the stated level, from the
  max-|t| bootstrap (:func:`lcmc_core.method.metrics.family_wise_comparisons`; it uses the
  correlation between comparisons that share CoMC, the images and the seeds, where Bonferroni
  assumes the worst case, and gives intervals, which Holm does not). ``verdict`` is read from the
  family-wise interval; the unadjusted verdict and Holm-adjusted p-values stand beside it.

With few seeds the seed part of every interval is too narrow (5 seeds: a 95% interval of a
quantity dominated by seed noise misses about 15% of the time; see the metrics module); with one
seed the intervals cover the test images only. :func:`over_seeds` / :func:`mean_std` do the mean
and std for any ablation table.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..method.metrics import (
    family_wise_comparisons,
    per_seed_bootstrap_maps,
    percentile_interval,
    seed_mean_maps,
    two_level_means,
)
from .rows import Row

__all__ = ["SeedComparison", "summarise_seeds", "over_seeds", "mean_std", "REFERENCE_ROW", "NO_MAPPING_ROW",
           "INTERVAL_NOTE",
           "MAPPING_GAIN"]

REFERENCE_ROW = Row.COMC
NO_MAPPING_ROW = Row.CLASSIFIER
#: The paired table's row of the mapping's gain (CoMC minus the same classifier without mapping).
MAPPING_GAIN = f"mapping gain: {Row.COMC} - {Row.CLASSIFIER}"
#: What the intervals cover, for every caption and the glossary.
INTERVAL_NOTE = ("95% intervals from a two-level bootstrap: each resample draws the seeds and the test images with "
                 "replacement, the same draws for every row (differences are paired on both levels); family-wise "
                 "intervals hold for all comparisons with CoMC together (max-|t| bootstrap), and verdicts are read "
                 "from them")


@dataclass
class SeedComparison:
    """One comparison over several seeds (see the module docstring)."""

    seeds: list[int]
    results: list            # ComparisonResult per seed
    per_seed: pd.DataFrame
    table: pd.DataFrame
    paired: pd.DataFrame

    @property
    def first(self):
        """The first seed's result (its scores, per-class AP and features, for figures of one run)."""
        return self.results[0]

    def claim(self, row: str) -> str:
        """One sentence on a paired difference: its value, family-wise interval, seeds and what the interval supports."""
        r = self.paired.loc[row]
        return (f"{row}: {r['difference']:+.1f} mAP points, family-wise interval [{r['family-wise low']:+.1f}, "
                f"{r['family-wise high']:+.1f}] over seeds and test images (simultaneous for {len(self.paired) - 1} "
                f"comparisons), std {r['std over seeds']:.1f} over {len(self.seeds)} seeds: {r['verdict']}")


def summarise_seeds(results: Sequence, n_boot: int = 1000, confidence: float = 0.95, boot_seed: int = 0,
                    reference: str = REFERENCE_ROW) -> SeedComparison:
    """Mean +- std over seeds, two-level intervals and family-wise paired differences from one result per seed."""
    results = list(results)
    if not results:
        raise ValueError("summarise_seeds: expected at least one comparison result")
    labels = results[0].labels
    if any(r.labels.shape != labels.shape or not np.array_equal(r.labels, labels) for r in results):
        raise ValueError("summarise_seeds: every seed must be scored on the same test images")
    methods = [m for m in results[0].table.index if all(m in r.table.index for r in results)]
    seeds = [int(r.seed) for r in results]
    per_seed = pd.concat([r.table.loc[methods, ["mAP", "CF1@3", "OF1@3"]].assign(seed=s)
                          for r, s in zip(results, seeds)]).reset_index()[["seed", "method", "mAP", "CF1@3", "OF1@3"]]
    difficult = results[0].evaluation.difficult
    rows = {m: [r.scores[m] for r in results] for m in methods}
    boots = two_level_means(per_seed_bootstrap_maps(rows, labels, n_boot, boot_seed, difficult), boot_seed) \
        if n_boot else {}
    grouped = per_seed.groupby("method", sort=False)
    table = pd.DataFrame({
        "mAP": grouped["mAP"].mean(), "mAP std": grouped["mAP"].std(ddof=1) if len(seeds) > 1 else 0.0,
        "CF1@3": grouped["CF1@3"].mean(), "OF1@3": grouped["OF1@3"].mean(), "seeds": len(seeds)}).loc[methods]
    if n_boot:
        ci = [percentile_interval(boots[m], confidence) for m in methods]
        table.insert(2, "CI low", [c[0] for c in ci])
        table.insert(3, "CI high", [c[1] for c in ci])
    table.index.name = "method"
    paired = _paired(per_seed, methods, reference, boots, confidence, seed_mean_maps(rows, labels, difficult)
                     if n_boot else None)
    return SeedComparison(seeds=seeds, results=results, per_seed=per_seed, table=table, paired=paired)


def _paired(per_seed: pd.DataFrame, methods: list, reference, boots: dict, confidence: float,
            estimates: dict | None) -> pd.DataFrame:
    """``reference`` minus every other row (and the mapping's gain): per-seed values, then the family-wise intervals."""
    others = [m for m in methods if m != reference]
    if reference not in methods or not others:
        return pd.DataFrame()
    rows = {}
    for m in others:
        per = (per_seed[per_seed.method == reference]["mAP"].to_numpy() - per_seed[per_seed.method == m]["mAP"].to_numpy())
        rows[m] = {"comparison": f"{reference} - {m}", "difference": float(per.mean()),
                   "std over seeds": float(per.std(ddof=1)) if len(per) > 1 else 0.0,
                   "seeds": len(per), "per-seed differences": " ".join(f"{d:+.2f}" for d in per)}
    if boots:
        records = family_wise_comparisons(
            [rows[m]["comparison"] for m in others], [estimates[reference] - estimates[m] for m in others],
            np.stack([boots[reference] - boots[m] for m in others]), confidence,
            better=f"{reference} higher", worse=f"{reference} lower")
        for m, rec in zip(others, records):
            rows[m].update({k: v for k, v in rec.items() if k not in ("comparison", "difference")})
    table = [rows[m] for m in others]
    if NO_MAPPING_ROW in rows:   # the same comparison, named for what it measures (not a second member of the family)
        table.insert(0, {**rows[NO_MAPPING_ROW], "comparison": MAPPING_GAIN})
    return pd.DataFrame(table).set_index("comparison")


def over_seeds(fn: Callable[..., pd.DataFrame], results: Sequence, *args, **kwargs) -> pd.DataFrame:
    """``fn(result, *args, **kwargs)`` for every seed's result, concatenated with a ``seed`` column."""
    return pd.concat([fn(r, *args, **kwargs).assign(seed=int(r.seed)) for r in results], ignore_index=True)


def mean_std(df: pd.DataFrame, by: str | list[str], values: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean and std over seeds of ``values`` (default: numeric columns but ``seed``) per ``by``: columns ``X``, ``X std``."""
    by = [by] if isinstance(by, str) else list(by)
    values = list(values) if values is not None else [c for c in df.select_dtypes("number").columns
                                                      if c != "seed" and c not in by]
    g = df.groupby(by, sort=False)[values]
    mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
    out = pd.concat({"mean": mean, "std": std}, axis=1)
    cols = {}
    for v in values:
        cols[v] = out[("mean", v)]
        cols[f"{v} std"] = out[("std", v)]
    res = pd.DataFrame(cols)
    res["seeds"] = df.groupby(by, sort=False).size()
    return res.reset_index()
