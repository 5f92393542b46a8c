"""Tiny copies of VOC2007, COCO 2014 and NUS-WIDE written in their exact official file formats.

Each ``make_*`` function writes a handful of 8-16 px JPEGs plus the official list/label/annotation
files under a folder (e.g. pytest's ``tmp_path``) and returns a :class:`Fixture` with the ``root``
to pass to ``lcmc_core.images.datasets.load`` and the labels the loader must produce. Reused by the
loader tests and by anything that needs a real-format dataset without the real data (feature
extraction, notebooks)::

    from tests.fixtures_datasets import make_voc2007
    fx = make_voc2007(tmp_path)
    ds = lcmc_core.images.datasets.load("voc2007", fx.root)
    assert (ds.labels == fx.labels).all()

The official class lists below are written out independently of ``lcmc_core.text.labels`` so that the
tests check the label sets against the formats rather than against themselves.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["Fixture", "write_image", "make_voc2007", "make_coco2014", "make_nuswide",
           "VOC_CLASSES", "COCO_CATEGORIES", "NUS_CONCEPTS"]

VOC_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor"]

# (id, name, supercategory) exactly as in instances_val2014.json; ids 1-90 with 10 gaps.
COCO_CATEGORIES = [
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"),
    (4, "motorcycle", "vehicle"), (5, "airplane", "vehicle"), (6, "bus", "vehicle"),
    (7, "train", "vehicle"), (8, "truck", "vehicle"), (9, "boat", "vehicle"),
    (10, "traffic light", "outdoor"), (11, "fire hydrant", "outdoor"), (13, "stop sign", "outdoor"),
    (14, "parking meter", "outdoor"), (15, "bench", "outdoor"), (16, "bird", "animal"),
    (17, "cat", "animal"), (18, "dog", "animal"), (19, "horse", "animal"), (20, "sheep", "animal"),
    (21, "cow", "animal"), (22, "elephant", "animal"), (23, "bear", "animal"), (24, "zebra", "animal"),
    (25, "giraffe", "animal"), (27, "backpack", "accessory"), (28, "umbrella", "accessory"),
    (31, "handbag", "accessory"), (32, "tie", "accessory"), (33, "suitcase", "accessory"),
    (34, "frisbee", "sports"), (35, "skis", "sports"), (36, "snowboard", "sports"),
    (37, "sports ball", "sports"), (38, "kite", "sports"), (39, "baseball bat", "sports"),
    (40, "baseball glove", "sports"), (41, "skateboard", "sports"), (42, "surfboard", "sports"),
    (43, "tennis racket", "sports"), (44, "bottle", "kitchen"), (46, "wine glass", "kitchen"),
    (47, "cup", "kitchen"), (48, "fork", "kitchen"), (49, "knife", "kitchen"), (50, "spoon", "kitchen"),
    (51, "bowl", "kitchen"), (52, "banana", "food"), (53, "apple", "food"), (54, "sandwich", "food"),
    (55, "orange", "food"), (56, "broccoli", "food"), (57, "carrot", "food"), (58, "hot dog", "food"),
    (59, "pizza", "food"), (60, "donut", "food"), (61, "cake", "food"), (62, "chair", "furniture"),
    (63, "couch", "furniture"), (64, "potted plant", "furniture"), (65, "bed", "furniture"),
    (67, "dining table", "furniture"), (70, "toilet", "furniture"), (72, "tv", "electronic"),
    (73, "laptop", "electronic"), (74, "mouse", "electronic"), (75, "remote", "electronic"),
    (76, "keyboard", "electronic"), (77, "cell phone", "electronic"), (78, "microwave", "appliance"),
    (79, "oven", "appliance"), (80, "toaster", "appliance"), (81, "sink", "appliance"),
    (82, "refrigerator", "appliance"), (84, "book", "indoor"), (85, "clock", "indoor"),
    (86, "vase", "indoor"), (87, "scissors", "indoor"), (88, "teddy bear", "indoor"),
    (89, "hair drier", "indoor"), (90, "toothbrush", "indoor"),
]

# Concepts81.txt, in file order.
NUS_CONCEPTS = [
    "airport", "animal", "beach", "bear", "birds", "boats", "book", "bridge", "buildings", "cars",
    "castle", "cat", "cityscape", "clouds", "computer", "coral", "cow", "dancing", "dog", "earthquake",
    "elk", "fire", "fish", "flags", "flowers", "food", "fox", "frost", "garden", "glacier", "grass",
    "harbor", "horses", "house", "lake", "leaf", "map", "military", "moon", "mountain", "nighttime",
    "ocean", "person", "plane", "plants", "police", "protest", "railroad", "rainbow", "reflection",
    "road", "rocks", "running", "sand", "sign", "sky", "snow", "soccer", "sports", "statue", "street",
    "sun", "sunset", "surf", "swimmers", "tattoo", "temple", "tiger", "tower", "town", "toy", "train",
    "tree", "valley", "vehicle", "water", "waterfall", "wedding", "whales", "window", "zebra",
]


@dataclass
class Fixture:
    """A written tiny dataset: where it is and what the loader should return for it."""

    root: Path                      # pass this as ``root`` to ``load``
    split: str                      # the split written
    image_ids: list[str]            # in the order the loader returns rows
    labels: np.ndarray              # N x C int8, 1 / 0 / -1, matching ``image_ids``
    image_paths: dict[str, Path]    # image id -> file written
    notes: dict = field(default_factory=dict)  # which ids are special (grayscale, no annotation, ...)


def write_image(path: Path, *, mode: str = "RGB", size: int = 12, seed: int = 0) -> Path:
    """Write a small JPEG (``mode`` RGB, L for grayscale, or CMYK) with random pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1, "CMYK": 4}[mode]
    pixels = rng.integers(0, 256, size=(size, size, channels), dtype=np.uint8)
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
    image.save(path, format="JPEG", quality=90)
    return path


def _write_lines(path: Path, lines, newline: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write("".join(line + newline for line in lines))


# --- VOC2007 ------------------------------------------------------------------------------------

def make_voc2007(base: Path, split: str = "test") -> Fixture:
    """Write ``base/VOCdevkit/VOC2007`` with 5 images, difficult flags, XML annotations, one grayscale."""
    base = Path(base)
    voc = base / "VOCdevkit" / "VOC2007"
    ids = ["000001", "000002", "000004", "000006", "000008"]  # VOC test ids are not contiguous
    c = VOC_CLASSES.index
    # Official values per image: 1 present, 0 difficult only, -1 absent (anything not listed).
    official = {
        "000001": {c("dog"): 1, c("person"): 1},
        "000002": {c("train"): 1},
        "000004": {c("car"): 1, c("person"): 0},           # a difficult person only
        "000006": {c("chair"): 0, c("pottedplant"): 1, c("diningtable"): 1},
        "000008": {c("chair"): 1, c("cat"): 0},           # grayscale image
    }
    to_label = {1: 1, -1: 0, 0: -1}
    labels = np.zeros((len(ids), len(VOC_CLASSES)), dtype=np.int8)
    paths = {}
    for row, image_id in enumerate(ids):
        for j in range(len(VOC_CLASSES)):
            labels[row, j] = to_label[official[image_id].get(j, -1)]
        mode = "L" if image_id == "000008" else "RGB"
        paths[image_id] = write_image(voc / "JPEGImages" / f"{image_id}.jpg", mode=mode, seed=row)
        _write_voc_xml(voc / "Annotations" / f"{image_id}.xml", image_id, official[image_id])
    main = voc / "ImageSets" / "Main"
    _write_lines(main / f"{split}.txt", ids)
    for j, name in enumerate(VOC_CLASSES):
        # Official spacing: the value is right-aligned in 2 characters ("000001 -1", "000002  1").
        _write_lines(main / f"{name}_{split}.txt",
                     [f"{i} {official[i].get(j, -1):2d}" for i in ids])
    return Fixture(base, split, ids, labels, paths,
                   notes={"grayscale": "000008", "difficult": [("000004", "person"), ("000006", "chair"),
                                                               ("000008", "cat")],
                          "voc_dir": voc})


def _write_voc_xml(path: Path, image_id: str, objects: dict[int, int]) -> None:
    parts = [f"<annotation>\n\t<folder>VOC2007</folder>\n\t<filename>{image_id}.jpg</filename>\n"
             "\t<size>\n\t\t<width>12</width>\n\t\t<height>12</height>\n\t\t<depth>3</depth>\n\t</size>\n"
             "\t<segmented>0</segmented>\n"]
    for j, value in objects.items():
        parts.append(f"\t<object>\n\t\t<name>{VOC_CLASSES[j]}</name>\n\t\t<pose>Unspecified</pose>\n"
                     f"\t\t<truncated>0</truncated>\n\t\t<difficult>{1 if value == 0 else 0}</difficult>\n"
                     "\t\t<bndbox>\n\t\t\t<xmin>1</xmin>\n\t\t\t<ymin>1</ymin>\n\t\t\t<xmax>10</xmax>\n"
                     "\t\t\t<ymax>10</ymax>\n\t\t</bndbox>\n\t</object>\n")
    parts.append("</annotation>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts))


# --- COCO 2014 ----------------------------------------------------------------------------------

def make_coco2014(base: Path, coco_split: str = "val2014", extra_images: int = 0) -> Fixture:
    """Write ``annotations/instances_<split>.json`` and 4 images: crowd, id-90 category, unannotated, grayscale.

    ``extra_images`` adds that many more (ids 1000, 1001, ...), each with two seeded random categories,
    for tests that need a test set of some size (SPARC's per-class PCA needs more images than prompts).
    """
    base = Path(base)
    image_ids = [42, 73, 74, 133]          # deliberately listed out of order in the json below
    json_order = [133, 42, 74, 73]
    column = {cid: j for j, (cid, _, _) in enumerate(COCO_CATEGORIES)}
    anns = [  # (image id, category id, iscrowd)
        (42, 18, 0), (42, 18, 0), (42, 1, 0),        # two dogs and a person
        (73, 90, 0), (73, 88, 1),                    # toothbrush (id 90 -> column 79), crowd teddy bear
        (133, 5, 0),                                 # airplane; image 133 is grayscale
    ]                                                # image 74 has no annotation at all
    rng = np.random.default_rng(0)
    for k in range(extra_images):
        image_ids.append(1000 + k)
        json_order.append(1000 + k)
        for j in rng.choice(len(COCO_CATEGORIES), size=2, replace=False):
            anns.append((1000 + k, COCO_CATEGORIES[j][0], 0))
    images, paths = [], {}
    for k, iid in enumerate(json_order):
        name = f"COCO_{coco_split}_{iid:012d}.jpg"
        paths[str(iid)] = write_image(base / coco_split / name, mode="L" if iid == 133 else "RGB", seed=k)
        images.append({"license": 3, "file_name": name,
                       "coco_url": f"http://images.cocodataset.org/{coco_split}/{name}",
                       "height": 12, "width": 12, "date_captured": "2013-11-14 16:28:13",
                       "flickr_url": "http://farm1.staticflickr.com/1/1.jpg", "id": iid})
    annotations = []
    for k, (iid, cid, crowd) in enumerate(anns):
        seg = ({"counts": [10, 4, 130], "size": [12, 12]} if crowd
               else [[1.0, 1.0, 10.0, 1.0, 10.0, 10.0, 1.0, 10.0]])
        annotations.append({"segmentation": seg, "area": 81.0, "iscrowd": crowd, "image_id": iid,
                            "bbox": [1.0, 1.0, 9.0, 9.0], "category_id": cid, "id": 1000 + k})
    data = {"info": {"description": "This is stable 1.0 version of the 2014 MS COCO dataset.",
                     "url": "http://mscoco.org", "version": "1.0", "year": 2014,
                     "contributor": "Microsoft COCO group", "date_created": "2015-01-27 09:11:52.357475"},
            "images": images,
            "licenses": [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 3,
                          "name": "Attribution-NonCommercial-ShareAlike License"}],
            "type": "instances",
            "annotations": annotations,
            "categories": [{"supercategory": s, "id": i, "name": n} for i, n, s in COCO_CATEGORIES]}
    ann_file = base / "annotations" / f"instances_{coco_split}.json"
    ann_file.parent.mkdir(parents=True, exist_ok=True)
    ann_file.write_text(json.dumps(data))
    labels = np.zeros((len(image_ids), len(COCO_CATEGORIES)), dtype=np.int8)
    for iid, cid, _ in anns:
        labels[image_ids.index(iid), column[cid]] = 1
    return Fixture(base, "test" if coco_split == "val2014" else "train", [str(i) for i in image_ids], labels,
                   paths, notes={"grayscale": "133", "unannotated": "74", "crowd": ("73", "teddy bear"),
                                 "id90": ("73", "toothbrush"), "annotation_file": ann_file})


# --- NUS-WIDE -----------------------------------------------------------------------------------

def make_nuswide(base: Path, split: str = "test", *, nested: bool = False, prefix: str = "") -> Fixture:
    """Write a 5-image NUS-WIDE (CRLF files, backslash paths); ``nested`` uses the official Groundtruth/ layout.

    ``prefix`` is prepended to each image-list line (e.g. ``C:\\ImageData\\Flickr\\``).
    """
    base = Path(base)
    tag = {"test": "Test", "train": "Train"}[split]
    rels = ["actor/0001_2124494179.jpg", "actor/0002_174174086.jpg", "airport/0015_372016349.jpg",
            "beach/0120_1006938584.jpg", "zebra/0007_2360193113.jpg"]
    k = NUS_CONCEPTS.index
    positives = {
        0: [k("person"), k("sky")],
        1: [],                                       # no concept at all (common in NUS-WIDE)
        2: [k("airport"), k("plane"), k("sky"), k("vehicle")],
        3: [k("beach"), k("sand"), k("water"), k("ocean")],
        4: [k("zebra"), k("animal"), k("grass")],     # grayscale image
    }
    labels = np.zeros((len(rels), len(NUS_CONCEPTS)), dtype=np.int8)
    paths = {}
    for row, rel in enumerate(rels):
        labels[row, positives[row]] = 1
        paths[rel] = write_image(base / "Flickr" / rel, mode="L" if row == 4 else "RGB", seed=row)
    _write_lines(base / "ImageList" / f"{tag}Imagelist.txt",
                 [prefix + rel.replace("/", "\\") for rel in rels], newline="\r\n")
    concepts_file = base / ("ConceptsList/Concepts81.txt" if nested else "Concepts81.txt")
    _write_lines(concepts_file, NUS_CONCEPTS, newline="\r\n")
    label_dir = base / ("Groundtruth/TrainTestLabels" if nested else "TrainTestLabels")
    for j, concept in enumerate(NUS_CONCEPTS):
        # One 0/1 per line; a trailing space (seen in circulating copies) must be tolerated.
        _write_lines(label_dir / f"Labels_{concept}_{tag}.txt",
                     [f"{labels[row, j]} " for row in range(len(rels))], newline="\r\n")
    return Fixture(base, split, rels, labels, paths,
                   notes={"grayscale": rels[4], "unlabeled": rels[1], "label_dir": label_dir,
                          "concepts_file": concepts_file})
