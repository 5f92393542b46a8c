"""The multi-label dataset object shared by every benchmark (toy and real)."""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

__all__ = ["MultiLabelDataset", "ArrayImages", "SubsetImages"]


class ArrayImages:
    """Image loader over an in-memory uint8 N x H x W x 3 array (picklable, for DataLoader workers)."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def __call__(self, i: int) -> Image.Image:
        return Image.fromarray(self.images[i])


class SubsetImages:
    """Image loader of a subset: image ``j`` is image ``indices[j]`` of ``base`` (picklable)."""

    def __init__(self, base: Callable[[int], Image.Image], indices: Sequence[int]):
        self.base, self.indices = base, list(indices)

    def __call__(self, j: int) -> Image.Image:
        return self.base(self.indices[j])


class MultiLabelDataset:
    """Images with an N x C label matrix (1 present, 0 absent, -1 ignored/difficult).

    ``image(i)`` returns image ``i`` as an RGB PIL image; ``dataset[i]`` returns
    ``(image, labels[i])``. Real datasets also carry ``image_paths``. The object pickles when its
    ``image_loader`` does (every loader of this package does), so DataLoader workers can use it.
    """

    def __init__(self, name: str, split: str, classnames: Sequence[str], labels: np.ndarray,
                 image_loader: Callable[[int], Image.Image], *, image_ids: Sequence[str] | None = None,
                 image_paths: Sequence[str] | None = None, label_set: str | None = None,
                 info: dict | None = None):
        labels = np.asarray(labels)
        if labels.ndim != 2 or labels.shape[1] != len(classnames):
            raise ValueError(f"dataset {name!r}: labels must be N x {len(classnames)}, got {labels.shape}")
        bad = ~np.isin(labels, (-1, 0, 1))
        if bad.any():
            raise ValueError(f"dataset {name!r}: labels must be 1, 0 or -1; found {np.unique(labels[bad])}")
        self.name = name
        self.split = split
        self.classnames = list(classnames)
        self.labels = labels.astype(np.int8)
        self.label_set = label_set or name
        self.image_ids = list(image_ids) if image_ids is not None else [str(i) for i in range(len(labels))]
        self.image_paths = list(image_paths) if image_paths is not None else None
        self.info = dict(info or {})
        self._image_loader = image_loader
        if len(self.image_ids) != len(self.labels):
            raise ValueError(f"dataset {name!r}: {len(self.image_ids)} image ids for {len(self.labels)} label rows")

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> Image.Image:
        """Return image ``i`` as an RGB PIL image."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"dataset {self.name!r} ({self.split}) has {len(self)} images; index {i} is out of range")
        return self._image_loader(int(i) % len(self))

    def subset(self, indices) -> MultiLabelDataset:
        """The dataset restricted to ``indices`` (in that order), e.g. a fixed random sample."""
        idx = [int(i) for i in np.asarray(indices).reshape(-1)]
        for i in idx:
            if not 0 <= i < len(self):
                raise IndexError(f"subset of dataset {self.name!r}: index {i} out of range 0..{len(self) - 1}")
        info = dict(self.info, subset=hashlib.sha256(",".join(map(str, idx)).encode()).hexdigest()[:16])
        return MultiLabelDataset(
            self.name, self.split, self.classnames, self.labels[idx], SubsetImages(self._image_loader, idx),
            image_ids=[self.image_ids[i] for i in idx],
            image_paths=[self.image_paths[i] for i in idx] if self.image_paths is not None else None,
            label_set=self.label_set, info=info)

    def __getitem__(self, i: int):
        return self.image(i), self.labels[i]

    def __repr__(self) -> str:
        return (f"MultiLabelDataset(name={self.name!r}, split={self.split!r}, images={len(self)}, "
                f"classes={len(self.classnames)})")
