"""Tests of the shared figures: what they draw, and the errors they raise."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from lcmc_core.reporting import figures
from lcmc_core.reporting.saving import figure_labels


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


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


def test_the_gallery_lines_of_one_image_end_before_the_next_column():
    from lcmc_core.experiments.rows import Row
    images = [np.zeros((16, 16, 3), dtype=np.uint8)] * 2
    preds = {str(r): [["diningtable", "pottedplant", "tvmonitor"]] * 2
             for r in (Row.ZERO_SHOT_PUBLISHED, Row.ZERO_SHOT_SELECT, Row.SPARC, Row.COMC)}
    fig = figures.prediction_gallery(images, [["cat"]] * 2, preds, title="t", ncols=2)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert fig.axes[0].texts[0].get_window_extent(renderer).x1 < fig.axes[1].get_window_extent(renderer).x0
    lines = fig.axes[0].texts[0].get_text().split("\n")
    assert lines[2].startswith("SPARC: diningtable -")            # the protocol in brackets is dropped ...
    assert lines[0].startswith("zero-shot CLIP [published")       # ... unless two rows would then read alike
    plt.close(fig)


# --- the main results figure: nothing squeezed, legends outside the data ------------------------------
def _table():
    names = [f"method {i}" for i in range(8)] + ["I0T-like"]
    maps = [78.0, 80.5, 81.0, 82.0, 83.0, 83.5, 84.0, 85.3, 43.7]
    return pd.DataFrame({"mAP": maps, "CI low": [m - 1.2 for m in maps], "CI high": [m + 1.2 for m in maps]},
                        index=names)


def test_a_far_off_row_is_drawn_off_scale_and_the_others_keep_the_axis():
    assert figures.core_range([78.0, 80.5, 81.0, 82.0, 83.0, 83.5, 84.0, 85.3, 43.7]) == (78.0, 85.3)
    fig, ax = plt.subplots(figsize=(8, 5))
    figures.forest_plot(ax, _table())
    lo, hi = ax.get_xlim()
    assert lo > 70 and hi < 95, "the far-off row must not set the axis"
    assert any("43.7 (off scale)" in t.get_text() for t in ax.texts)
    legend = ax.get_legend()
    fig.canvas.draw()
    assert legend.get_window_extent().y1 < ax.get_window_extent().y0, "the legend sits under the data, outside it"
    plt.close(fig)


def test_the_difference_plot_shows_family_wise_and_unadjusted_intervals():
    diffs = [1.0, -0.5, 0.3, 0.8, -1.0, 0.2, 40.0]
    names = ["mapping gain: CoMC (full) - classifier", "CoMC (full) - DeCap"] + [f"CoMC (full) - row {i}"
                                                                                 for i in range(4)] + ["CoMC (full) - I0T"]
    paired = pd.DataFrame({"difference": diffs, "CI low": [d - 0.5 for d in diffs], "CI high": [d + 0.5 for d in diffs],
                           "family-wise low": [d - 0.8 for d in diffs], "family-wise high": [d + 0.8 for d in diffs]},
                          index=names)
    fig, ax = plt.subplots()
    figures.difference_plot(ax, paired)
    widths = sorted({round(line.get_linewidth(), 1) for line in ax.lines if len(line.get_xdata()) == 2})
    assert 1.0 in widths and 3.0 in widths                        # thin unadjusted, thick family-wise
    assert any("+40.0 (off scale)" in t.get_text() for t in ax.texts)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[:2] == ["mapping gain: CoMC (full) - classifier", "minus DeCap"] and labels[-1] == "minus I0T"
    assert ax.get_ylabel() == "row compared with CoMC (full)"
    plt.close(fig)


def test_the_notebooks_figures_label_every_data_axes():
    import torch
    import torch.nn.functional as F

    from lcmc_core.experiments import walkthrough
    from lcmc_core.method.comc import CoMC

    memory = F.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    est = CoMC.from_classifier(torch.randn(3, 8), memory)
    walk = walkthrough.mapping_of_one_image(est, F.normalize(torch.randn(2, 8), dim=-1), 0)
    history = [{"epoch": e, "lr": 1e-3, "train_loss": 1.0 / (e + 1)} for e in range(3)]
    built = [figures.mapping_one_image(walk, list("abcd"), list("xyz")), figures.training_curves(history),
             figures.noise_example(walkthrough.noisy_embedding(memory[0], 0.1)),
             figures.main_results(_table(), pd.DataFrame({"difference": [1.0], "CI low": [0.0], "CI high": [2.0]},
                                                         index=["CoMC (full) - x"]), "method 0")]
    for fig in built:
        labels = figure_labels(fig, caption="a caption that says what the figure shows")
        assert labels["labelled"], [a for a in labels["axes"] if not (a["has_xlabel"] and a["has_ylabel"])]
        plt.close(fig)
