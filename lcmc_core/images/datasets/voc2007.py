"""PASCAL VOC 2007 from the official devkit layout: 20 classes, multi-label, with "difficult" flags.

Expected files (``ROOT`` is the ``root`` you pass; it may be the folder holding ``VOCdevkit/``,
``VOCdevkit/`` itself, or ``VOCdevkit/VOC2007`` itself)::

    ROOT/VOCdevkit/VOC2007/JPEGImages/000001.jpg ...
    ROOT/VOCdevkit/VOC2007/ImageSets/Main/test.txt               one image id per line
    ROOT/VOCdevkit/VOC2007/ImageSets/Main/<class>_test.txt       "000001 -1" per line, 20 files
    ROOT/VOCdevkit/VOC2007/Annotations/000001.xml ...            not read (see below)

Label source: the per-class files ``ImageSets/Main/<class>_<split>.txt``, as TaI-DPT, DualCoOp
and CoMC use. The devkit derives them from ``Annotations/*.xml``: ``1`` if the image has a
non-difficult object of the class, ``0`` if it has only "difficult" ones, ``-1`` if none. They
map to our labels as ``1 -> 1``, ``-1 -> 0`` and ``0 -> -1`` (ignored). Whether difficult entries
count as negative (TaI-DPT/CoMC) or are ignored (ML-GCN) is decided at evaluation time by the
``difficult="negative"|"ignore"`` option of :mod:`lcmc_core.method.metrics`; the loader keeps ``-1``.

Splits: ``test`` (VOCtest_06-Nov-2007.tar), ``trainval``, ``train``, ``val``
(VOCtrainval_06-Nov-2007.tar). Image ids are the 6-digit names (``"000001"``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...text.label_sets import get_label_set
from .base import MultiLabelDataset
from .layout import DatasetFormatError, LayoutCheck, build_dataset, contained_path, open_root, read_text_lines
from .registry import register

__all__ = ["load_voc2007", "find_voc2007_dir", "SPLITS"]

SPLITS = ("test", "trainval", "train", "val")
# Official value in <class>_<split>.txt -> our label.
_VALUE_TO_LABEL = {"1": 1, "-1": 0, "0": -1}

_ADVICE = {
    "test": ("Download the VOC2007 test set (VOCtest_06-Nov-2007.tar, with annotations) from the "
             "PASCAL VOC 2007 page (host.robots.ox.ac.uk/pascal/VOC/voc2007) and extract it inside "
             "ROOT so that ROOT/VOCdevkit/VOC2007 exists: tar -xf VOCtest_06-Nov-2007.tar -C ROOT"),
    "trainval": ("Download the VOC2007 training/validation set (VOCtrainval_06-Nov-2007.tar) from the "
                 "PASCAL VOC 2007 page (host.robots.ox.ac.uk/pascal/VOC/voc2007) and extract it "
                 "inside ROOT so that ROOT/VOCdevkit/VOC2007 exists (it merges with the test set)"),
}


def find_voc2007_dir(root: Path) -> Path:
    """Return the ``VOC2007`` folder for ``root`` given as its parent's parent, ``VOCdevkit`` or itself."""
    root = Path(root)
    candidates = [root / "VOCdevkit" / "VOC2007", root / "VOC2007", root]
    for c in candidates:
        if (c / "ImageSets").is_dir() or (c / "JPEGImages").is_dir():
            return c
    if root.name == "VOC2007":
        return root
    if root.name == "VOCdevkit":
        return root / "VOC2007"
    return candidates[0]  # report missing pieces relative to the documented layout


def _read_ids(path: Path) -> list[str]:
    ids, seen = [], {}
    for n, line in read_text_lines(path):
        fields = line.split()
        if len(fields) != 1:
            raise DatasetFormatError(f"{path}, line {n}: expected one image id (e.g. '000001'), got {line!r}")
        if fields[0] in seen:
            raise DatasetFormatError(f"{path}, line {n}: image id {fields[0]!r} repeats line {seen[fields[0]]}")
        seen[fields[0]] = n
        ids.append(fields[0])
    if not ids:
        raise DatasetFormatError(f"{path}: the file lists no image ids")
    return ids


def _read_class_file(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    lines: dict[str, int] = {}
    for n, line in read_text_lines(path):
        fields = line.split()
        if len(fields) != 2 or fields[1] not in _VALUE_TO_LABEL:
            raise DatasetFormatError(
                f"{path}, line {n}: expected '<image id> <1|-1|0>' (e.g. '000001 -1'), got {line!r}")
        image_id, value = fields
        if image_id in values:
            raise DatasetFormatError(f"{path}, line {n}: image id {image_id!r} repeats line {lines[image_id]}")
        values[image_id] = _VALUE_TO_LABEL[value]
        lines[image_id] = n
    return values


def _cross_check(ids: list[str], values: dict[str, int], class_file: Path, split_file: Path) -> None:
    if len(values) == len(ids) and all(i in values for i in ids):
        return
    wanted = set(ids)
    absent = [i for i in ids if i not in values]
    extra = [i for i in values if i not in wanted]
    parts = []
    if absent:
        parts.append(f"{len(absent)} ids of {split_file.name} are missing from it (first: {absent[:5]})")
    if extra:
        parts.append(f"it lists {len(extra)} ids that {split_file.name} does not (first: {extra[:5]})")
    raise DatasetFormatError(f"{class_file}: its image ids disagree with {split_file}: " + "; ".join(parts)
                             + ". Both come from the same devkit archive; re-extract it.")


@register("voc2007")
def load_voc2007(root=None, split: str = "test", *, missing: str = "fail",
                 verify_images: bool = True) -> MultiLabelDataset:
    """Load a VOC2007 split; labels 1/0/-1 (-1 = difficult only) from ``ImageSets/Main/<class>_<split>.txt``."""
    root = open_root("voc2007", root, split, SPLITS, missing)
    voc = find_voc2007_dir(root)
    classnames = list(get_label_set("voc2007").classnames)

    check = LayoutCheck("voc2007", split, root)
    advice = _ADVICE["test" if split == "test" else "trainval"]
    main = voc / "ImageSets" / "Main"
    check.folder(voc / "JPEGImages", "image folder JPEGImages", nonempty=True)
    split_file = main / f"{split}.txt"
    check.file(split_file, f"image list of split {split!r}")
    class_files = [main / f"{c}_{split}.txt" for c in classnames]
    if main.is_dir():
        check.files(class_files, f"per-class label file of split {split!r}")
    else:
        # One line for the absent folder instead of 20 lines for the files inside it.
        check.folder(main, f"label folder ImageSets/Main (holds {split}.txt and the 20 <class>_{split}.txt files)")
    if check.missing:
        check.advise(advice)
    check.raise_if_missing()

    ids = _read_ids(split_file)
    labels = np.zeros((len(ids), len(classnames)), dtype=np.int8)
    for c, class_file in enumerate(class_files):
        values = _read_class_file(class_file)
        _cross_check(ids, values, class_file, split_file)
        labels[:, c] = [values[i] for i in ids]

    paths = [contained_path(voc / "JPEGImages", f"{i}.jpg", f"{split_file}, image id {i!r}") for i in ids]
    info = {"root": str(voc), "label_source": f"ImageSets/Main/<class>_{split}.txt",
            "difficult": "labels hold -1 where the class is present only as 'difficult' objects "
                         "(official value 0); evaluation decides whether they count as negative or are ignored",
            "n_difficult": int((labels == -1).sum())}
    return build_dataset("voc2007", split, classnames, labels, ids, paths, missing=missing,
                         verify_images=verify_images, label_set="voc2007", info=info)
