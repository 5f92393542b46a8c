"""Tests of the shared figures: what they draw, and the errors they raise."""
import matplotlib.pyplot as plt
import numpy as np
import pytest

from lcmc_core.reporting import figures


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
