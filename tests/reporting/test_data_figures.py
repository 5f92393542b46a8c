"""Tests of the figures of the data (lcmc_core.reporting.data_figures) and the tables notebooks 00 and 01 add.

Layout checks draw the figure and compare the bounding boxes of titles, tick labels, legends and axes,
so that what a reader could not read (a name under the next row's image, a legend over a panel,
tick labels running together) fails here.
"""
import itertools
from pathlib import Path
from types import SimpleNamespace

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from lcmc_core.method.classifier import TrainConfig
from lcmc_core.method.comc import CoMC
from lcmc_core.reporting import data_figures, figures, tables
from lcmc_core.reporting.saving import figure_labels, save_figure


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _renderer(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _data_axes(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _overlapping(boxes):
    """Pairs of (name, bbox) whose boxes overlap (by more than a pixel each way)."""
    out = []
    for (a, ba), (b, bb) in itertools.combinations(boxes, 2):
        if min(ba.x1, bb.x1) - max(ba.x0, bb.x0) > 1 and min(ba.y1, bb.y1) - max(ba.y0, bb.y0) > 1:
            out.append((a, b))
    return out


def _inside(box, outer, tol=1.0):
    return box.x0 >= outer.x0 - tol and box.y0 >= outer.y0 - tol and box.x1 <= outer.x1 + tol and box.y1 <= outer.y1 + tol


def _report(variants=("clip-like-gap", "mid-gap", "small-gap")):
    """A build_variants report with hand-set metrics: variant i has i2t R@1 = 10 + i, gap 0.8 - 0.2 i."""
    out = {}
    for i, v in enumerate(variants):
        out[v] = {"spec": {"init_logit_scale": 100.0 / (i + 1), "caption_completeness": 0.6},
                  "seconds": {"pretrain": 1.0},
                  "metrics": {"i2t_recall@1": 10.0 + i, "i2t_recall@5": 30.0 + i, "t2i_recall@1": 9.0 + i,
                              "t2i_recall@5": 28.0 + i, "chance_recall@1": 0.1, "zero_shot_map": 80.0 + i,
                              "chance_map": 8.0, "modality_gap": 0.8 - 0.2 * i, "logit_scale": 99.0, "n_heldout": 1000}}
    return {"size": "toy", "variants": out}


# ------------------------------------------------------------------------------------------ the pipeline

def test_pipeline_texts_hold_the_normalised_mapping_and_the_estimators_numbers():
    texts = data_figures.pipeline_texts()
    default = CoMC()
    # the official values, read from the estimator: alpha 0.7, tau 0.01, noise std 0.1, local weight 0.5
    assert (default.alpha, default.temperature, default.classifier.noise_std, default.local_weight) == (0.7, 0.01, 0.1, 0.5)
    assert "m = normalize(softmax(f Tᵀ / τ) T)" in texts["mapping"]
    assert "f′ = α f + (1 − α) m" in texts["mapping"] and "not renormalised" in texts["mapping"]
    assert "α = 0.7, τ = 0.01" in texts["mapping"]
    assert "std 0.1" in texts["text_emb"] and "w = 0.5" in texts["scores"]
    # another estimator's hyperparameters go into the boxes: nothing is hand-copied
    other = CoMC(alpha=0.3, temperature=0.05, local_weight=0.25, classifier=TrainConfig(noise_std=0.2))
    texts = data_figures.pipeline_texts(other)
    assert "α = 0.3, τ = 0.05" in texts["mapping"] and "std 0.2" in texts["text_emb"] and "w = 0.25" in texts["scores"]


def test_pipeline_diagram_draws_every_step_and_arrow_without_overlaps():
    fig = data_figures.pipeline_diagram()
    ax = fig.axes[0]
    texts = data_figures.pipeline_texts()
    drawn = {t.get_text() for t in ax.texts}
    assert set(texts.values()) <= drawn and len(texts) == len(data_figures.PIPELINE_STEPS)
    arrows = [c for c in ax.get_children() if type(c).__name__ == "Annotation"]
    assert len(arrows) == len(data_figures.PIPELINE_ARROWS)
    r = _renderer(fig)
    boxes = [(t.get_text().split("\n")[0], t.get_bbox_patch().get_window_extent(r))
             for t in ax.texts if t.get_text() in texts.values()]
    assert not _overlapping(boxes), _overlapping(boxes)
    assert all(_inside(b, fig.bbox) for _, b in boxes)
    labels = figure_labels(fig)
    assert labels["labelled"] and labels["has_title"]      # stage (y) and order of the steps (x)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["training\n(text only)", "text memory\n(inference)",
                                                            "inference\n(images)"]


def test_the_data_figures_left_figures():
    for name in ("pipeline_diagram", "pipeline_texts", "PIPELINE_STEPS", "sprite_legend", "cooccurrence_heatmaps"):
        assert not hasattr(figures, name) and hasattr(data_figures, name)


# ------------------------------------------------------------------------------------------ the toy world

def _titles(fig):
    return [(ax.get_title(), ax) for ax in fig.axes if ax.get_title()]


def test_sprite_legend_names_sit_clear_of_every_other_panel():
    sprites = [np.full((16, 16, 4), 40 * i, dtype=np.uint8) for i in range(5)]
    names = ["aeroplane", "bicycle", "bird", "diningtable", "pottedplant"]
    fig = data_figures.sprite_legend(sprites, names, note="a note", ncols=3)
    assert [ax.get_title() for ax in fig.axes if ax.images] == names and len(fig.axes) == 6
    assert fig._suptitle.get_text() == "EmojiVOC: the sprite of each class\na note"
    r = _renderer(fig)
    panels = [ax for ax in fig.axes if ax.images]
    for ax in panels:
        title = ax.title.get_window_extent(r)
        for other in panels:
            if other is not ax:
                assert not _overlapping([("name", title), ("panel", other.get_window_extent(r))]), \
                    f"the name {ax.get_title()!r} runs into the sprite of {other.get_title()!r}"
    # row 2's names lie below row 1's sprites; row 1's names above them
    assert panels[3].title.get_window_extent(r).y1 <= panels[0].get_window_extent(r).y0 + 1
    with pytest.raises(ValueError, match="3 sprites for 2"):
        data_figures.sprite_legend(sprites[:3], ["cat", "dog"])


def test_sample_scenes_title_each_scene_with_its_labels_and_caption():
    scenes = SimpleNamespace(images=np.zeros((3, 8, 8, 3), dtype=np.uint8), labels=np.array([[1, 0], [0, 1], [1, 1]]),
                             scene_types=["farm", "street", "park"], split="test", image_size=8)
    fig = data_figures.sample_scenes(scenes, ["a cow", "a car", "both"], ["cow", "car"], note="N", ncols=2)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.images]
    assert titles == ["farm | labels: cow\ncaption: 'a cow'", "street | labels: car\ncaption: 'a car'",
                      "park | labels: cow, car\ncaption: 'both'"]
    assert fig._suptitle.get_text().startswith("EmojiVOC test scenes (8 px)") and fig._suptitle.get_text().endswith("\nN")
    r = _renderer(fig)
    panels = [ax for ax in fig.axes if ax.images]
    assert panels[2]._left_title.get_window_extent(r).y1 <= panels[0].get_window_extent(r).y0 + 1
    with pytest.raises(ValueError, match="3 scenes and 2 captions"):
        data_figures.sample_scenes(scenes, ["a", "b"], ["cow", "car"])


def test_label_frequency_bars_are_shares_and_class_names_do_not_collide():
    counts = pd.Series([2, 1, 1, 0], index=pd.Index(["aeroplane", "diningtable", "pottedplant", "tvmonitor"], name="class"))
    fig = data_figures.label_frequency(counts, 4, "image", "images containing the class (%)", "a split", note="N")
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [50.0, 25.0, 25.0, 0.0]
    assert ax.get_title() == "Label frequency, a split (4 images, 1.00 labels per image)\nN"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("class", "images containing the class (%)")
    r = _renderer(fig)
    ticks = [(t.get_text(), t.get_window_extent(r)) for t in ax.get_xticklabels()]
    assert [name for name, _ in ticks] == list(counts.index)
    assert not _overlapping(ticks)
    # each rotated name ends at its own bar (anchored at its right end), not centred below it
    for (name, box), x in zip(ticks, ax.get_xticks()):
        tick_x = ax.transData.transform((x, 0))[0]
        assert box.x0 < tick_x < box.x1 and (box.x0 + box.x1) / 2 < tick_x - box.width / 4, name
    with pytest.raises(ValueError, match="n_items=0"):
        data_figures.label_frequency(counts, 0, "image", "y", "s")


def test_labels_per_sentence_shares_and_title():
    per_text = pd.Series([0, 3, 1], index=pd.RangeIndex(3, name="labels"))
    fig = data_figures.labels_per_sentence(per_text, (1, 5), note="")
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [0.0, 75.0, 25.0]
    assert ax.get_title() == "Labels per sentence (4 sentences, mean 1.25; requested k ~ U{1..5})"
    fig = data_figures.labels_per_sentence(per_text)  # a user's corpus: nothing was requested
    assert "requested" not in fig.axes[0].get_title()


# ------------------------------------------------------------------------------------------ the toy CLIPs

def test_toy_clip_metrics_labels_legend_and_ticks():
    report = _report()
    fig = data_figures.toy_clip_metrics(report, note="N")
    ax_r, ax_z, ax_g = fig.axes
    assert ax_r.get_xlabel() == "retrieval direction and measure"          # the x axis holds measures, not variants
    assert ax_r.get_ylabel() == "recall on 1000 held-out pairs (%)"
    assert ax_z.get_xlabel() == ax_g.get_xlabel() == "toy CLIP variant"
    assert figure_labels(fig)["labelled"]
    # bar heights are the report's numbers: retrieval (4 measures x 3 variants), zero-shot mAP, gap
    assert sorted(p.get_height() for p in ax_r.patches)[:3] == [9.0, 10.0, 10.0]
    assert [p.get_height() for p in ax_z.patches] == [80.0, 81.0, 82.0]
    assert [round(p.get_height(), 6) for p in ax_g.patches] == [0.8, 0.6, 0.4]
    colors = data_figures.variant_colors(list(report["variants"]))
    assert [mpl.colors.to_rgb(p.get_facecolor()) for p in ax_z.patches] == [mpl.colors.to_rgb(c) for c in colors.values()]
    r = _renderer(fig)
    (legend,) = fig.legends
    box = legend.get_window_extent(r)
    assert _inside(box, fig.bbox), "the legend lies inside the figure"
    for ax in fig.axes:
        assert not _overlapping([("legend", box), ("axes", ax.get_tightbbox(r))]), "the legend covers a panel"
        ticks = [(t.get_text(), t.get_window_extent(r)) for t in ax.get_xticklabels() if t.get_text()]
        assert not _overlapping(ticks), f"tick labels run together: {_overlapping(ticks)}"
        assert _inside(ax.title.get_window_extent(r), fig.bbox)
    titles = [("title", ax.title.get_window_extent(r)) for ax in fig.axes]
    assert not _overlapping(titles)
    assert [t.get_text() for t in legend.get_texts()][:3] == list(report["variants"])


def test_pretraining_curves_one_line_per_variant_in_its_colour():
    curves = pd.DataFrame({"variant": ["a"] * 3 + ["b"] * 3, "step": [0, 1, 2] * 2, "epoch": 0,
                           "loss": [3.0, 2.0, 1.0, 4.0, 3.0, 2.0], "logit_scale": [100.0] * 3 + [14.3] * 3, "lr": 1e-3})
    fig = data_figures.pretraining_curves(curves, note="N", size="toy")
    loss, scale = fig.axes
    assert [line.get_label() for line in loss.lines] == ["a", "b"]
    assert list(loss.lines[1].get_ydata()) == [4.0, 3.0, 2.0] and list(scale.lines[1].get_ydata()) == [14.3] * 3
    assert loss.lines[0].get_color() == scale.lines[0].get_color()
    assert figure_labels(fig)["labelled"] and fig._suptitle.get_text() == "Toy CLIP pretraining (toy size)\nN"


def test_variant_retrieval_gap_rows_per_variant_on_one_cosine_axis():
    rng = np.random.default_rng(0)
    views = {v: {"image_2d": rng.normal(size=(40, 2)), "text_2d": rng.normal(size=(40, 2)), "matched": rng.uniform(0.5, 0.9, 40),
                 "unmatched": rng.uniform(-0.2, 0.4, 40), "gap_norm": g} for v, g in (("clip-like-gap", 0.8), ("small-gap", 0.3))}
    metrics = tables.toy_clip_metrics_table(_report(("clip-like-gap", "small-gap")))
    fig = data_figures.variant_retrieval_gap(views, metrics, note="N")
    axes = _data_axes(fig)
    assert len(axes) == 4 and figure_labels(fig)["labelled"]
    assert axes[0].get_title().startswith("clip-like-gap: gap 0.80, i2t R@1 10.0%")
    assert axes[1].get_xlim() == axes[3].get_xlim(), "one cosine axis for every variant"
    with pytest.raises(ValueError, match="no variant"):
        data_figures.variant_retrieval_gap({}, metrics)


# ------------------------------------------------------------------------------------------ the corpus

def test_generation_outcomes_is_not_drawn_when_everything_was_accepted():
    accepted = {"n": 100, "accepted": 100, "rejected": 0, "pending": 0, "rejected_by_reason": {},
                "generator": {"source": "template"}}
    assert data_figures.generation_outcomes(accepted) is None
    assert data_figures.generation_outcomes(None) is None          # a user's corpus file: no generation at all
    some = dict(accepted, accepted=90, rejected=7, pending=3, rejected_by_reason={"refusal": 5, "empty": 2},
                generator={"source": "openai"})
    fig = data_figures.generation_outcomes(some, note="N")
    ax = fig.axes[0]
    outcomes = [t.get_text() for t in ax.get_yticklabels()]
    assert outcomes == ["accepted", "rejected: empty", "rejected: refusal", "pending"]   # outcomes that occurred only
    assert [p.get_width() for p in ax.patches] == [90, 2, 5, 3]
    assert ax.get_title().startswith("Generation outcomes: 90 of 100 requests accepted (openai)")


def _ratios(n=4):
    r = pd.DataFrame(np.zeros((n, n)), index=list("abcd"[:n]), columns=list("abcd"[:n]))
    v = r.to_numpy().copy()
    v[0, 1] = v[1, 0] = -np.inf     # never together
    v[0, 2] = v[2, 0] = -5.0        # far below chance: drawn at -limit
    v[1, 2] = v[2, 1] = 1.0
    v[3, :] = v[:, 3] = np.nan      # class d never occurs
    np.fill_diagonal(v, np.nan)
    return pd.DataFrame(v, index=r.index, columns=r.columns)


def test_cooccurrence_never_together_has_its_own_colour_and_the_diagonal_is_marked():
    r = _ratios()
    fig = data_figures.cooccurrence_heatmaps([r, r.clip(-1, 1)], ["corpus", "test"], limit=3.0, suptitle="t")
    maps = _data_axes(fig)
    assert len(maps) == 2 and len(fig.axes) == 3                    # two maps, one shared colour bar
    assert [ax.get_title() for ax in maps] == ["corpus", "test"]
    mesh = maps[0].collections[0]
    assert (mesh.norm.vmin, mesh.norm.vmax) == (-3.0, 3.0) and maps[1].collections[0].norm is mesh.norm
    cells = {c.get_gid(): c for c in maps[0].collections[1:]}
    never, diagonal = cells["never together (0 observed)"], cells["diagonal: a class with itself (undefined)"]
    never_rgb = mpl.colors.to_rgb(never.get_facecolor()[0])
    at_limit = mpl.colors.to_rgb(mesh.cmap(mesh.norm(-3.0)))
    at_zero = mpl.colors.to_rgb(mesh.cmap(mesh.norm(0.0)))
    assert np.abs(np.subtract(never_rgb, at_limit)).max() > 0.2, "never together must not look like 1/8 of chance"
    assert np.abs(np.subtract(never_rgb, at_zero)).max() > 0.2
    assert len(never.get_paths()) == 2 and len(diagonal.get_paths()) == 4 and diagonal.get_hatch() == "///"
    assert len(cells["a class never occurs here"].get_paths()) == 6      # row and column d, off the diagonal
    # the mesh holds only finite off-diagonal cells, clipped: -5 is drawn at -3
    data = mesh.get_array()
    assert data.count() == 4 and data.min() == -3.0
    assert {t.get_text() for t in fig.legends[0].get_texts()} == set(cells)
    assert maps[0].get_xlabel() == "class" and maps[0].get_ylabel() == "class"
    with pytest.raises(ValueError, match="2 tables for 1"):
        data_figures.cooccurrence_heatmaps([r, r], ["x"])
    with pytest.raises(ValueError, match="shapes"):
        data_figures.cooccurrence_heatmaps([r, r.iloc[:3, :3]], ["x", "y"])


def test_every_figure_saves_with_a_caption(tmp_path):
    """save_figure accepts each figure (labels where axes are drawn; diagrams and pictures need none)."""
    sprites = [np.zeros((8, 8, 4), dtype=np.uint8)] * 2
    made = {"pipeline": data_figures.pipeline_diagram(), "sprites": data_figures.sprite_legend(sprites, ["a", "b"]),
            "cooc": data_figures.cooccurrence_heatmaps([_ratios()], ["t"]), "metrics": data_figures.toy_clip_metrics(_report())}
    for name, fig in made.items():
        (png,) = save_figure(fig, name, tmp_path, formats=("png",), caption="A caption of the figure for the test.")
        assert png.stat().st_size > 0


# ------------------------------------------------------------------------------------------ the tables of notebooks 00, 01

def test_split_label_frequency_counts_and_shares():
    freq = tables.split_label_frequency(np.array([[1, 0], [1, 1], [0, -1], [1, 0]]), ["cat", "dog"])
    assert list(freq["images"]) == [3, 1] and list(freq["share (%)"]) == [75.0, 25.0] and freq.index.name == "class"
    with pytest.raises(ValueError, match="N x 3"):
        tables.split_label_frequency(np.zeros((2, 2)), ["a", "b", "c"])


def test_prompt_augmentation_table_counts_the_official_composition():
    table = tables.prompt_augmentation_table("emoji-voc", copies=9, templates="openai")
    # 20 classes x (9 copies + 80 OpenAI templates) = 1,780 texts; "a photo of a {}." is also a template: 10 in all
    assert list(table["per class"]) == [9, 80, 89] and list(table["texts in all"]) == [180, 1600, 1780]
    assert list(table["classes"]) == [20, 20, 20]
    assert list(table["class prompt among them (per class)"]) == [9, 1, 10]
    assert table.iloc[0]["examples"] == "a photo of a airplane."
    assert len(table.iloc[1]["examples"].split(" / ")) == 3
    text = tables.prompt_augmentation_summary(table, 20000)
    assert "1,780 single-label prompt texts" in text and "20 x 89 = 1,780" in text and "10 times per class" in text
    assert "20,000 + 1,780 = 21,780" in text
    own = tables.prompt_augmentation_table("emoji-voc", copies=2, templates="own")
    assert list(own["per class"]) == [2, 80, 82] and list(own["class prompt among them (per class)"]) == [2, 0, 2]
    assert "times per class" not in tables.prompt_augmentation_summary(own, 10)


def test_corpus_origin_for_a_generated_corpus_and_for_a_users_file(tmp_path):
    results = tmp_path / "results"
    generated = SimpleNamespace(path=results / "corpus" / "template.jsonl", origin="generated by the template generator",
                                sentences=1000, summary={"status": "complete", "n": 1000, "pending": 0})
    text = tables.corpus_origin(generated, results)
    assert text.startswith("**Corpus:** `corpus/template.jsonl` in the results folder, generated by the template generator: "
                           "1,000 sentences.") and "status: complete." in text
    incomplete = SimpleNamespace(**{**vars(generated), "summary": {"status": "incomplete", "n": 1000, "pending": 40}})
    assert "40 of 1000 requests pending" in tables.corpus_origin(incomplete, results)
    users = SimpleNamespace(path=Path("/elsewhere/mine.jsonl"), origin="your corpus file (read as given, never modified)",
                            sentences=12, summary=None)
    text = tables.corpus_origin(users, results)         # outside the results folder: no relative_to error
    assert "`/elsewhere/mine.jsonl`" in text and "12 sentences" in text and "apply only to a generated corpus" in text


def test_generation_report():
    assert tables.generation_report(None) == ""
    accepted = {"n": 500, "accepted": 500, "rejected": 0, "pending": 0, "generator": {"source": "template"}}
    assert "all 500 requests were answered and accepted by the template generator" in tables.generation_report(accepted)
    some = {"n": 10, "accepted": 7, "rejected": 2, "pending": 1, "generator": {"source": "openai"},
            "rejected_by_reason": {"refusal": 2, "empty": 0}, "kept_with_issues": {"missing requested label": 3}}
    rejected = [{"index": 4, "reason": "refusal", "requested": ["cat", "dog"], "text": "I can't."}] * 2
    text = tables.generation_report(some, rejected, n=1)
    assert "7 of 10 requests accepted by the openai generator; 2 answers rejected (refusal 2); 1 pending." in text
    assert "missing requested label 3" in text
    assert "The first 1 of 2 rejected answers" in text and "- request 4, *refusal* (asked for cat, dog): \"I can't.\"" in text
    overlong = tables.generation_report(some, [{"index": 1, "reason": "overlong", "requested": ["cat"], "text": "word " * 100}])
    assert "'word word" in overlong and " ...'" in overlong and len(overlong.split("\n")[-1]) < 220
