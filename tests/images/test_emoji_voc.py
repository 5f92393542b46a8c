"""The ``emoji-voc`` dataset loader."""
import numpy as np
import pytest
from PIL import Image

from lcmc_core.images import datasets, toyworld
from lcmc_core.images.datasets import emoji_voc
from lcmc_core.images.datasets.base import MultiLabelDataset
from lcmc_core.text.label_sets import get_label_set


def test_emoji_voc_is_registered():
    assert "emoji-voc" in datasets.available()


def test_load_returns_a_labelled_dataset(tmp_path):
    ds = datasets.load("emoji-voc", split="test", n=30, seed=0, image_size=64, cache=tmp_path)
    assert isinstance(ds, MultiLabelDataset)
    assert ds.name == "emoji-voc" and ds.split == "test" and ds.label_set == "emoji-voc"
    assert ds.classnames == list(get_label_set("emoji-voc").classnames)
    assert len(ds) == 30 and ds.labels.shape == (30, 20) and ds.labels.dtype == np.int8
    assert set(np.unique(ds.labels)) <= {0, 1} and (ds.labels.sum(1) >= 1).all()
    im = ds.image(4)
    assert isinstance(im, Image.Image) and im.mode == "RGB" and im.size == (64, 64)
    expected = toyworld.render_scene(toyworld.sample_scene(0, "test", 4))
    assert im.tobytes() == expected.tobytes()
    image, labels = ds[4]
    np.testing.assert_array_equal(labels, toyworld.scene_labels(toyworld.sample_scene(0, "test", 4)))
    assert ds.image(-1).size == (64, 64)
    assert ds.info["toyworld_version"] == toyworld.TOYWORLD_VERSION
    assert len(ds.info["scene_types"]) == 30


def test_splits_sizes_and_seeds(tmp_path):
    assert emoji_voc.DEFAULT_SIZES == {"test": 2000, "heldout": 1000, "pretrain": 20000}
    a = datasets.load("emoji-voc", split="heldout", n=5, seed=1, image_size=32, cache=False)
    b = datasets.load("emoji-voc", split="pretrain", n=5, seed=1, image_size=32, cache=False)
    assert a.image(0).size == (32, 32)
    assert a.image(0).tobytes() != b.image(0).tobytes()


def test_bad_split_and_root_are_explained():
    with pytest.raises(ValueError, match=r"split must be one of \['test', 'heldout', 'pretrain'\]"):
        datasets.load("emoji-voc", split="val", n=3, cache=False)
    with pytest.raises(ValueError, match="root must be None"):
        datasets.load("emoji-voc", root="/data/voc", n=3, cache=False)
    with pytest.raises(ValueError, match="image_size"):
        datasets.load("emoji-voc", n=3, image_size=4, cache=False)
