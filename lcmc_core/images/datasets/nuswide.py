"""NUS-WIDE as a multi-label benchmark: 81 concepts over Flickr images, official train/test split.

Expected files (``ROOT`` is the ``root`` you pass)::

    ROOT/ImageList/TestImagelist.txt                one image per line: actor\\0001_2124494179.jpg
    ROOT/ImageList/TrainImagelist.txt               only for split="train"
    ROOT/TrainTestLabels/Labels_<concept>_Test.txt  81 files, one 0/1 per line, aligned with the list
    ROOT/Flickr/actor/0001_2124494179.jpg ...       the images (not redistributed officially)
    ROOT/Concepts81.txt                             optional; checked against the label set if present

The official archives nest two of these one level deeper; that layout is accepted too:
``ROOT/Groundtruth/TrainTestLabels/`` and ``ROOT/ConceptsList/Concepts81.txt``.

Image list lines use Windows backslashes; they are turned into ``/`` paths under ``ROOT/Flickr``
(a leading ``...\\Flickr\\`` prefix, as in ``C:\\ImageData\\Flickr\\actor\\...``, is dropped). The
``image_ids`` are those relative paths (``"actor/0001_2124494179.jpg"``). Column ``j`` holds
concept ``j`` of ``get_label_set("nuswide")`` (Concepts81.txt order), read from
``Labels_<concept>_<Split>.txt``; labels are 1/0, never -1. Images with no concept at all are
kept (all-negative rows), as TaI-DPT does; ``info["n_unlabeled"]`` counts them.

Many copies of the image folder are incomplete (Flickr images vanish); load with
``missing="skip"`` to evaluate on the images you have (the warning gives the count).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...text.label_sets import get_label_set
from .base import MultiLabelDataset
from .layout import (
    DatasetFormatError,
    LayoutCheck,
    build_dataset,
    check_classnames,
    contained_path,
    open_root,
    read_aligned_lines,
    read_text_lines,
)
from .registry import register

__all__ = ["load_nuswide", "image_list_path", "SPLITS"]

SPLITS = ("test", "train")
_FILE_SPLIT = {"test": "Test", "train": "Train"}

_ADVICE_GROUNDTRUTH = (
    "The image lists, concept list and ground truth come from the NUS-WIDE page of the Lab for Media "
    "Search, National University of Singapore (ImageList.zip, and NUS-WIDE.zip with Groundtruth/ and "
    "ConceptsList/; also mirrored by the official NExTplusplus/NUS-WIDE repository). Unzip them in ROOT "
    "so that ROOT/ImageList/ and ROOT/TrainTestLabels/ (or ROOT/Groundtruth/TrainTestLabels/) exist.")
_ADVICE_IMAGES = (
    "NUS-WIDE images are NOT redistributed officially: the NUS lab sends them on request after you sign "
    "its agreement form (see the NUS-WIDE page); other copies are unofficial and often incomplete. Put "
    "them so that ROOT/Flickr/<folder>/<file>.jpg matches each line <folder>\\<file>.jpg of the image list "
    "(and load with missing='skip' if some images are absent).")


def image_list_path(line: str) -> str:
    """Turn an image-list line (``actor\\0001_x.jpg``, maybe ``...\\Flickr\\``-prefixed) into ``actor/0001_x.jpg``."""
    rel = line.strip().replace("\\", "/")
    marker = "Flickr/"
    at = rel.rfind(marker)
    if at >= 0 and (at == 0 or rel[at - 1] == "/"):
        rel = rel[at + len(marker):]
    return rel.lstrip("/")


def _first(*candidates: Path) -> Path:
    for c in candidates:
        if c.exists():
            return c
    return candidates[0]


def _read_image_list(path: Path, image_dir: Path) -> list[str]:
    rels, seen = [], {}
    for n, line in enumerate(read_aligned_lines(path, "image list"), 1):
        rel = image_list_path(line)
        if len(rel.split("/")) < 2:
            raise DatasetFormatError(f"{path}, line {n}: expected a relative image path such as "
                                     f"'actor\\0001_2124494179.jpg', got {line!r}")
        contained_path(image_dir, rel, f"{path}, line {n}")
        if rel in seen:
            raise DatasetFormatError(f"{path}, line {n}: image {rel!r} repeats line {seen[rel]}; each image must "
                                     f"appear once")
        seen[rel] = n
        rels.append(rel)
    if not rels:
        raise DatasetFormatError(f"{path}: the image list is empty")
    return rels


def _read_label_column(path: Path, n_images: int, list_file: Path) -> np.ndarray:
    lines = read_aligned_lines(path, "concept label file")
    values = np.array(lines) == "1"
    if not set(lines) <= {"0", "1"}:
        n = next(k for k, line in enumerate(lines, 1) if line not in ("0", "1"))
        raise DatasetFormatError(f"{path}, line {n}: expected 0 or 1, got {lines[n - 1]!r} (one value per line)")
    if len(values) != n_images:
        raise DatasetFormatError(f"{path}: {len(values)} labels for the {n_images} images of {list_file}; "
                                 f"each line must hold the 0/1 label of the image on the same line of the list")
    return values


@register("nuswide")
def load_nuswide(root=None, split: str = "test", *, missing: str = "fail",
                 verify_images: bool = True) -> MultiLabelDataset:
    """Load a NUS-WIDE split (``test``/``train``); labels 1/0 from ``TrainTestLabels/Labels_<concept>_<Split>.txt``."""
    root = open_root("nuswide", root, split, SPLITS, missing)
    tag = _FILE_SPLIT[split]
    concepts = list(get_label_set("nuswide").classnames)

    list_file = root / "ImageList" / f"{tag}Imagelist.txt"
    label_dir = _first(root / "TrainTestLabels", root / "Groundtruth" / "TrainTestLabels")
    concepts_file = _first(root / "Concepts81.txt", root / "ConceptsList" / "Concepts81.txt")
    image_dir = root / "Flickr"

    check = LayoutCheck("nuswide", split, root)
    if not check.file(list_file, f"image list of split {split!r}"):
        check.advise(_ADVICE_GROUNDTRUTH)
    label_files = [label_dir / f"Labels_{c}_{tag}.txt" for c in concepts]
    if label_dir.is_dir():
        check.files(label_files, f"concept label file of split {split!r}", _ADVICE_GROUNDTRUTH)
    else:
        check.folder(label_dir, f"label folder TrainTestLabels (holds the 81 Labels_<concept>_{tag}.txt "
                                f"files; ROOT/Groundtruth/TrainTestLabels is accepted too)")
        check.advise(_ADVICE_GROUNDTRUTH)
    if not check.folder(image_dir, "image folder Flickr", nonempty=True):
        check.advise(_ADVICE_IMAGES)
    check.raise_if_missing()

    if concepts_file.is_file():
        check_classnames("nuswide", [line for _, line in read_text_lines(concepts_file)], concepts,
                         str(concepts_file))
    rels = _read_image_list(list_file, image_dir)
    labels = np.zeros((len(rels), len(concepts)), dtype=np.int8)
    for j, label_file in enumerate(label_files):
        labels[:, j] = _read_label_column(label_file, len(rels), list_file)

    paths = [str(image_dir / rel) for rel in rels]
    info = {"root": str(root), "image_list": str(list_file), "label_dir": str(label_dir),
            "concepts_file": str(concepts_file) if concepts_file.is_file() else None,
            "label_source": f"TrainTestLabels/Labels_<concept>_{tag}.txt",
            "n_unlabeled": int((labels.max(axis=1) <= 0).sum())}
    return build_dataset("nuswide", split, concepts, labels, rels, paths, missing=missing,
                         verify_images=verify_images, label_set="nuswide", info=info)
