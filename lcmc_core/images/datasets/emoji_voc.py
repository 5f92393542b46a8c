"""``emoji-voc``: the offline EmojiVOC toy world (:mod:`lcmc_core.images.toyworld`) as a dataset.

``load("emoji-voc", split="test", n=2000, seed=0, image_size=64)`` renders (or reloads from the
cache) ``n`` labelled scenes; no download and no ``root`` are needed.
"""
from __future__ import annotations

import os

from .. import toyworld
from .base import ArrayImages, MultiLabelDataset
from .registry import register

__all__ = ["DEFAULT_SIZES", "load_emoji_voc"]

DEFAULT_SIZES = {"test": 2000, "heldout": 1000, "pretrain": 20000}
"""Number of images per split when ``n`` is not given."""


@register("emoji-voc")
def load_emoji_voc(root=None, split: str = "test", n: int | None = None, seed: int = 0,
                   image_size: int = 64,
                   cache: str | os.PathLike | None | bool = None) -> MultiLabelDataset:
    """Render (or reload) ``n`` EmojiVOC scenes of ``split`` as a labelled dataset."""
    if root is not None:
        raise ValueError(f"root must be None for 'emoji-voc' (the toy world is generated, it needs no "
                         f"files on disk), got root={root!r}")
    if split not in DEFAULT_SIZES:
        raise ValueError(f"split must be one of {list(DEFAULT_SIZES)} for 'emoji-voc', got {split!r}")
    if n is None:
        n = DEFAULT_SIZES[split]
    data = toyworld.render_split(split, n, seed=seed, image_size=image_size, cache=cache)
    return MultiLabelDataset(
        "emoji-voc", split, toyworld.CLASSNAMES, data.labels, ArrayImages(data.images),
        image_ids=[f"{split}-{seed}-{i}" for i in range(len(data))], label_set="emoji-voc",
        info={"toyworld_version": toyworld.TOYWORLD_VERSION, "seed": seed, "image_size": data.image_size,
              "scene_types": data.scene_types})
