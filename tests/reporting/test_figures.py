"""Tests of the shared figures: what they draw, and the errors they raise."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from lcmc_core.reporting import figures
from lcmc_core.reporting.saving import figure_labels


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_pipeline_diagram_draws_every_step_and_arrow():
    fig = figures.pipeline_diagram()
    texts = _texts(fig)
    assert sorted(figures.pipeline_texts().values()) == sorted(t for t in texts if t in figures.pipeline_texts().values())
    assert len(figures.pipeline_texts()) == len(figures.PIPELINE_STEPS)
    # the numbers in the boxes are the package's defaults, not hand-copied ones
    assert "(std 0.1 in training)" in figures.pipeline_texts()["text_emb"]
    assert "a = 0.7" in figures.pipeline_texts()["mapping"] and "tau = 0.01" in figures.pipeline_texts()["mapping"]
    arrows = [c for c in fig.axes[0].get_children() if type(c).__name__ == "Annotation"]
    assert len(arrows) == len(figures._PIPELINE_ARROWS)
    assert figure_labels(fig, None)["titled"]
    plt.close(fig)


def test_sprite_legend_one_titled_panel_per_class():
    sprites = [np.full((8, 8, 4), i, dtype=np.uint8) for i in range(3)]
    fig = figures.sprite_legend(sprites, ["cat", "dog", "cow"], ncols=2)
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == ["cat", "dog", "cow"] and len(fig.axes) == 4
    plt.close(fig)
    with pytest.raises(ValueError, match="3 sprites for 2"):
        figures.sprite_legend(sprites, ["cat", "dog"])


def test_cooccurrence_heatmaps_share_a_centred_scale():
    r = pd.DataFrame([[np.nan, 5.0], [-np.inf, np.nan]], index=["a", "b"], columns=["a", "b"])
    fig = figures.cooccurrence_heatmaps([r, r * 0.5], ["corpus", "test"], limit=2.0, suptitle="t")
    meshes = [ax.collections[0] for ax in fig.axes[:2]]
    assert len(fig.axes) == 3                                   # two maps, one colour bar
    for m in meshes:
        assert m.norm.vmin == -2.0 and m.norm.vmax == 2.0
    assert [ax.get_title() for ax in fig.axes[:2]] == ["corpus", "test"]
    plt.close(fig)
    with pytest.raises(ValueError, match="2 tables for 1"):
        figures.cooccurrence_heatmaps([r, r], ["x"])


def test_prediction_gallery_marks_right_and_wrong():
    images = [np.zeros((4, 4, 3), dtype=np.uint8)] * 2
    fig = figures.prediction_gallery(images, [["cat"], ["dog", "cow"]],
                                     {"A": [["cat", "dog"], ["cow", "cat"]]}, title="t", ncols=2)
    texts = _texts(fig)
    assert "A: cat +, dog -" in texts and "A: cow +, cat -" in texts
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["true: cat", "true: dog, cow"]
    plt.close(fig)
    # the prediction lines under a first-row image end above the second row's title
    images = [np.zeros((16, 16, 3), dtype=np.uint8)] * 4
    preds = {m: [["cat", "dog", "cow"]] * 4 for m in ("method A", "method B", "method C", "method D")}
    fig = figures.prediction_gallery(images, [["cat"]] * 4, preds, title="t", ncols=2)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    first_text = fig.axes[0].texts[0].get_window_extent(renderer)
    second_title = fig.axes[2]._left_title  # the title set with loc="left" (matplotlib has no public getter)
    assert second_title.get_text() == "true: cat"
    assert first_text.y0 > second_title.get_window_extent(renderer).y1
    assert fig.axes[2].texts[0].get_window_extent(renderer).y0 > 0, "the last row's lines stay inside the figure"
    plt.close(fig)
    with pytest.raises(ValueError, match="1 predictions for 'A'"):
        figures.prediction_gallery(images, [["cat"], ["dog"]], {"A": [["cat"]]}, title="t")
