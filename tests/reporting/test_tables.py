"""The notebooks' data helpers (lcmc_core.reporting.tables): small inputs, stubs for experiments."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from lcmc_core.reporting import tables
from lcmc_core.text.corpus import corpus_from_records, make_record
from lcmc_core.text.validation import REASONS

# ------------------------------------------------------------------------------------- titles, sizes

def test_figure_title_appends_wrapped_note_only_when_given():
    assert tables.figure_title("mAP") == "mAP"
    t = tables.figure_title("mAP", "word " * 40, width=30)
    lines = t.split("\n")
    assert lines[0] == "mAP" and len(lines) > 2 and all(len(line) <= 30 for line in lines[1:])


def test_label_names():
    labels = np.array([[1, 0, 1], [0, 0, 0], [0, -1, 1]])
    assert tables.label_names(labels, ["cat", "dog", "tv"]) == ["cat, tv", "", "tv"]
    assert tables.label_names(labels, ["cat", "dog", "tv"], sep=None) == [["cat", "tv"], [], ["tv"]]
    with pytest.raises(ValueError, match="N x 2"):
        tables.label_names(labels, ["cat", "dog"])


# ------------------------------------------------------------------------------------- toy CLIPs

def _report(spec, **metrics):
    base = {"i2t_recall@1": 10.0, "i2t_recall@5": 30.0, "t2i_recall@1": 11.0, "t2i_recall@5": 31.0,
            "chance_recall@1": 0.1, "zero_shot_map": 40.0, "chance_map": 12.0, "modality_gap": 0.8,
            "logit_scale": 99.0}
    base.update(metrics)
    return {"size": "smoke", "variants": {spec.variant: {"spec": dataclasses.asdict(spec), "metrics": base,
                                                         "seconds": {"pretrain": 3.5}}}}


def test_toy_clip_metrics_table(smoke_spec):
    table = tables.toy_clip_metrics_table(_report(smoke_spec, modality_gap=0.5))
    assert list(table.index) == [smoke_spec.variant]
    assert table.loc[smoke_spec.variant, "modality gap [no-pos pool]"] == 0.5
    assert table.loc[smoke_spec.variant, "initial logit scale"] == smoke_spec.init_logit_scale
    assert table.loc[smoke_spec.variant, "pretraining (s)"] == 3.5
    assert {c for c, _ in tables.TOY_CLIP_METRIC_COLUMNS} <= set(table.columns)
    with pytest.raises(ValueError, match="variants"):
        tables.toy_clip_metrics_table({"variants": {}})


def test_pretraining_curves_reads_the_training_log(smoke_clip, smoke_spec):
    curves = tables.pretraining_curves(_report(smoke_spec))
    steps = (smoke_spec.n_pretrain // smoke_spec.batch_size) * smoke_spec.epochs
    assert list(curves.columns) == ["variant", "step", "epoch", "loss", "logit_scale", "lr"]
    assert len(curves) == steps and set(curves["variant"]) == {smoke_spec.variant}
    assert curves["step"].tolist() == list(range(steps)) and np.isfinite(curves["loss"]).all()


# ------------------------------------------------------------------------------------- corpus

def test_generation_summary_table_lists_every_reason_and_cost():
    summary = {"status": "complete", "generator": {"source": "template"}, "n": 10, "accepted": 8,
               "rejected": 2, "pending": 0, "rejected_by_reason": {"empty": 1, "overlong": 1},
               "kept_with_issues": {"missing_labels": 3}, "prompt_tokens": 0, "completion_tokens": 0,
               "cost": None}
    table = tables.generation_summary_table(summary)
    values = dict(zip(table["item"], table["value"]))
    assert values["accepted"] == "8" and values["rejected (total)"] == "2"
    assert values["rejected: empty"] == "1" and values["rejected: overlong"] == "1"
    assert all(f"rejected: {r}" in values for r in REASONS)
    assert values["kept with issue: missing_labels"] == "3"
    assert values["cost"].startswith("n/a")
    assert tables.generation_summary_table({**summary, "cost": 0.25}).set_index("item").loc["cost", "value"] == "0.25"


def test_example_sentences_seeded_with_requested_and_extracted_labels():
    recs = [make_record(f"a dog and a cat number {i}.", [11, 7], "emoji-voc", "template", requested=["dog"])
            for i in range(30)]
    corpus = corpus_from_records(recs, "emoji-voc")
    a = tables.example_sentences(corpus, n=5, seed=1)
    assert a.equals(tables.example_sentences(corpus, n=5, seed=1)) and len(a) == 5
    assert list(a.columns) == ["sentence", "requested", "extracted labels", "source"]
    assert (a["extracted labels"] == "cat, dog").all() and (a["requested"] == "dog").all()
    assert len(tables.example_sentences(corpus, n=100)) == 30


# ------------------------------------------------------------------------------------- gap, ablations, results

def test_gap_before_after_mapping_towards_texts_shrinks_the_gap():
    rng = np.random.default_rng(0)
    txt = rng.normal(size=(200, 16)) + 4 * np.eye(16)[0]
    img = txt + 4 * np.eye(16)[1] + 0.1 * rng.normal(size=(200, 16))
    mapped = 0.3 * img / np.linalg.norm(img, axis=1, keepdims=True) + 0.7 * txt / np.linalg.norm(txt, axis=1, keepdims=True)
    table = tables.gap_before_after(img, txt, mapped)
    assert list(table.columns) == ["before mapping", "after mapping"]
    assert table.loc["gap norm", "after mapping"] < table.loc["gap norm", "before mapping"]
    assert {"matched cosine (mean)", "separability (balanced acc.)", "matched - unmatched cosine"} <= set(table.index)


def test_ours_and_published():
    ours = pd.DataFrame({"mAP": [70.0], "CI low": [69.0], "CI high": [71.0]}, index=["CoMC (full)"])
    both = tables.ours_and_published(ours, "voc2007")
    assert both.index[0] == "CoMC (full)" and both.loc["CoMC (full)", "source"] == "this run"
    published = both.iloc[1:]
    assert len(published) > 0 and published["kind"].str.startswith("published").all()
    assert published["CI low"].isna().all() and published["source"].str.len().gt(0).all()
    assert "CoMC released checkpoint (1 seed)" not in both.index  # COCO only
    toy = tables.ours_and_published(ours.drop(columns=["CI low", "CI high"]), "emoji-voc")
    assert list(toy.index) == ["CoMC (full)"] and toy["CI low"].isna().all()


def test_wrap_text_and_table_caption():
    assert tables.wrap_text("") == "" and tables.wrap_text("a b c", 3) == "a b\nc"
    assert tables.table_caption("Main results") == "Main results"
    assert tables.table_caption("Main results", "toy") == "Main results [toy]"


def test_generation_outcomes_counts_every_reason_and_pending():
    out = tables.generation_outcomes({"accepted": 5, "pending": 2, "rejected_by_reason": {"refused": 1, "weird": 4}})
    assert out["accepted"] == 5 and out["pending"] == 2 and out["rejected: refused"] == 1
    assert out["rejected: weird"] == 4 and all(out[f"rejected: {r}"] >= 0 for r in REASONS)
    assert out.index[0] == "accepted" and out.index[-1] == "pending"


def test_gap_before_after_unpaired_has_no_cosine_rows():
    rng = np.random.default_rng(1)
    img, txt = rng.normal(size=(50, 8)) + 2, rng.normal(size=(70, 8)) - 2
    table = tables.gap_before_after(img, txt, img + 0.1, paired=False)
    assert "gap norm" in table.index and not any("cosine (mean)" in i for i in table.index)


def test_every_published_number_names_a_row_we_produce():
    from lcmc_core.experiments.published import PUBLISHED_MAP
    from lcmc_core.experiments.rows import Row
    for method, _, _, _, ours in PUBLISHED_MAP:
        assert ours is None or isinstance(ours, Row), method


def test_main_results_summary_claims_only_what_the_family_wise_intervals_support():
    import types

    from lcmc_core.experiments import seeds
    zs = "zero-shot CLIP [published: encode_image, 80 OpenAI templates]"
    table = pd.DataFrame({"mAP": [80.0, 84.0, 83.0], "mAP std": [0.0, 0.5, 0.4]},
                         index=[zs, "CoMC (full)", "text classifier, global+local"])
    cols = ["difference", "std over seeds", "seeds", "per-seed differences", "CI low", "CI high", "family-wise low",
            "family-wise high"]
    paired = pd.DataFrame([[1.0, 0.3, 5, "+1.0 +1.0 +1.0 +1.0 +1.0", 0.2, 2.1, -0.2, 2.4],
                           [4.0, 0.5, 5, "+4.0 +4.0 +4.0 +4.0 +4.0", 3.0, 5.0, 2.6, 5.4],
                           [0.1, 0.2, 5, "-0.02 +0.46 +0.10 +0.05 -0.09", 0.11, 0.23, -0.06, 0.42]], columns=cols,
                          index=[seeds.MAPPING_GAIN, f"CoMC (full) - {zs}",
                                 "CoMC (full) - CoMC, official protocol (selects epoch on test images)"])
    sc = types.SimpleNamespace(table=table, paired=paired, seeds=[0, 1, 2, 3, 4],
                               first=types.SimpleNamespace(labels=np.zeros((10, 2))))
    text = tables.main_results_summary(sc)
    assert "84.0 ± 0.5" in text and "family-wise" in text
    assert "CoMC is higher than it: +4.0 points, family-wise interval [+2.6, +5.4] (unadjusted [+3.0, +5.0])" in text
    # the unadjusted interval of the gain excludes 0, the family-wise one does not: no claim that it helps
    assert "not distinguishable from zero" in text and "the mapping helps" not in text
    assert "the official protocol) is worth -0.1 points [-0.4, +0.1]" in text and "+0.02 -0.46" in text


def test_method_colours_follow_the_row_families():
    from lcmc_core.experiments.rows import FAMILIES, Row
    from lcmc_core.reporting import figures
    assert {figures.method_family(r) for r in Row} <= set(figures.FAMILY_COLORS) == set(FAMILIES)
    assert figures.method_color("CoMC (full)") == figures.FAMILY_COLORS["CoMC"]
    assert figures.method_family("TaI-DPT + CoMC mapping (ablation)") == "TaI-DPT"
    assert figures.method_family("zero-shot + SPARC score standardisation [published protocol]") == "peer"


def test_text_vs_image_summary_states_the_trend_it_sees():
    col = "mAP over classes present (%)"
    why = pd.DataFrame({"labels per item": [2.0, 1.0, 5.0, 1.6], col: [57.0, 80.0, 40.0, 83.0],
                        "label-ranking AP (%)": [90.0, 95.0, 85.0, 88.0], "count": [100, 50, 50, 200]},
                       index=["all held-out texts", "texts naming 1 label(s)", "texts naming 5 label(s)", "test images"])
    assert "Text mAP falls from 80.0" in tables.text_vs_image_summary(why)
    flat = why.copy()
    flat.loc["texts naming 5 label(s)", col] = 80.0
    assert "does not fall" in tables.text_vs_image_summary(flat)


def test_points_with_errors_draw_one_point_per_row_not_bars():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lcmc_core.reporting import figures
    t = pd.DataFrame({"branch": ["global", "local"], "mAP": [70.0, 72.0], "mAP std": [0.1, 0.2]})
    fig, ax = plt.subplots()
    figures.points_with_errors(ax, t, "branch")
    assert not ax.patches                                   # no bar whose length would start at an unseen zero
    assert [lab.get_text() for lab in ax.get_yticklabels()] == ["global", "local"]
    line = ax.lines[0]
    assert list(line.get_xdata()) == [70.0, 72.0]
    plt.close(fig)


def test_readable_prints_settings_as_settings():
    noise = pd.DataFrame({"noise std": [0.0, 0.05, 0.1], "mAP (CoMC)": [83.31, 83.46, 83.7]})
    shown = tables.readable(noise)
    assert list(shown["noise std"]) == ["0", "0.05", "0.1"] and list(shown["mAP (CoMC)"]) == ["83.3", "83.5", "83.7"]


def test_summaries_of_notebooks_04_and_06_read_their_tables():
    sweep = pd.DataFrame({"alpha": [0.7, 1.0, 0.7, 1.0], "temperature": [0.01, 0.01, 0.1, 0.1],
                          "mAP": [83.0, 81.0, 84.0, 81.0], "mAP std": [0.1, 0.2, 0.3, 0.2]})
    text = tables.mapping_sweep_summary(sweep, (0.7, 0.01), 5)
    assert "scores 81.0" in text and "gives 83.0 ± 0.1 (+2.0)" in text and "alpha 0.7, tau 0.1 at 84.0" in text
    losses = pd.DataFrame({"loss": ["official", "other"], "mAP (CoMC)": [83.0, 84.0], "mAP (CoMC) std": [0.1, 0.2]})
    noise = pd.DataFrame({"noise std": [0.0, 0.1], "mAP (CoMC)": [82.0, 83.0]})
    labels = pd.DataFrame({"corpus labels": ["extracted", "requested"], "mAP (CoMC)": [83.0, 82.5],
                           "sentences whose labels differ (%)": [0.0, 0.0]})
    text = tables.ablations_summary(losses, noise, labels, "official", 0.1, 5)
    assert "official loss gives 83.0 ± 0.1" in text and "*other* at 84.0" in text and "official 0.1 gives 83.0" in text
    from lcmc_core.experiments.ablations import STUDY_COMPARISONS
    gain, lfl = (name for name, _, _ in STUDY_COMPARISONS)
    summary = pd.DataFrame({"variant": ["a", "b"], "gap": [0.3, 0.9], "gap std": [0.01, 0.02], "seeds": [3, 3],
                            gain: [1.0, 2.0], f"{gain} family-wise low": [0.2, -0.5], f"{gain} family-wise high": [1.8, 4.0],
                            f"{gain} verdict": ["helps", "not distinguishable from zero"],
                            lfl: [-0.5, 0.4], f"{lfl} family-wise low": [-1.5, -0.2], f"{lfl} family-wise high": [0.5, 1.0],
                            f"{lfl} verdict": ["not distinguishable from zero"] * 2})
    per_seed = pd.DataFrame({"gap": [0.3, 0.31, 0.9, 0.95], "mapping gain (mAP points)": [1.0, 1.1, 2.0, 1.5]})
    text = tables.gap_study_summary(summary, per_seed)
    assert "*a*: gap 0.30 ± 0.01; mapping gain +1.0 [+0.2, +1.8]: helps" in text and "family-wise over the 4" in text
    comc = "mAP CoMC (%)"
    summary[comc], summary[f"{comc} CI low"], summary[f"{comc} CI high"] = [80.0, 70.04], [79.0, 60], [81.0, 75]
    overview = tables.gap_study_overview(summary.iloc[::-1])          # sorted by gap whatever the order
    assert list(overview.index) == ["a", "b"] and overview.loc["a", "gap"] == "0.30 ± 0.01"
    assert overview.loc["b", "CoMC (mAP %)"] == "70.0 [60.0, 75.0]" and "zero-shot, published protocol (mAP %)" not in overview
    assert overview.loc["b", f"{gain}, family-wise"] == "+2.0 [-0.5, +4.0] not distinguishable from zero"
    assert overview.loc["a", "seeds"] == 3


def test_top_k_predictions_hand_computed():
    scores = {"m": np.array([[0.1, 0.9, 0.5, 0.5], [3.0, 2.0, 1.0, 0.0]])}
    out = tables.top_k_predictions(scores, ["a", "b", "c", "d"], [1, 0], k=3)
    assert out["m"] == [["a", "b", "c"], ["b", "c", "d"]]          # ties (c, d): lower index first
    with pytest.raises(ValueError, match="k=5"):
        tables.top_k_predictions(scores, ["a", "b", "c", "d"], [0], k=5)
    with pytest.raises(ValueError, match="N x 3"):
        tables.top_k_predictions(scores, ["a", "b", "c"], [0], k=1)


def test_per_class_summary_names_gains_and_losses():
    ap = pd.DataFrame({"x": [50.0, 80.0, 60.0], "y": [60.0, 70.0, 60.0]}, index=["sofa", "car", "dog"])
    text = tables.per_class_summary(ap, "x", "y", n=2)
    assert "above *y* on 1 of 3 classes" in text
    assert "car (+10.0)" in text and "sofa (-10.0)" in text and "dog" not in text
    with pytest.raises(KeyError, match="'z'"):
        tables.per_class_summary(ap, "z", "y")


def test_gap_summary_reports_before_and_after():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(60, 8)) + 3 * np.eye(8)[0]
    txt = rng.normal(size=(60, 8)) - 3 * np.eye(8)[0]
    mapped = 0.5 * img + 0.5 * txt
    report = tables.gap_before_after(img, txt, mapped)
    text = tables.gap_summary(report, 0.7, 0.01)
    b, a = report["before mapping"], report["after mapping"]
    assert f"from {b['gap norm']:.2f} to {a['gap norm']:.2f}" in text
    assert f"{b['separability (balanced acc.)']:.3f} -> {a['separability (balanced acc.)']:.3f}" in text


def test_toy_clip_summary_flags_variants_near_chance():
    m = pd.DataFrame({"zero-shot mAP (%) [published protocol]": [60.0, 10.0], "chance mAP (%)": [8.0, 8.0],
                      "modality gap [no-pos pool]": [0.8, 0.3], "logit scale": [100.0, 20.0]},
                     index=["big", "small"])
    text = tables.toy_clip_summary(m)
    assert "Not every variant" in text and "(small)" in text and "0.30 (small) to 0.80 (big)" in text
    m.iloc[1, 0] = 40.0
    assert "Every variant learned" in tables.toy_clip_summary(m)


def test_cooccurrence_summary_compares_corpus_and_test():
    from lcmc_core.text.corpus import cooccurrence_ratio
    rng = np.random.default_rng(0)
    names = list("abcd")
    corpus = (rng.random((400, 4)) < 0.3).astype(int)        # independent labels
    test = np.zeros((200, 4), dtype=int)
    test[:100, :2] = 1                                          # a and b always together
    test[100:, 2] = 1
    test[150:, 3] = 1
    text = tables.cooccurrence_summary(cooccurrence_ratio(corpus, names), cooccurrence_ratio(test, names))
    assert "closer to independence than in the test set" in text
    assert "a + b (+1.0)" in text                               # observed 100, expected 100 * 100 / 200 = 50
    assert "never appear together" in text
