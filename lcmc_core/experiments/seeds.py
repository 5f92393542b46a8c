"""Several seeds of one comparison: mean +- std per method, bootstrap intervals, paired differences, verdicts.

A *seed* fixes the generated corpus and the classifier's initialisation, batches and noise; the
test images stay the same. :func:`summarise_seeds` turns one
:class:`~lcmc_core.experiments.comparison.ComparisonResult` per seed into

* ``per_seed``: every method's mAP / CF1 / OF1 for every seed (the CSV readers re-analyse);
* ``table``: mean and std over seeds, and a bootstrap 95% interval of the seed-mean mAP (each
  resample draws the same images for every seed, :func:`lcmc_core.method.metrics.seed_mean_bootstraps`);
* ``paired``: CoMC (full) minus every other row, and the mapping's gain (CoMC (full) minus the same
  classifier without mapping), each with its std over seeds and a **paired** bootstrap interval
  (the same resampled images on both sides), and what that interval supports
  (:func:`lcmc_core.method.metrics.interval_verdict`).

:func:`over_seeds` / :func:`mean_std` do the same for any ablation table.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..method.metrics import interval_verdict, percentile_interval, seed_mean_bootstraps
from .rows import Row

__all__ = ["SeedComparison", "summarise_seeds", "over_seeds", "mean_std", "REFERENCE_ROW", "NO_MAPPING_ROW",
           "MAPPING_GAIN"]

REFERENCE_ROW = Row.COMC
NO_MAPPING_ROW = Row.CLASSIFIER
#: The paired table's row of the mapping's gain (CoMC minus the same classifier without mapping).
MAPPING_GAIN = f"mapping gain: {Row.COMC} - {Row.CLASSIFIER}"


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
        """One sentence on a paired difference: its value, interval, seeds and what the interval supports."""
        r = self.paired.loc[row]
        return (f"{row}: {r['difference']:+.1f} mAP points, paired 95% interval [{r['CI low']:+.1f}, "
                f"{r['CI high']:+.1f}] over the test images, std {r['std over seeds']:.1f} over "
                f"{len(self.seeds)} seeds: {r['verdict']}")


def summarise_seeds(results: Sequence, n_boot: int = 1000, confidence: float = 0.95, boot_seed: int = 0,
                    reference: str = REFERENCE_ROW) -> SeedComparison:
    """Mean +- std over seeds, seed-mean bootstrap intervals and paired differences from one result per seed."""
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
    boots = {}
    if n_boot:
        for m in methods:
            boots[m] = seed_mean_bootstraps([r.scores[m] for r in results], labels, n_boot, boot_seed, difficult)
    grouped = per_seed.groupby("method", sort=False)
    table = pd.DataFrame({
        "mAP": grouped["mAP"].mean(), "mAP std": grouped["mAP"].std(ddof=1) if len(seeds) > 1 else 0.0,
        "CF1@3": grouped["CF1@3"].mean(), "OF1@3": grouped["OF1@3"].mean(), "seeds": len(seeds)}).loc[methods]
    if n_boot:
        ci = [percentile_interval(boots[m], confidence) for m in methods]
        table.insert(2, "CI low", [c[0] for c in ci])
        table.insert(3, "CI high", [c[1] for c in ci])
    table.index.name = "method"

    pairs = [(f"{reference} - {m}", reference, m) for m in methods if m != reference]
    if reference in methods and NO_MAPPING_ROW in methods:
        pairs.insert(0, (MAPPING_GAIN, reference, NO_MAPPING_ROW))
    rows = []
    for name, a, b in pairs:
        per = (per_seed[per_seed.method == a]["mAP"].to_numpy() - per_seed[per_seed.method == b]["mAP"].to_numpy())
        row = {"comparison": name, "difference": float(per.mean()),
               "std over seeds": float(per.std(ddof=1)) if len(per) > 1 else 0.0,
               "seeds": len(per), "per-seed differences": " ".join(f"{d:+.2f}" for d in per)}
        if n_boot:
            low, high = percentile_interval(boots[a] - boots[b], confidence)
            row.update({"CI low": low, "CI high": high,
                        "verdict": interval_verdict(low, high, f"{a} higher", f"{a} lower", "not distinguishable")})
        rows.append(row)
    paired = pd.DataFrame(rows).set_index("comparison") if rows else pd.DataFrame()
    return SeedComparison(seeds=seeds, results=results, per_seed=per_seed, table=table, paired=paired)


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
