"""Loaders of the real benchmarks (VOC2007, COCO 2014, NUS-WIDE) on tiny official-format fixtures."""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lcmc_core.images import datasets
from lcmc_core.images.datasets.layout import DatasetFormatError, DatasetLayoutError, ImageCheckError, open_rgb
from lcmc_core.text.label_sets import get_label_set

try:
    from fixtures_datasets import (
        COCO_CATEGORIES,
        NUS_CONCEPTS,
        VOC_CLASSES,
        make_coco2014,
        make_nuswide,
        make_voc2007,
        write_image,
    )
except ImportError:  # tests/ imported as a package
    from tests.fixtures_datasets import (
        COCO_CATEGORIES,
        NUS_CONCEPTS,
        VOC_CLASSES,
        make_coco2014,
        make_nuswide,
        make_voc2007,
        write_image,
    )


def _assert_matches(ds, fx):
    assert ds.image_ids == fx.image_ids
    assert ds.labels.dtype == np.int8
    np.testing.assert_array_equal(ds.labels, fx.labels)
    assert ds.image_paths == [str(fx.image_paths[i]) for i in fx.image_ids]
    assert len(ds) == len(fx.image_ids)


def test_registered():
    assert {"voc2007", "coco2014", "nuswide"} <= set(datasets.available())


def test_label_sets_match_official_lists():
    assert list(get_label_set("voc2007").classnames) == VOC_CLASSES
    assert list(get_label_set("coco2014").classnames) == [n for _, n, _ in COCO_CATEGORIES]
    assert list(get_label_set("nuswide").classnames) == NUS_CONCEPTS


# --- VOC2007 ------------------------------------------------------------------------------------

def test_voc_labels_and_difficult(tmp_path):
    fx = make_voc2007(tmp_path)
    ds = datasets.load("voc2007", fx.root)
    _assert_matches(ds, fx)
    assert ds.classnames == VOC_CLASSES and ds.label_set == "voc2007" and ds.split == "test"
    person, chair, cat = (VOC_CLASSES.index(c) for c in ("person", "chair", "cat"))
    assert ds.labels[ds.image_ids.index("000004"), person] == -1      # official 0 = difficult
    assert ds.labels[ds.image_ids.index("000001"), person] == 1
    assert ds.labels[ds.image_ids.index("000002"), person] == 0       # official -1
    assert ds.labels[ds.image_ids.index("000006"), chair] == -1
    assert ds.labels[ds.image_ids.index("000008"), cat] == -1
    assert ds.info["n_difficult"] == 3


@pytest.mark.parametrize("sub", ["", "VOCdevkit", "VOCdevkit/VOC2007"])
def test_voc_root_variants(tmp_path, sub):
    fx = make_voc2007(tmp_path)
    ds = datasets.load("voc2007", tmp_path / sub if sub else tmp_path)
    _assert_matches(ds, fx)


def test_voc_grayscale_image_is_rgb(tmp_path):
    fx = make_voc2007(tmp_path)
    ds = datasets.load("voc2007", fx.root)
    with Image.open(fx.image_paths["000008"]) as raw:
        assert raw.mode == "L"
    image = ds.image(ds.image_ids.index("000008"))
    assert image.mode == "RGB" and image.size == (12, 12)
    image, labels = ds[0]
    assert image.mode == "RGB" and labels.shape == (20,)


def test_voc_missing_pieces_listed_in_one_error(tmp_path):
    fx = make_voc2007(tmp_path)
    voc = fx.notes["voc_dir"]
    shutil.rmtree(voc / "JPEGImages")
    (voc / "ImageSets/Main/test.txt").unlink()
    (voc / "ImageSets/Main/dog_test.txt").unlink()
    (voc / "ImageSets/Main/tvmonitor_test.txt").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        datasets.load("voc2007", fx.root)
    msg = str(err.value)
    for missing in ("JPEGImages", "ImageSets/Main/test.txt", "ImageSets/Main/dog_test.txt",
                    "ImageSets/Main/tvmonitor_test.txt"):
        assert str(voc / missing) in msg
    assert "4 required pieces are missing" in msg
    assert "VOCtest_06-Nov-2007.tar" in msg and "VOCdevkit/VOC2007" in msg
    assert len(err.value.missing) == 4
    assert isinstance(err.value, FileNotFoundError)


def test_voc_empty_root_names_documented_layout(tmp_path):
    with pytest.raises(DatasetLayoutError) as err:
        datasets.load("voc2007", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "VOCdevkit/VOC2007/JPEGImages") in msg
    assert str(tmp_path / "VOCdevkit/VOC2007/ImageSets/Main/test.txt") in msg
    assert str(tmp_path / "VOCdevkit/VOC2007/ImageSets/Main") in msg


def test_voc_trainval_absent_points_to_trainval_archive(tmp_path):
    fx = make_voc2007(tmp_path)
    with pytest.raises(DatasetLayoutError) as err:
        datasets.load("voc2007", fx.root, split="trainval")
    msg = str(err.value)
    assert "VOCtrainval_06-Nov-2007.tar" in msg
    assert str(fx.notes["voc_dir"] / "ImageSets/Main/trainval.txt") in msg
    assert str(fx.notes["voc_dir"] / "ImageSets/Main/aeroplane_trainval.txt") in msg


def test_voc_other_split(tmp_path):
    fx = make_voc2007(tmp_path, split="trainval")
    ds = datasets.load("voc2007", fx.root, split="trainval")
    _assert_matches(ds, fx)
    assert ds.split == "trainval"


def test_voc_class_file_disagreeing_with_split_list(tmp_path):
    fx = make_voc2007(tmp_path)
    dog = fx.notes["voc_dir"] / "ImageSets/Main/dog_test.txt"
    lines = dog.read_text().splitlines()
    dog.write_text("\n".join(lines[:2] + lines[3:] + ["009999 -1"]) + "\n")
    with pytest.raises(DatasetFormatError) as err:
        datasets.load("voc2007", fx.root)
    msg = str(err.value)
    assert str(dog) in msg and "000004" in msg and "009999" in msg and "test.txt" in msg


def test_voc_class_file_order_may_differ(tmp_path):
    fx = make_voc2007(tmp_path)
    cat = fx.notes["voc_dir"] / "ImageSets/Main/cat_test.txt"
    cat.write_text("\n".join(reversed(cat.read_text().splitlines())) + "\n")
    _assert_matches(datasets.load("voc2007", fx.root), fx)


@pytest.mark.parametrize("bad", ["000002 2", "000002", "000002 1 extra"])
def test_voc_malformed_line_named(tmp_path, bad):
    fx = make_voc2007(tmp_path)
    bird = fx.notes["voc_dir"] / "ImageSets/Main/bird_test.txt"
    lines = bird.read_text().splitlines()
    lines[1] = bad
    bird.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match="line 2") as err:
        datasets.load("voc2007", fx.root)
    assert str(bird) in str(err.value)


def test_voc_duplicate_id_named(tmp_path):
    fx = make_voc2007(tmp_path)
    split_file = fx.notes["voc_dir"] / "ImageSets/Main/test.txt"
    split_file.write_text(split_file.read_text() + "000001\n")
    with pytest.raises(DatasetFormatError, match=r"line 6: image id '000001' repeats line 1"):
        datasets.load("voc2007", fx.root)


def test_bad_parameters_named(tmp_path):
    fx = make_voc2007(tmp_path)
    with pytest.raises(ValueError, match="'split'"):
        datasets.load("voc2007", fx.root, split="testing")
    with pytest.raises(ValueError, match="'missing'"):
        datasets.load("voc2007", fx.root, missing="ignore")
    with pytest.raises(ValueError, match="'root'"):
        datasets.load("coco2014")
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        datasets.load("nuswide", tmp_path / "nowhere")


# --- images: missing, unreadable, RGB conversion --------------------------------------------------

def test_missing_images_fail_lists_them(tmp_path):
    fx = make_voc2007(tmp_path)
    fx.image_paths["000002"].unlink()
    fx.image_paths["000006"].unlink()
    with pytest.raises(ImageCheckError) as err:
        datasets.load("voc2007", fx.root)
    msg = str(err.value)
    assert "2 of 5 images" in msg and "2 missing" in msg
    assert str(fx.image_paths["000002"]) in msg and str(fx.image_paths["000006"]) in msg
    assert "missing='skip'" in msg
    assert sorted(err.value.missing) == sorted(str(fx.image_paths[i]) for i in ("000002", "000006"))


def test_missing_images_skip_drops_rows_with_warning(tmp_path):
    fx = make_voc2007(tmp_path)
    fx.image_paths["000002"].unlink()
    with pytest.warns(RuntimeWarning, match=r"1 of 5 images.*dropping those 1 rows; 4 images remain"):
        ds = datasets.load("voc2007", fx.root, missing="skip")
    keep = [i for i in fx.image_ids if i != "000002"]
    assert ds.image_ids == keep
    np.testing.assert_array_equal(ds.labels, fx.labels[[fx.image_ids.index(i) for i in keep]])
    assert ds.info["skipped_images"] == ["000002"] and ds.info["official_size"] == 5
    assert ds.image(1).mode == "RGB"  # row 1 is now 000004


def test_no_warning_when_all_images_present(tmp_path):
    fx = make_voc2007(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = datasets.load("voc2007", fx.root, missing="skip", verify_images=True)
    assert ds.info["skipped_images"] == []


def test_corrupt_image_found_before_encoding_under_both_policies(tmp_path):
    fx = make_voc2007(tmp_path)
    bad = fx.image_paths["000004"]
    bad.write_bytes(b"this is not a jpeg" * 10)
    empty = fx.image_paths["000001"]
    empty.write_bytes(b"")
    for verify in (True, False):  # the header check finds garbage and empty files too
        with pytest.raises(ImageCheckError) as err:
            datasets.load("voc2007", fx.root, verify_images=verify)
        assert "2 unreadable" in str(err.value) and "1 are empty files" in str(err.value)
        assert str(bad) in str(err.value) and "missing_images: skip" in str(err.value)
        assert sorted(err.value.unreadable) == sorted([str(bad), str(empty)]) and err.value.missing == []
        with pytest.warns(RuntimeWarning, match="2 unreadable"):
            ds = datasets.load("voc2007", fx.root, verify_images=verify, missing="skip")
        assert "000004" not in ds.image_ids and "000001" not in ds.image_ids and len(ds) == 3
        assert ds.info["skipped_reasons"] == {"000001": "empty", "000004": "unreadable"}
        assert all(ds.image(i).mode == "RGB" for i in range(len(ds)))  # everything left decodes


def test_image_errors_at_encoding_time_are_lcmc_errors(tmp_path):
    from lcmc_core.errors import LcmcError
    fx = make_voc2007(tmp_path)
    ds = datasets.load("voc2007", fx.root)
    fx.image_paths["000004"].write_bytes(b"broken after loading")
    with pytest.raises(LcmcError, match="cannot read image .*000004.jpg.*verify_images=True"):
        ds.image(ds.image_ids.index("000004"))


def test_decoding_is_remembered_and_redone_for_changed_files(tmp_path, monkeypatch):
    from lcmc_core.images.datasets import layout
    fx = make_voc2007(tmp_path)
    decoded = []
    real = layout._decodes
    monkeypatch.setattr(layout, "_decodes", lambda path: decoded.append(Path(path).name) or real(path))
    datasets.load("voc2007", fx.root)
    assert len(decoded) == 5
    decoded.clear()
    datasets.load("voc2007", fx.root)
    assert decoded == []                                  # same files: nothing decoded again
    path = fx.image_paths["000004"]
    path.write_bytes(path.read_bytes()[:100])             # truncated: size and mtime change
    with pytest.raises(ImageCheckError, match="1 unreadable"):
        datasets.load("voc2007", fx.root)
    assert decoded == ["000004.jpg"]


def test_truncated_image_is_unreadable(tmp_path):
    fx = make_voc2007(tmp_path)
    path = fx.image_paths["000001"]
    write_image(path, size=64)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageCheckError, match="1 unreadable"):
        datasets.load("voc2007", fx.root, verify_images=True)


@pytest.mark.parametrize("mode", ["L", "LA", "CMYK", "P", "RGBA", "I;16", "1"])
def test_open_rgb_converts_every_mode(tmp_path, mode):
    path = tmp_path / "x.png"
    if mode == "CMYK":
        path = write_image(tmp_path / "x.jpg", mode="CMYK")
    else:
        image = Image.new("RGBA", (8, 8), (10, 200, 30, 128))
        if mode == "P":
            image = image.convert("RGB").convert("P")
            image.info["transparency"] = 0
        elif mode == "I;16":
            image = Image.new("I;16", (8, 8))
        else:
            image = image.convert(mode)
        image.save(path)
    out = open_rgb(str(path))
    assert out.mode == "RGB" and out.size == (8 if mode != "CMYK" else 12,) * 2


# --- COCO 2014 ----------------------------------------------------------------------------------

def test_coco_labels_noncontiguous_ids_and_unannotated(tmp_path):
    fx = make_coco2014(tmp_path)
    ds = datasets.load("coco2014", fx.root)
    _assert_matches(ds, fx)
    assert ds.image_ids == ["42", "73", "74", "133"]                  # sorted by image id
    assert ds.classnames == [n for _, n, _ in COCO_CATEGORIES] and len(ds.classnames) == 80
    row = ds.image_ids.index("73")
    assert ds.labels[row, 79] == 1 and ds.classnames[79] == "toothbrush"    # category id 90
    assert ds.labels[row, ds.classnames.index("teddy bear")] == 1           # crowd annotation counts
    assert ds.labels[ds.image_ids.index("74")].tolist() == [0] * 80         # kept, all negative
    assert ds.labels[ds.image_ids.index("42")].sum() == 2                   # two dogs count once
    assert ds.info["n_unannotated"] == 1 and ds.info["category_ids"][-1] == 90
    assert not (ds.labels == -1).any()
    assert ds.image(ds.image_ids.index("133")).mode == "RGB"


def test_coco_val_alias_and_train(tmp_path):
    fx = make_coco2014(tmp_path)
    _assert_matches(datasets.load("coco2014", fx.root, split="val"), fx)
    make_coco2014(tmp_path, coco_split="train2014")
    ds = datasets.load("coco2014", fx.root, split="train")
    assert ds.info["coco_split"] == "train2014" and "train2014" in ds.image_paths[0]


def test_coco_missing_pieces(tmp_path):
    with pytest.raises(DatasetLayoutError) as err:
        datasets.load("coco2014", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "annotations/instances_val2014.json") in msg
    assert str(tmp_path / "val2014") in msg
    assert "val2014.zip" in msg and "annotations_trainval2014.zip" in msg and "cocodataset.org" in msg
    fx = make_coco2014(tmp_path)
    with pytest.raises(DatasetLayoutError) as err:
        datasets.load("coco2014", fx.root, split="train")
    msg = str(err.value)
    assert str(tmp_path / "annotations/instances_train2014.json") in msg
    assert str(tmp_path / "train2014") in msg and "train2014.zip" in msg


def test_coco_category_names_must_match(tmp_path):
    fx = make_coco2014(tmp_path)
    ann = fx.notes["annotation_file"]
    ann.write_text(ann.read_text().replace('"name": "tv"', '"name": "tvmonitor"'))
    with pytest.raises(DatasetFormatError, match=r"position 62: found 'tvmonitor', expected 'tv'"):
        datasets.load("coco2014", fx.root)


def test_coco_malformed_json_named(tmp_path):
    fx = make_coco2014(tmp_path)
    ann = fx.notes["annotation_file"]
    text = ann.read_text()
    ann.write_text(text[:len(text) // 2])
    with pytest.raises(DatasetFormatError, match=r"instances_val2014.json, line 1 column"):
        datasets.load("coco2014", fx.root)
    ann.write_text(text.replace('"category_id": 90', '"category_id": 91'))
    with pytest.raises(DatasetFormatError, match=r"annotations\[3\].category_id = 91"):
        datasets.load("coco2014", fx.root)
    ann.write_text(text.replace('"file_name"', '"filename"', 1))
    with pytest.raises(DatasetFormatError, match=r"images\[0\] has no field 'file_name'"):
        datasets.load("coco2014", fx.root)


def test_coco_missing_image_skip(tmp_path):
    fx = make_coco2014(tmp_path)
    fx.image_paths["74"].unlink()
    with pytest.raises(ImageCheckError, match="COCO_val2014_000000000074.jpg"):
        datasets.load("coco2014", fx.root)
    with pytest.warns(RuntimeWarning, match="1 missing"):
        ds = datasets.load("coco2014", fx.root, missing="skip")
    assert ds.image_ids == ["42", "73", "133"]


# --- NUS-WIDE -----------------------------------------------------------------------------------

@pytest.mark.parametrize("nested", [False, True])
def test_nus_labels_backslash_paths(tmp_path, nested):
    fx = make_nuswide(tmp_path, nested=nested)
    ds = datasets.load("nuswide", fx.root)
    _assert_matches(ds, fx)
    assert ds.image_ids[0] == "actor/0001_2124494179.jpg"
    assert ds.image_paths[0] == str(tmp_path / "Flickr" / "actor" / "0001_2124494179.jpg")
    assert ds.classnames == NUS_CONCEPTS and len(ds.classnames) == 81
    assert ds.info["n_unlabeled"] == 1 and ds.labels[1].sum() == 0
    assert ds.info["concepts_file"] == str(fx.notes["concepts_file"])
    assert ds.image(4).mode == "RGB"


def test_nus_windows_absolute_prefix_and_train(tmp_path):
    fx = make_nuswide(tmp_path, split="train", prefix="C:\\ImageData\\Flickr\\")
    ds = datasets.load("nuswide", fx.root, split="train")
    _assert_matches(ds, fx)


def test_nus_missing_pieces(tmp_path):
    with pytest.raises(DatasetLayoutError) as err:
        datasets.load("nuswide", tmp_path)
    msg = str(err.value)
    for piece in ("ImageList/TestImagelist.txt", "TrainTestLabels", "Flickr"):
        assert str(tmp_path / piece) in msg
    assert "NOT redistributed" in msg and "Media Search" in msg


def test_nus_missing_label_files_each_named(tmp_path):
    fx = make_nuswide(tmp_path)
    shutil.rmtree(tmp_path / "Flickr")
    for concept in ("airport", "zebra"):
        (fx.notes["label_dir"] / f"Labels_{concept}_Test.txt").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        datasets.load("nuswide", fx.root)
    msg = str(err.value)
    assert "3 required pieces are missing" in msg
    assert str(fx.notes["label_dir"] / "Labels_airport_Test.txt") in msg
    assert str(fx.notes["label_dir"] / "Labels_zebra_Test.txt") in msg
    assert str(tmp_path / "Flickr") in msg


def test_nus_concepts_order_checked(tmp_path):
    fx = make_nuswide(tmp_path)
    concepts = list(NUS_CONCEPTS)
    concepts[0], concepts[1] = concepts[1], concepts[0]
    fx.notes["concepts_file"].write_text("\n".join(concepts) + "\n")
    with pytest.raises(DatasetFormatError, match=r"Concepts81.txt.*position 0: found 'animal', expected 'airport'"):
        datasets.load("nuswide", fx.root)
    fx.notes["concepts_file"].unlink()                  # optional: labels are read by concept name
    _assert_matches(datasets.load("nuswide", fx.root), fx)


def test_nus_label_file_errors(tmp_path):
    fx = make_nuswide(tmp_path)
    sky = fx.notes["label_dir"] / "Labels_sky_Test.txt"
    sky.write_text("1\n0\n1\n0\n")
    with pytest.raises(DatasetFormatError, match=r"Labels_sky_Test.txt: 4 labels for the 5 images"):
        datasets.load("nuswide", fx.root)
    sky.write_text("1\n0\nyes\n0\n0\n")
    with pytest.raises(DatasetFormatError, match=r"Labels_sky_Test.txt, line 3: expected 0 or 1, got 'yes'"):
        datasets.load("nuswide", fx.root)
    sky.write_text("1\n0 1\n1\n0\n0\n")
    with pytest.raises(DatasetFormatError, match=r"line 2: expected 0 or 1, got '0 1'"):
        datasets.load("nuswide", fx.root)


def test_nus_bad_image_list_line(tmp_path):
    fx = make_nuswide(tmp_path)
    listing = tmp_path / "ImageList/TestImagelist.txt"
    listing.write_text(listing.read_text() + "..\\..\\etc\\passwd\n")
    with pytest.raises(DatasetFormatError, match=r"TestImagelist.txt, line 6"):
        datasets.load("nuswide", fx.root)


def test_nus_missing_images_both_policies(tmp_path):
    fx = make_nuswide(tmp_path)
    shutil.rmtree(tmp_path / "Flickr" / "actor")
    with pytest.raises(ImageCheckError, match=r"2 of 5 images cannot be used; 2 missing"):
        datasets.load("nuswide", fx.root)
    with pytest.warns(RuntimeWarning, match="dropping those 2 rows"):
        ds = datasets.load("nuswide", fx.root, missing="skip")
    assert ds.image_ids == fx.image_ids[2:]
    np.testing.assert_array_equal(ds.labels, fx.labels[2:])


def test_skip_refuses_to_leave_no_image(tmp_path):
    fx = make_nuswide(tmp_path)
    shutil.rmtree(tmp_path / "Flickr")
    write_image(tmp_path / "Flickr" / "other" / "x.jpg")   # a folder holding none of the listed images
    with pytest.raises(ImageCheckError, match=r"None of the listed images was found.*would leave no image"):
        datasets.load("nuswide", fx.root, missing="skip")


def test_coco_file_name_may_not_leave_the_image_folder(tmp_path):
    fx = make_coco2014(tmp_path)
    ann = fx.notes["annotation_file"]
    data = json.loads(ann.read_text())
    for bad in ("../annotations/instances_val2014.json", "/etc/passwd", "C:\\x.jpg", "", "sub/../../x.jpg"):
        data["images"][1]["file_name"] = bad
        ann.write_text(json.dumps(data))
        with pytest.raises(DatasetFormatError, match=r"instances_val2014.json: images\[1\].file_name: .* is not a file "
                                                      r"name inside .*val2014"):
            datasets.load("coco2014", fx.root)


def test_coco_duplicate_file_name_is_an_error(tmp_path):
    fx = make_coco2014(tmp_path)
    ann = fx.notes["annotation_file"]
    data = json.loads(ann.read_text())
    data["images"][1]["file_name"] = data["images"][0]["file_name"]
    ann.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match=r"lists image file .*COCO_val2014_000000000133.jpg' twice"):
        datasets.load("coco2014", fx.root)


def test_voc_image_id_may_not_leave_jpegimages(tmp_path):
    fx = make_voc2007(tmp_path)
    main = fx.root / "VOCdevkit/VOC2007/ImageSets/Main"
    for path in [main / "test.txt", *main.glob("*_test.txt")]:
        path.write_text(path.read_text().replace("000002", "../../x"))
    with pytest.raises(DatasetFormatError, match=r"test.txt, image id '../../x': .* is not a file name inside"):
        datasets.load("voc2007", fx.root)


@pytest.mark.parametrize("where", ["label", "list"])
def test_nus_blank_line_inside_a_line_aligned_file_is_an_error(tmp_path, where):
    fx = make_nuswide(tmp_path)
    path = (fx.notes["label_dir"] / "Labels_sky_Test.txt" if where == "label"
            else tmp_path / "ImageList/TestImagelist.txt")
    lines = path.read_text().splitlines()
    # A blank line in place of line 2 plus one more value at the end keeps the count right and
    # would move every later label onto the wrong image.
    path.write_text("\n".join([lines[0], ""] + lines[2:] + [lines[1]]) + "\n")
    with pytest.raises(DatasetFormatError, match=rf"{path.name}, line 2: blank line"):
        datasets.load("nuswide", fx.root)


def test_nus_trailing_blank_lines_are_fine(tmp_path):
    fx = make_nuswide(tmp_path)
    for path in [fx.notes["label_dir"] / "Labels_sky_Test.txt", tmp_path / "ImageList/TestImagelist.txt"]:
        path.write_text(path.read_text() + "\r\n\r\n")
    _assert_matches(datasets.load("nuswide", fx.root), fx)


def test_nus_duplicate_image_line_is_an_error(tmp_path):
    fx = make_nuswide(tmp_path)
    listing = tmp_path / "ImageList/TestImagelist.txt"
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join(lines[:-1] + [lines[0]]) + "\n")
    with pytest.raises(DatasetFormatError, match=r"TestImagelist.txt, line 5: image 'actor/0001_2124494179.jpg' "
                                                  r"repeats line 1"):
        datasets.load("nuswide", fx.root)


# --- a demanding user's files ------------------------------------------------------------------

def _gray16_png(path: Path, values: np.ndarray) -> Path:
    Image.fromarray(values.astype(np.uint16)).save(path)   # PIL writes a 16-bit grayscale PNG (mode I;16)
    return path


def test_a_16_bit_png_keeps_its_values_scaled_not_all_white(tmp_path):
    values = np.array([[0, 257, 32896, 65535]] * 4)       # 8-bit 0, 1, 128, 255 times 257
    path = _gray16_png(tmp_path / "g16.png", values)
    with Image.open(path) as im:
        assert im.mode == "I;16" and np.asarray(im.convert("RGB")).min() == 0
        assert (np.asarray(im.convert("RGB")) == 255).mean() == 0.75   # PIL's own conversion saturates
    rgb = np.asarray(open_rgb(str(path)))
    assert rgb.shape == (4, 4, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 1, 128, 255])
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


@pytest.mark.parametrize("mode, values, expected", [
    ("I", [[0, 100, 255, 10]], [0, 100, 255, 10]),                    # 8-bit range stays
    ("I", [[0, 257, 32896, 65535]], [0, 1, 128, 255]),                # 16-bit range scaled
    ("F", [[0.0, 0.5, 1.0, 0.25]], [0, 128, 255, 64]),                # 0..1 floats scaled
    ("F", [[0.0, 100.0, 300.0, -5.0]], [0, 100, 255, 0]),             # others clipped
])
def test_32_bit_and_float_images_are_scaled(tmp_path, mode, values, expected):
    from lcmc_core.images.datasets.layout import to_rgb
    dtype = np.int32 if mode == "I" else np.float32
    im = Image.fromarray(np.array(values, dtype=dtype), mode=mode)
    np.testing.assert_array_equal(np.asarray(to_rgb(im))[0, :, 0], expected)


def test_a_dataset_with_a_16_bit_image_loads_it_correctly(tmp_path):
    fx = make_voc2007(tmp_path)
    path = fx.image_paths["000002"]
    values = np.full((12, 12), 32896)                      # mid grey
    _gray16_png(tmp_path / "g.png", values)
    path.write_bytes((tmp_path / "g.png").read_bytes())    # a PNG under a .jpg name, as in real copies
    ds = datasets.load("voc2007", fx.root)
    pixels = np.asarray(ds.image(1))
    assert pixels.shape == (12, 12, 3) and (pixels == 128).all()


def test_a_listed_file_whose_name_is_not_utf8_is_found(tmp_path):
    fx = make_nuswide(tmp_path)
    name = b"0003_caf\xe9.jpg"                              # latin-1 bytes, as written by an old tool
    folder = tmp_path / "Flickr" / "actor"
    (folder / "0002_174174086.jpg").rename(os.fsdecode(os.fsencode(folder) + b"/" + name))
    list_file = tmp_path / "ImageList" / "TestImagelist.txt"
    list_file.write_bytes(list_file.read_bytes().replace(b"0002_174174086.jpg", name))
    ds = datasets.load("nuswide", fx.root)
    assert len(ds) == 5 and not ds.info["skipped_images"]
    assert os.fsencode(ds.image_paths[1]).endswith(name) and ds.image(1).mode == "RGB"
    from lcmc_core.images.features import feature_cache_key
    from lcmc_core.images.models import LoadedCLIP
    fake = LoadedCLIP(model=None, preprocess="p", tokenizer=None, name="m", pretrained=None, device="cpu")
    assert len(feature_cache_key(fake, ds, False, "no-pos")[0]) == 20   # the odd name hashes by its bytes


def test_coco_annotations_in_latin1_or_absurdly_deep_are_one_line_naming_the_file(tmp_path):
    fx = make_coco2014(tmp_path)
    ann = fx.notes["annotation_file"]
    text = ann.read_text()
    ann.write_bytes(text.replace("Microsoft COCO group", "Microsoft COCO gr\u00f6up").encode("latin-1"))
    with pytest.raises(DatasetFormatError, match=r"instances_val2014.json: not UTF-8 \(byte \d+ is b'\\xf6'\)") as e:
        datasets.load("coco2014", fx.root)
    assert "\n" not in str(e.value)
    ann.write_text('{"images": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(DatasetFormatError, match=r"instances_val2014.json: JSON nested too deeply") as e:
        datasets.load("coco2014", fx.root)
    assert "\n" not in str(e.value)
    ann.write_text('{"images": [{"id": ' + "9" * 5000 + "}]}")
    with pytest.raises(DatasetFormatError, match=r"instances_val2014.json: unreadable JSON"):
        datasets.load("coco2014", fx.root)


def test_an_empty_image_folder_is_refused_by_the_layout_check_naming_it(tmp_path):
    fx = make_coco2014(tmp_path)
    shutil.rmtree(tmp_path / "val2014")
    (tmp_path / "val2014").mkdir()
    (tmp_path / "val2014" / ".DS_Store").write_bytes(b"x")  # hidden files do not count
    with pytest.raises(DatasetLayoutError, match=r"1 required piece is missing: image folder val2014: the folder "
                                                 r".*val2014 is empty. How to fix: .*val2014.zip") as e:
        datasets.load("coco2014", fx.root, missing="skip")
    assert "\n" not in str(e.value)
    for loader, folder, make in (("voc2007", "VOCdevkit/VOC2007/JPEGImages", make_voc2007),
                                 ("nuswide", "Flickr", make_nuswide)):
        base = tmp_path / loader
        fx = make(base)
        shutil.rmtree(base / folder)
        (base / folder).mkdir()
        with pytest.raises(DatasetLayoutError, match=rf"{folder.split('/')[-1]}: the folder .* is empty"):
            datasets.load(loader, fx.root)


def test_an_annotation_file_listing_no_image_is_refused_naming_it(tmp_path):
    fx = make_coco2014(tmp_path)
    ann = fx.notes["annotation_file"]
    data = json.loads(ann.read_text())
    data["images"], data["annotations"] = [], []
    ann.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match=r"coco2014 \(split 'test'\): .*instances_val2014.json lists no "
                                                 r"images"):
        datasets.load("coco2014", fx.root)
    fx = make_voc2007(tmp_path / "voc")
    (fx.notes["voc_dir"] / "ImageSets/Main/test.txt").write_text("")
    for name in VOC_CLASSES:
        (fx.notes["voc_dir"] / f"ImageSets/Main/{name}_test.txt").write_text("")
    with pytest.raises(DatasetFormatError, match=r"test.txt: the file lists no image"):
        datasets.load("voc2007", fx.root)


# --- structure --------------------------------------------------------------------------------

def test_the_registry_is_a_module_of_its_own_and_loaders_import_it():
    import ast
    import inspect

    from lcmc_core.images.datasets import coco2014, emoji_voc, layout, nuswide, registry, voc2007
    assert {"voc2007", "coco2014", "nuswide", "emoji-voc"} <= set(registry.loaders())
    for module in (coco2014, emoji_voc, nuswide, voc2007):
        imports = [(n.module, n.level) for n in ast.walk(ast.parse(inspect.getsource(module)))
                   if isinstance(n, ast.ImportFrom)]
        assert ("registry", 1) in imports and (None, 1) not in imports, module.__name__
    assert not hasattr(layout, "check_images") and "_getframe" not in inspect.getsource(layout)
