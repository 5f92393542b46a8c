"""EmojiVOC toy world: sprites, determinism, captions, label statistics, cache, errors."""
import hashlib
import json
from importlib import resources

import numpy as np
import pytest
from PIL import Image

from lcmc_core.images import toyworld as tw
from lcmc_core.text.label_sets import get_label_set

LABELS = get_label_set("emoji-voc")
ASSETS = resources.files("lcmc_core.images") / "assets"


@pytest.fixture(scope="module")
def scenes_1000():
    return [tw.sample_scene(0, "test", i) for i in range(1000)]


# --- sprites ----------------------------------------------------------------------------------

def test_sprite_index_lists_the_20_classes_in_official_order_and_no_sprite_is_empty():
    index = json.loads((ASSETS / "emoji_voc_sprites.json").read_text(encoding="utf-8"))
    assert [e["class"] for e in index["sprites"]] == list(LABELS.classnames) == list(tw.CLASSNAMES)
    png = (ASSETS / index["sheet"]).read_bytes()
    assert hashlib.sha256(png).hexdigest() == index["sheet_sha256"]
    assert len(png) < 200 * 1024
    sheet = Image.open(ASSETS / index["sheet"]).convert("RGBA")
    boxes = []
    for e in index["sprites"]:
        x, y, w, h = e["box"]
        assert 0 <= x and 0 <= y and x + w <= sheet.width and y + h <= sheet.height
        assert index["max_side"] - 1 <= max(w, h) <= index["max_side"]
        alpha = np.asarray(sheet.crop((x, y, x + w, y + h)).getchannel("A"))
        assert (alpha > 0).mean() > 0.2, e["class"]
        assert e["codepoints"].startswith("U+")
        boxes.append((x, y, x + w, y + h))
    for i, a in enumerate(boxes):  # sprites do not overlap in the sheet
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_font_license_is_shipped_with_the_sprites():
    text = (ASSETS / "NotoColorEmoji-LICENSE.txt").read_text(encoding="utf-8")
    assert "Noto Color Emoji" in text and "SIL OPEN FONT LICENSE Version 1.1" in text
    assert "derived from Noto Color Emoji" in text


# --- determinism ------------------------------------------------------------------------------

def test_same_seed_gives_identical_scenes_and_pixels():
    for i in range(20):
        a, b = tw.sample_scene(3, "pretrain", i), tw.sample_scene(3, "pretrain", i)
        assert a == b
        assert tw.render_scene(a).tobytes() == tw.render_scene(b).tobytes()


def test_different_seeds_and_splits_give_different_scenes():
    base = [tw.render_scene(tw.sample_scene(0, "test", i)).tobytes() for i in range(10)]
    other_seed = [tw.render_scene(tw.sample_scene(1, "test", i)).tobytes() for i in range(10)]
    other_split = [tw.render_scene(tw.sample_scene(0, "pretrain", i)).tobytes() for i in range(10)]
    assert all(a != b for a, b in zip(base, other_seed))
    assert all(a != b for a, b in zip(base, other_split))
    assert len(set(base)) == len(base)


def test_image_i_does_not_depend_on_the_number_of_images():
    small = tw.render_split("heldout", 5, seed=2, cache=False)
    large = tw.render_split("heldout", 12, seed=2, cache=False)
    np.testing.assert_array_equal(small.images, large.images[:5])
    np.testing.assert_array_equal(small.labels, large.labels[:5])
    assert small.scenes == large.scenes[:5]


def test_render_scene_output_and_other_sizes():
    scene = tw.sample_scene(0, "test", 7)
    im = tw.render_scene(scene)
    assert im.mode == "RGB" and im.size == (64, 64)
    big = tw.render_scene(scene, image_size=128)
    assert big.size == (128, 128)
    # The same scene at another resolution looks the same (geometry is resolution-free).
    small_of_big = np.asarray(big.resize((64, 64), Image.Resampling.BOX), dtype=float)
    assert np.abs(small_of_big - np.asarray(im, dtype=float)).mean() < 12


# --- scenes and labels ------------------------------------------------------------------------

def test_label_statistics_follow_the_scene_priors(scenes_1000):
    labels = np.stack([tw.scene_labels(s) for s in scenes_1000])
    assert labels.dtype == np.int8 and set(np.unique(labels)) <= {0, 1}
    n_objects = np.array([len(s.objects) for s in scenes_1000])
    assert n_objects.min() >= 1 and n_objects.max() <= 4
    assert (n_objects == 4).mean() > 0.05 and (n_objects == 1).mean() > 0.2
    assert (labels.sum(0) > 0).all(), "every class appears in 1000 images"
    assert (labels.sum(1) >= 1).all()
    assert set(s.scene_type for s in scenes_1000) == set(tw.SCENE_TYPES)
    # Labels stay inside the support of the scene type's prior.
    for s, row in zip(scenes_1000, labels):
        support = tw._PRIORS[s.scene_type] > 0
        assert not (row.astype(bool) & ~support).any(), s
    # Co-occurrence like photos: farm animals together, not with living-room furniture.
    c = {name: labels[:, i].astype(bool) for i, name in enumerate(tw.CLASSNAMES)}
    assert (c["cow"] & c["sheep"]).sum() >= 5 * max(1, (c["cow"] & c["sofa"]).sum())
    assert (c["sofa"] & c["tvmonitor"]).sum() >= 5 * max(1, (c["sofa"] & c["train"]).sum())
    assert (c["car"] & c["person"]).sum() > (c["car"] & c["sheep"]).sum()
    # Some images hold several instances of one class (counts).
    assert sum(any(v > 1 for v in s.class_counts.values()) for s in scenes_1000) > 100


def test_objects_are_sized_and_stay_mostly_visible(scenes_1000):
    for s in scenes_1000[:300]:
        for obj in s.objects:
            assert 0.3 <= obj.scale <= 0.8 and -15 <= obj.angle <= 15
            assert 19 <= round(obj.scale * 64) <= 52
        assert min(tw._visible_fractions(s.objects, s.occluders)) >= tw._MIN_VISIBLE
    assert sum(bool(s.occluders) for s in scenes_1000) > 100
    assert sum(any(o.flip for o in s.objects) for s in scenes_1000) > 300


# --- captions ---------------------------------------------------------------------------------

def test_each_caption_names_exactly_its_returned_classes(scenes_1000):
    empty = 0
    for s in scenes_1000[:400]:
        present = {i for i, v in enumerate(tw.scene_labels(s)) if v}
        for epoch in (0, 1):
            text, named = tw.caption_scene(s, seed=5, epoch=epoch)
            assert isinstance(named, frozenset)
            assert LABELS.extract(text) == set(named), text
            assert named <= present, (text, present)
            empty += not named
    assert 0.05 < empty / 800 < 0.5


def test_completeness_one_names_every_class_and_zero_names_none(scenes_1000):
    for s in scenes_1000[:200]:
        present = frozenset(i for i, v in enumerate(tw.scene_labels(s)) if v)
        text, named = tw.caption_scene(s, seed=0, completeness=1.0)
        assert named == present and LABELS.extract(text) == set(present), text
        text, named = tw.caption_scene(s, seed=0, completeness=0.0)
        assert named == frozenset() and LABELS.extract(text) == set(), text


def test_captions_are_deterministic_and_vary_with_epoch(scenes_1000):
    scenes = scenes_1000[:100]
    a = tw.split_captions(scenes, seed=1, epoch=0)
    assert a == tw.split_captions(scenes, seed=1, epoch=0)
    b = tw.split_captions(scenes, seed=1, epoch=1)
    assert sum(x != y for x, y in zip(a[0], b[0])) > 80
    assert len(set(a[0])) > 80
    # Higher completeness names a superset of the classes (same random draws).
    low, high = tw.split_captions(scenes, 1, completeness=0.3)[1], tw.split_captions(scenes, 1, completeness=0.8)[1]
    assert all(x <= y for x, y in zip(low, high))


def test_captions_use_counts_synonyms_and_filler():
    texts = tw.split_captions([tw.sample_scene(0, "pretrain", i) for i in range(600)], seed=0)[0]
    joined = " ".join(texts).lower()
    for word in ("two ", "three ", "sheep", "#", "stock photo", "on the left"):
        assert word in joined, word
    assert any(w in joined for w in ("couch", "settee")) and any(w in joined for w in ("puppy", "doggy"))


def test_scene_and_filler_words_never_name_a_class():
    words = list(tw._PREFIXES) + list(tw._SUFFIXES) + list(tw._MOMENTS) + list(tw._ADJECTIVES)
    words += list(tw._NUMBERS.values()) + ["a couple of", "a group of", "some", "there is", "there are"]
    words += ["on the left", "on the right", "in the middle", "in the foreground", "in the background"]
    for t in tw._SCENES.values():
        words += list(t.places) + list(t.views) + list(t.tags)
    for w in words:
        assert LABELS.extract(w) == set(), w
    for name, forms in tw._CAPTION_WORDS.items():
        for form in forms:
            assert LABELS.extract(form) == {LABELS.index(name)}, form


def test_split_captions_accepts_a_toysplit():
    data = tw.render_split("heldout", 6, cache=False)
    texts, named = tw.split_captions(data, seed=0)
    assert len(texts) == len(named) == 6
    assert (texts, named) == tw.split_captions(data.scenes, seed=0)


# --- splits and cache -------------------------------------------------------------------------

def test_render_split_fields():
    data = tw.render_split("test", 8, seed=1, image_size=32, cache=False)
    assert len(data) == 8
    assert data.images.shape == (8, 32, 32, 3) and data.images.dtype == np.uint8
    assert data.labels.shape == (8, 20) and data.labels.dtype == np.int8
    assert data.scene_types == [s.scene_type for s in data.scenes]
    np.testing.assert_array_equal(data.images[3], np.asarray(tw.render_scene(data.scenes[3], 32)))


def test_cache_round_trip(tmp_path, monkeypatch):
    first = tw.render_split("test", 10, seed=4, cache=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert [f.name for f in files] == [f"emoji-voc-v{tw.TOYWORLD_VERSION}_test_seed4_s64_n10.npz"]

    def no_render(*args, **kwargs):
        raise AssertionError("should have been read from the cache")

    monkeypatch.setattr(tw, "render_scene", no_render)
    again = tw.render_split("test", 10, seed=4, cache=tmp_path)
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert again.scenes == first.scenes and again.scene_types == first.scene_types
    prefix = tw.render_split("test", 6, seed=4, cache=tmp_path)  # served from the n=10 file
    np.testing.assert_array_equal(prefix.images, first.images[:6])
    monkeypatch.undo()

    # A longer request renders only the images after the cached prefix.
    rendered = []
    real_render = tw.render_scene
    monkeypatch.setattr(tw, "render_scene", lambda scene, size: rendered.append(scene.index) or real_render(scene, size))
    longer = tw.render_split("test", 13, seed=4, cache=tmp_path)
    assert rendered == [10, 11, 12]
    np.testing.assert_array_equal(longer.images, tw.render_split("test", 13, seed=4, cache=False).images)
    assert longer.scenes == [tw.sample_scene(4, "test", i) for i in range(13)]
    monkeypatch.undo()
    (tmp_path / f"emoji-voc-v{tw.TOYWORLD_VERSION}_test_seed4_s64_n13.npz").unlink()

    # A damaged or mismatched cache file is ignored and rewritten.
    path = files[0]
    np.savez(path, images=np.zeros((10, 32, 32, 3), np.uint8), labels=first.labels)
    fixed = tw.render_split("test", 10, seed=4, cache=tmp_path)
    np.testing.assert_array_equal(fixed.images, first.images)
    path.write_bytes(b"not an npz")
    np.testing.assert_array_equal(tw.render_split("test", 10, seed=4, cache=tmp_path).images, first.images)
    good = path.read_bytes()
    for damaged in (b"", good[: len(good) // 2]):  # zero bytes, truncated mid-file
        path.write_bytes(damaged)
        np.testing.assert_array_equal(tw.render_split("test", 10, seed=4, cache=tmp_path).images, first.images)
        assert path.read_bytes() == good
    assert not list(tmp_path.glob("*.tmp"))


def test_default_cache_dir_comes_from_the_environment(tmp_path, monkeypatch):
    from lcmc_core.cache import cache_dir
    monkeypatch.setenv("LCMC_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    tw.render_split("heldout", 3, seed=9)
    assert len(list((tmp_path / "c").glob("emoji-voc-*_heldout_seed9_s64_n3.npz"))) == 1


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: tw.sample_scene(0, "train", 0), r"split must be one of \['pretrain', 'heldout', 'test'\]"),
    (lambda: tw.sample_scene(-1, "test", 0), "seed must be a non-negative int"),
    (lambda: tw.sample_scene(0, "test", 1.5), "index must be a non-negative int"),
    (lambda: tw.render_scene(tw.sample_scene(0, "test", 0), image_size=8), r"image_size must be an int in \[16"),
    (lambda: tw.caption_scene(tw.sample_scene(0, "test", 0), 0, completeness=1.5), r"completeness must be a number in \[0, 1\]"),
    (lambda: tw.caption_scene(tw.sample_scene(0, "test", 0), 0, epoch=-1), "epoch must be a non-negative int"),
    (lambda: tw.render_split("test", 0, cache=False), "n must be a positive int"),
    (lambda: tw.render_split("val", 5, cache=False), "split must be one of"),
    (lambda: tw.render_split("test", 5, cache=3), "cache must be a folder path"),
])
def test_bad_parameters_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_wrong_types_raise_type_errors():
    with pytest.raises(TypeError, match="scene must be a Scene"):
        tw.render_scene("scene")
    with pytest.raises(TypeError, match="scene must be a Scene"):
        tw.caption_scene(None, 0)


def test_class_sprites_one_centred_sprite_per_class():
    sprites = tw.class_sprites(40)
    assert len(sprites) == len(tw.CLASSNAMES)
    for s in sprites:
        assert s.shape == (40, 40, 4) and s.dtype == np.uint8
        alpha = s[..., 3] > 0
        assert alpha.any() and not alpha.all()          # a sprite on a transparent square
        rows, cols = np.nonzero(alpha)
        assert abs((rows.min() + rows.max()) / 2 - 19.5) <= 2 and abs((cols.min() + cols.max()) / 2 - 19.5) <= 2
    assert len({s.tobytes() for s in sprites}) == len(sprites)
    with pytest.raises(ValueError, match="size"):
        tw.class_sprites(4)


# --- compound prompts (SPARC) -----------------------------------------------------------------

def test_compound_prompts_are_deterministic_and_prompt_k_depends_only_on_seed_and_k():
    first = tw.compound_prompts(60, seed=3)
    assert first == tw.compound_prompts(60, seed=3) and len(first) == 60
    assert tw.compound_prompts(25, seed=3) == first[:25]
    assert tw.compound_prompts(60, seed=4) != first
    assert tw.compound_prompts(0) == []


def test_every_compound_prompt_names_two_or_three_classes_of_one_scene_type():
    supports = [set(np.flatnonzero(tw._PRIORS[t])) for t in tw.SCENE_TYPES if t != "studio"]
    sizes = set()
    for p in tw.compound_prompts(400, seed=0):
        named = LABELS.extract(p)
        sizes.add(len(named))
        assert 2 <= len(named) <= 3, p
        assert any(named <= s for s in supports), p           # the classes co-occur in some scene type
    assert sizes == {2, 3}
    assert {len(LABELS.extract(p)) for p in tw.compound_prompts(100, seed=0, max_classes=2)} == {2}


def test_compound_prompts_cover_every_class_in_natural_words():
    from lcmc_core.text.compound import FEW_PROMPTS, compound_report
    prompts = tw.compound_prompts(300, seed=0)
    report = compound_report(LABELS, prompts, min_classes=2)
    assert not report.few and min(report.per_class.values()) >= FEW_PROMPTS
    assert not report.naming_none and not report.naming_one
    joined = " ".join(prompts)
    assert "on a farm" in joined and "next to" in joined and "a photo of" in joined and "two " in joined


def test_compound_prompts_never_touch_a_split(monkeypatch):
    before = [tw.sample_scene(0, "test", i) for i in range(5)]
    captions = [tw.caption_scene(s, 0) for s in before]

    def forbidden(*args, **kwargs):
        raise AssertionError("compound_prompts must not sample, render or caption scenes")
    with monkeypatch.context() as m:
        for name in ("sample_scene", "render_scene", "render_split", "caption_scene", "split_captions"):
            m.setattr(tw, name, forbidden)
        assert len(tw.compound_prompts(50, seed=1)) == 50
    assert [tw.sample_scene(0, "test", i) for i in range(5)] == before
    assert [tw.caption_scene(s, 0) for s in before] == captions


def test_compound_prompts_bad_parameters():
    for kwargs, match in [({"n": -1}, "n must be"), ({"n": 2.5}, "n must be"), ({"n": 3, "max_classes": 4}, "max_classes"),
                          ({"n": 3, "seed": -2}, "seed")]:
        with pytest.raises(ValueError, match=match):
            tw.compound_prompts(**kwargs)
