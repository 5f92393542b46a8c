"""MS-COCO 2014 as a multi-label benchmark: 80 categories, image-level labels from instance boxes.

Expected files (``ROOT`` is the ``root`` you pass)::

    ROOT/annotations/instances_val2014.json      from annotations_trainval2014.zip
    ROOT/val2014/COCO_val2014_000000000042.jpg   from val2014.zip
    ROOT/annotations/instances_train2014.json    only for split="train"
    ROOT/train2014/...                           only for split="train"

``split="test"`` (or ``"val"``) is val2014, the evaluation set of TaI-DPT, DualCoOp and CoMC;
``split="train"`` is train2014.

Labels: an image is positive for a category if it has at least one instance annotation of it
(``iscrowd`` annotations included, as pycocotools' default ``getAnnIds`` and those papers do);
every other entry is 0. Images without any annotation (367 in val2014) are kept as all-negative
rows. There is no ignored (-1) entry. Category ids run 1-90 with gaps; column ``j`` is the
``j``-th category of the json's ``categories`` sorted by id, and those names must equal
``get_label_set("coco2014").classnames`` (an error says where they differ). Rows are sorted by
image id; ``image_ids`` are the COCO image ids as strings.

The json is parsed once with the standard library (no pycocotools); polygon segmentations are
dropped while parsing to keep memory low.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...text.label_sets import COCO2014_CATEGORY_IDS, get_label_set
from .base import MultiLabelDataset
from .layout import DatasetFormatError, LayoutCheck, build_dataset, check_classnames, contained_path, open_root
from .registry import register

__all__ = ["load_coco2014", "read_instances", "SPLITS"]

SPLITS = ("test", "val", "train")
_COCO_SPLIT = {"test": "val2014", "val": "val2014", "train": "train2014"}

_ADVICE = {
    "val2014": ("Download the 2014 Val images (val2014.zip) and the 2014 Train/Val annotations "
                "(annotations_trainval2014.zip) from the COCO site (cocodataset.org, Dataset > Download) "
                "and unzip both inside ROOT so that ROOT/val2014/ and ROOT/annotations/instances_val2014.json exist"),
    "train2014": ("Download the 2014 Train images (train2014.zip) and the 2014 Train/Val annotations "
                  "(annotations_trainval2014.zip) from the COCO site (cocodataset.org, Dataset > Download) "
                  "and unzip both inside ROOT so that ROOT/train2014/ and "
                  "ROOT/annotations/instances_train2014.json exist"),
}


def _drop_segmentation(obj: dict) -> dict:
    obj.pop("segmentation", None)
    return obj


def _field(path: Path, record: dict, key: str, kind: str, index: int, types=(int,)):
    if not isinstance(record, dict) or key not in record:
        raise DatasetFormatError(f"{path}: {kind}[{index}] has no field {key!r} (official COCO instances format)")
    value = record[key]
    if not isinstance(value, types) or isinstance(value, bool):
        raise DatasetFormatError(f"{path}: {kind}[{index}].{key} must be {'/'.join(t.__name__ for t in types)}, "
                                 f"got {value!r}")
    return value


def read_instances(path: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]], dict[int, set[int]]]:
    """Parse an instances json into (images [(id, file_name)], categories [(id, name)], image id -> category ids)."""
    path = Path(path)
    again = "re-extract annotations_trainval2014.zip"
    try:
        with open(path, "rb") as f:
            data = json.load(f, object_hook=_drop_segmentation)
    except json.JSONDecodeError as e:
        raise DatasetFormatError(f"{path}, line {e.lineno} column {e.colno}: not valid JSON ({e.msg}); "
                                 f"the file may be truncated, {again}") from None
    except UnicodeDecodeError as e:
        raise DatasetFormatError(f"{path}: not UTF-8 (byte {e.start + 1} is {e.object[e.start:e.start + 1]!r}); COCO "
                                 f"annotations are UTF-8 JSON (this one may have been re-saved as latin-1): {again}"
                                 ) from None
    except RecursionError:
        raise DatasetFormatError(f"{path}: JSON nested too deeply to read; COCO annotations are a flat object of "
                                 f"lists: {again}") from None
    except ValueError as e:  # e.g. an integer longer than Python's 4,300-digit limit
        raise DatasetFormatError(f"{path}: unreadable JSON ({str(e).split(':')[0]}): {again}") from None
    except OSError as e:
        raise DatasetFormatError(f"{path}: cannot be read ({e.strerror or e})") from None
    if not isinstance(data, dict):
        raise DatasetFormatError(f"{path}: expected a JSON object with 'images', 'annotations' and 'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetFormatError(f"{path}: expected a list under the top-level field {key!r} "
                                     f"(official COCO instances format)")
    images = [(_field(path, r, "id", "images", i), _field(path, r, "file_name", "images", i, (str,)))
              for i, r in enumerate(data["images"])]
    categories = [(_field(path, r, "id", "categories", i), _field(path, r, "name", "categories", i, (str,)))
                  for i, r in enumerate(data["categories"])]
    image_ids = {i for i, _ in images}
    category_ids = {c for c, _ in categories}
    if len(image_ids) != len(images):
        raise DatasetFormatError(f"{path}: the 'images' list repeats image ids")
    if len(category_ids) != len(categories):
        raise DatasetFormatError(f"{path}: the 'categories' list repeats category ids")
    present: dict[int, set[int]] = {}
    for i, ann in enumerate(data["annotations"]):
        image_id = _field(path, ann, "image_id", "annotations", i)
        category_id = _field(path, ann, "category_id", "annotations", i)
        if image_id not in image_ids:
            raise DatasetFormatError(f"{path}: annotations[{i}].image_id = {image_id} is not in the 'images' list")
        if category_id not in category_ids:
            raise DatasetFormatError(f"{path}: annotations[{i}].category_id = {category_id} is not in the "
                                     f"'categories' list")
        present.setdefault(image_id, set()).add(category_id)
    return images, categories, present


@register("coco2014")
def load_coco2014(root=None, split: str = "test", *, missing: str = "fail",
                  verify_images: bool = True) -> MultiLabelDataset:
    """Load COCO 2014 (``test``/``val`` = val2014, ``train`` = train2014); labels 1/0 from instance annotations."""
    root = open_root("coco2014", root, split, SPLITS, missing)
    coco_split = _COCO_SPLIT[split]
    ann_file = root / "annotations" / f"instances_{coco_split}.json"
    image_dir = root / coco_split

    check = LayoutCheck("coco2014", split, root)
    check.file(ann_file, f"instance annotations of {coco_split}")
    check.folder(image_dir, f"image folder {coco_split}", nonempty=True)
    if check.missing:
        check.advise(_ADVICE[coco_split])
    check.raise_if_missing()

    label_set = get_label_set("coco2014")
    images, categories, present = read_instances(ann_file)
    categories.sort()
    check_classnames("coco2014", [n for _, n in categories], label_set.classnames,
                     f"{ann_file} ('categories' sorted by id)")
    official_ids = COCO2014_CATEGORY_IDS  # {name: official id}
    if official_ids is not None:
        wrong = [(n, c, official_ids.get(n)) for c, n in categories if official_ids.get(n) != c]
        if wrong:
            raise DatasetFormatError(
                f"{ann_file}: category ids differ from the official COCO ids "
                f"(lcmc_core.text.labels.COCO2014_CATEGORY_IDS): "
                + "; ".join(f"{n!r} has id {c}, expected {o}" for n, c, o in wrong[:10]))
    column = {cid: j for j, (cid, _) in enumerate(categories)}

    read_order = list(images)
    images.sort()
    labels = np.zeros((len(images), len(categories)), dtype=np.int8)
    for row, (image_id, _) in enumerate(images):
        for cid in present.get(image_id, ()):
            labels[row, column[cid]] = 1
    ids = [str(i) for i, _ in images]
    where = {image_id: i for i, (image_id, _) in enumerate(read_order)}
    paths = [contained_path(image_dir, name, f"{ann_file}: images[{where[i]}].file_name") for i, name in images]
    info = {"root": str(root), "coco_split": coco_split, "annotation_file": str(ann_file),
            "label_source": "instance annotations (iscrowd included), one positive per category present",
            "category_ids": [c for c, _ in categories],
            "n_unannotated": int(sum(1 for i, _ in images if i not in present))}
    return build_dataset("coco2014", split, label_set.classnames, labels, ids, paths, missing=missing,
                         verify_images=verify_images, label_set="coco2014", info=info)
