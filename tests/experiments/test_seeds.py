"""Tests for lcmc_core.experiments.seeds: mean +- std over seeds, seed-mean intervals and paired differences, by hand."""
import types

import numpy as np
import pandas as pd
import pytest

from lcmc_core.experiments import seeds
from lcmc_core.method.metrics import (
    family_wise_comparisons,
    mean_average_precision,
    per_seed_bootstrap_maps,
    percentile_interval,
    two_level_means,
)

ROWS = ["text classifier, global+local", "zero-shot", "CoMC (full)"]


def _result(seed, rng, labels, strength):
    scores = {m: rng.normal(size=labels.shape) + s * labels for m, s in zip(ROWS, strength)}
    table = pd.DataFrame({"mAP": [mean_average_precision(scores[m], labels) for m in ROWS],
                          "CF1@3": [10.0 + seed] * 3, "OF1@3": [20.0] * 3}, index=pd.Index(ROWS, name="method"))
    return types.SimpleNamespace(seed=seed, labels=labels, scores=scores, table=table,
                                 evaluation=types.SimpleNamespace(difficult="negative"))


@pytest.fixture
def results():
    rng = np.random.default_rng(0)
    labels = (rng.random((60, 4)) < 0.3).astype(int)
    labels[0] = 1
    return [_result(s, rng, labels, (1.0, 0.5, 1.5)) for s in range(3)]


def test_table_is_mean_and_std_over_seeds(results):
    out = seeds.summarise_seeds(results, n_boot=40)
    maps = np.array([[r.table.loc[m, "mAP"] for r in results] for m in ROWS])
    assert out.table.loc[ROWS, "mAP"].to_numpy() == pytest.approx(maps.mean(1))
    assert out.table.loc[ROWS, "mAP std"].to_numpy() == pytest.approx(maps.std(1, ddof=1))
    assert out.table.loc["CoMC (full)", "CF1@3"] == pytest.approx(11.0)
    rows = {m: [r.scores[m] for r in results] for m in ROWS}
    boots = two_level_means(per_seed_bootstrap_maps(rows, results[0].labels, 40, 0), 0)   # seeds and images
    assert (out.table.loc["zero-shot", "CI low"], out.table.loc["zero-shot", "CI high"]) == pytest.approx(
        percentile_interval(boots["zero-shot"]))
    assert list(out.per_seed.columns) == ["seed", "method", "mAP", "CF1@3", "OF1@3"] and len(out.per_seed) == 9


def test_paired_differences_and_verdicts(results):
    out = seeds.summarise_seeds(results, n_boot=40)
    p = out.paired
    assert list(p.index) == [seeds.MAPPING_GAIN, "CoMC (full) - text classifier, global+local",
                             "CoMC (full) - zero-shot"]
    per = [r.table.loc["CoMC (full)", "mAP"] - r.table.loc["zero-shot", "mAP"] for r in results]
    row = p.loc["CoMC (full) - zero-shot"]
    assert row["difference"] == pytest.approx(np.mean(per)) and row["std over seeds"] == pytest.approx(np.std(per, ddof=1))
    rows = {m: [r.scores[m] for r in results] for m in ROWS}
    boots = two_level_means(per_seed_bootstrap_maps(rows, results[0].labels, 40, 0), 0)
    assert (row["CI low"], row["CI high"]) == pytest.approx(percentile_interval(boots["CoMC (full)"] - boots["zero-shot"]))
    # the family: the two comparisons with CoMC, simultaneous; the verdict is read from that interval
    others = ["text classifier, global+local", "zero-shot"]
    fam = family_wise_comparisons([f"CoMC (full) - {m}" for m in others], [p.loc[f"CoMC (full) - {m}", "difference"]
                                                                          for m in others],
                                  np.stack([boots["CoMC (full)"] - boots[m] for m in others]),
                                  better="CoMC (full) higher", worse="CoMC (full) lower")
    assert (row["family-wise low"], row["family-wise high"]) == pytest.approx((fam[1]["family-wise low"],
                                                                              fam[1]["family-wise high"]))
    assert row["family-wise low"] <= row["CI low"] and row["family-wise high"] >= row["CI high"]   # wider: a family
    assert row["family-wise low"] > 0 and row["verdict"] == "CoMC (full) higher"   # strength 1.5 vs 0.5
    assert p.loc[seeds.MAPPING_GAIN, "difference"] == p.loc["CoMC (full) - text classifier, global+local", "difference"]
    assert "family-wise interval" in out.claim("CoMC (full) - zero-shot")


def test_identical_methods_are_not_distinguishable():
    rng = np.random.default_rng(1)
    labels = (rng.random((30, 3)) < 0.4).astype(int)
    labels[0] = 1
    r = _result(0, rng, labels, (1.0, 1.0, 1.0))
    r.scores["CoMC (full)"] = r.scores["zero-shot"]
    r.table.loc["CoMC (full)", "mAP"] = r.table.loc["zero-shot", "mAP"]
    out = seeds.summarise_seeds([r], n_boot=30)
    row = out.paired.loc["CoMC (full) - zero-shot"]
    assert (row["difference"], row["CI low"], row["CI high"]) == (0.0, 0.0, 0.0)
    assert row["verdict"] == "not distinguishable" and row["std over seeds"] == 0.0


def test_other_test_images_are_refused(results):
    results[1].labels = 1 - results[1].labels
    with pytest.raises(ValueError, match="same test images"):
        seeds.summarise_seeds(results, n_boot=10)


def test_over_seeds_and_mean_std():
    rs = [types.SimpleNamespace(seed=s) for s in (0, 1)]
    df = seeds.over_seeds(lambda r, k: pd.DataFrame({"noise std": [0.0, 0.1], "mAP": [k + r.seed, 2 * k]}), rs, 10)
    assert list(df["seed"]) == [0, 0, 1, 1]
    ms = seeds.mean_std(df, "noise std")
    assert list(ms.columns) == ["noise std", "mAP", "mAP std", "seeds"]
    assert ms["mAP"].tolist() == [10.5, 20.0] and ms["mAP std"].tolist() == pytest.approx([np.std([10, 11], ddof=1), 0])
    assert ms["seeds"].tolist() == [2, 2]
