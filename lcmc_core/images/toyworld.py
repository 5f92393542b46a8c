"""EmojiVOC: a small, offline, fully deterministic stand-in for PASCAL VOC image-text data.

The world
---------
An image is a small scene (default 64 x 64 px) of one to four objects drawn from the 20 PASCAL
VOC classes. Each object is a sprite of a Noto Color Emoji (one emoji per class, see
``lcmc_core/images/assets/``), pasted with a random scale (longer side about 32-75 % of the image), position,
horizontal flip and small rotation, onto a background (flat colour, vertical gradient or
two-tone "horizon", optionally with a low-frequency noise texture and grain) whose colours
depend on the scene type. The same class may appear several times (counts). Objects can overlap,
be cut by the image border, or be partly hidden by an occluding shape (post, band, blob); every
object keeps more than half of its opaque area visible, so every label can be seen.

Scene types (street, living room, kitchen, farm, sky, sea, railway, park, studio) each have a
prior over classes, so labels co-occur as in photographs (a farm holds cows, sheep, horses,
dogs, people and birds; a living room sofas, televisions, plants, cats ...). The studio type
(isolated objects on a plain background, like clip-art) draws classes uniformly.

Captions imitate web alt-text rather than ground truth: each names a random subset of the
objects (each present class with probability ``completeness``), using synonyms and plurals
from :func:`lcmc_core.text.label_sets.get_label_set` ``("emoji-voc")``, with counts, positions, scene
words and filler (``"stock photo:"``, hashtags); some name no object at all. The classes a
caption names are returned with it and are exactly what ``LabelSet.extract`` finds in it.

Determinism
-----------
Image ``i`` of a split is a function of ``(seed, split, i)`` only (per-image seeding with
``numpy.random.default_rng([seed, split_code, i])``), so it does not depend on how many images
are made. Captions are a function of the scene, a caption seed and an ``epoch`` number, so
pretraining can draw a fresh caption per epoch. Rendering reads only the committed sprite
sheet (never a font), so pixels are identical wherever the same Pillow version runs.

Splits: ``pretrain`` (image-caption pairs for training a tiny CLIP), ``heldout`` (pairs for
retrieval evaluation) and ``test`` (labelled images, never used in pretraining); they use
distinct split codes in the seeding, so they never share a scene.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..cache import atomic_writer
from ..cache import cache_dir as default_cache_folder
from ..text.label_sets import get_label_set
from ..text.labels import join_names, pluralize

__all__ = [
    "TOYWORLD_VERSION", "CLASSNAMES", "SPLITS", "SCENE_TYPES",
    "SceneObject", "Background", "Occluder", "Scene", "ToySplit",
    "sample_scene", "render_scene", "caption_scene", "scene_labels", "render_split",
    "split_captions", "class_sprites", "compound_prompts",
]

TOYWORLD_VERSION = "1"
"""Bump whenever pixels or captions change; part of every cache key."""

_LABELS = get_label_set("emoji-voc")
CLASSNAMES: tuple[str, ...] = _LABELS.classnames
_C = {name: i for i, name in enumerate(CLASSNAMES)}

SPLITS: dict[str, int] = {"pretrain": 1, "heldout": 2, "test": 3}
"""Split name -> split code used in the per-image seed."""

_CAPTION_STREAM = 7  # distinguishes the caption random stream from the scene stream
_MIN_VISIBLE = 0.65  # share of each object's opacity (sprite alpha) that must stay visible
_GRID = 32           # resolution of the visibility check (in the unit square)
_ALPHA_RES = 16      # resolution of the sprite opacity maps used by that check
_MIN_IMAGE_SIZE, _MAX_IMAGE_SIZE = 16, 1024

# --------------------------------------------------------------------------------------------
# Scene types: class priors, palettes, occluders and words
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SceneType:
    weights: dict[str, float]          # class prior (unnormalised)
    top: tuple[tuple[int, int, int], ...]     # candidate colours above the horizon
    bottom: tuple[tuple[int, int, int], ...]  # candidate colours below the horizon
    horizon: tuple[float, float]       # range of the horizon / floor line (fraction of height)
    kinds: tuple[float, float, float]  # probabilities of flat, gradient, horizon backgrounds
    occluders: tuple[tuple[str, tuple[int, int, int]], ...]  # (shape, colour) options
    places: tuple[str, ...]            # "on a farm": follows an object phrase
    views: tuple[str, ...]             # "a rural landscape": a caption naming no object
    tags: tuple[str, ...]              # hashtags


_SCENES: dict[str, _SceneType] = {
    "street": _SceneType(
        {"car": 5, "bus": 3, "motorbike": 3, "bicycle": 3, "person": 5, "dog": 1, "bird": 0.5},
        ((170, 190, 210), (150, 150, 160), (190, 170, 150)), ((90, 90, 95), (120, 115, 110)),
        (0.35, 0.6), (0.15, 0.2, 0.65), (("post", (70, 70, 75)), ("band", (150, 140, 130)), ("blob", (60, 120, 60))),
        ("on a busy street", "in the city", "downtown", "on the road", "at a crossroads", "in traffic",
         "on a city street"),
        ("a busy street", "city traffic", "an empty road", "a rainy day downtown", "urban scenery"),
        ("#citylife", "#streetphotography", "#urban")),
    "living_room": _SceneType(
        {"sofa": 5, "tvmonitor": 5, "chair": 2, "pottedplant": 3, "cat": 3, "dog": 2, "person": 2,
         "bottle": 1},
        ((230, 215, 190), (200, 210, 220), (220, 195, 195)), ((150, 110, 80), (160, 150, 140)),
        (0.5, 0.75), (0.2, 0.3, 0.5), (("band", (120, 85, 60)), ("blob", (200, 60, 60)), ("post", (230, 230, 230))),
        ("in the living room", "at home", "in a cozy lounge", "indoors", "by the fireplace"),
        ("a cozy living room", "modern interior design", "home interior", "a lounge with big windows"),
        ("#interior", "#homedecor", "#cozy")),
    "kitchen": _SceneType(
        {"diningtable": 6, "chair": 5, "bottle": 4, "person": 2, "pottedplant": 1.5, "cat": 1,
         "tvmonitor": 0.5},
        ((240, 235, 220), (210, 225, 215), (235, 220, 200)), ((190, 180, 170), (120, 90, 70)),
        (0.45, 0.7), (0.2, 0.3, 0.5), (("band", (200, 200, 195)), ("band", (130, 95, 70)), ("blob", (250, 250, 240))),
        ("in the kitchen", "in a dining room", "at dinner", "at lunch", "in a restaurant"),
        ("a family dinner", "kitchen interior", "dining room ideas", "a restaurant interior"),
        ("#foodie", "#dinner", "#kitchen")),
    "farm": _SceneType(
        {"cow": 5, "sheep": 5, "horse": 4, "dog": 2, "person": 2, "bird": 2},
        ((160, 200, 235), (200, 215, 230)), ((110, 160, 70), (150, 170, 80), (170, 150, 90)),
        (0.25, 0.45), (0.1, 0.2, 0.7), (("post", (120, 85, 55)), ("band", (70, 130, 50)), ("blob", (90, 140, 60))),
        ("on a farm", "in a green pasture", "in the countryside", "in a meadow", "on the farm"),
        ("a rural landscape", "green pasture", "farmland in spring", "a countryside view"),
        ("#farmlife", "#countryside", "#rural")),
    "sky": _SceneType(
        {"aeroplane": 6, "bird": 4},
        ((90, 150, 220), (120, 170, 230), (230, 160, 120)), ((190, 220, 245), (240, 240, 250)),
        (0.9, 1.0), (0.3, 0.7, 0.0), (("blob", (250, 250, 252)), ("blob", (225, 230, 240))),
        ("in the sky", "in a clear blue sky", "above the clouds", "high in the sky", "at sunset"),
        ("blue sky with clouds", "a clear summer sky", "sky background", "clouds at sunset"),
        ("#sky", "#clouds", "#aviation")),
    "sea": _SceneType(
        {"boat": 6, "bird": 3, "person": 2, "aeroplane": 0.5},
        ((170, 205, 235), (200, 220, 240), (240, 190, 150)), ((40, 100, 160), (60, 130, 170)),
        (0.3, 0.5), (0.1, 0.2, 0.7), (("band", (70, 140, 190)), ("post", (110, 80, 60)), ("blob", (230, 215, 170))),
        ("at sea", "on the water", "in the harbour", "on the lake", "by the coast"),
        ("a calm sea", "harbour view", "lake at sunset", "the coast in summer"),
        ("#sea", "#sailing", "#ocean")),
    "railway": _SceneType(
        {"train": 6, "person": 3, "car": 1, "bicycle": 1, "bird": 0.5, "dog": 0.5},
        ((180, 200, 215), (200, 200, 200)), ((130, 115, 100), (110, 105, 100)),
        (0.4, 0.6), (0.15, 0.2, 0.65), (("post", (90, 90, 90)), ("band", (150, 130, 110)), ("blob", (100, 130, 70))),
        ("at the station", "on the tracks", "on the railway", "at the platform", "by the railroad"),
        ("railway tracks", "an old station", "the railroad at dawn", "a country railway"),
        ("#railway", "#railroad", "#travel")),
    "park": _SceneType(
        {"person": 5, "dog": 4, "bicycle": 3, "bird": 2, "cat": 1, "horse": 1, "bottle": 1,
         "chair": 0.5},
        ((170, 210, 235), (120, 170, 110), (200, 225, 240)), ((100, 170, 80), (130, 180, 90)),
        (0.3, 0.5), (0.1, 0.2, 0.7), (("blob", (60, 130, 60)), ("post", (110, 80, 60)), ("band", (80, 150, 70))),
        ("in the park", "on the grass", "on a sunny afternoon", "outdoors", "in the garden"),
        ("a sunny park", "city park in autumn", "a green lawn", "a garden in bloom"),
        ("#park", "#weekend", "#outdoors")),
    "studio": _SceneType(
        {name: 1.0 for name in CLASSNAMES},
        ((245, 245, 245), (230, 232, 235), (250, 245, 235)), ((225, 225, 228), (250, 250, 250)),
        (0.6, 0.9), (0.6, 0.4, 0.0), (("band", (200, 200, 205)),),
        ("on a white background", "isolated on white", "in a studio shot", "as clipart"),
        ("clipart collection", "an icon set", "white background", "vector illustration"),
        ("#clipart", "#icon", "#vector")),
}
SCENE_TYPES: tuple[str, ...] = tuple(_SCENES)
_STUDIO_P = 0.08  # share of studio scenes; the other types share the rest equally
_SCENE_P = np.array([_STUDIO_P if name == "studio" else (1 - _STUDIO_P) / (len(SCENE_TYPES) - 1)
                     for name in SCENE_TYPES])
_N_OBJECTS_P = np.array([0.3, 0.3, 0.25, 0.15])  # 1, 2, 3, 4 objects
# Probability that a further object repeats a class already in the scene (gives counts).
_REPEAT_P = {"sheep": 0.6, "cow": 0.5, "bird": 0.5, "person": 0.45, "horse": 0.35, "car": 0.35,
             "chair": 0.45, "boat": 0.3, "bottle": 0.4, "bicycle": 0.3, "dog": 0.25}
# Narrow sprites drawn a little larger so that they are not tiny.
_SCALE_BOOST = {"person": 1.15, "chair": 1.1, "bottle": 1.1}
# Probability that an object of the class floats in the upper part of the image (flies).
_FLY_P = {"aeroplane": 1.0, "bird": 0.6}


def _class_prior(weights: dict[str, float]) -> np.ndarray:
    unknown = set(weights) - set(CLASSNAMES)
    if unknown:
        raise ValueError(f"scene prior names unknown classes {sorted(unknown)}")
    p = np.array([weights.get(name, 0.0) for name in CLASSNAMES], dtype=float)
    return p / p.sum()


_PRIORS = {name: _class_prior(t.weights) for name, t in _SCENES.items()}
_PRIOR_CDFS = {name: np.cumsum(p) for name, p in _PRIORS.items()}
_SCENE_CDF = np.cumsum(_SCENE_P)
_N_OBJECTS_CDF = np.cumsum(_N_OBJECTS_P)

# --------------------------------------------------------------------------------------------
# Scene description
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneObject:
    """One object: class index, centre (fractions of the image), longer side, flip, rotation."""

    class_index: int
    cx: float
    cy: float
    scale: float      # longer side of the sprite as a fraction of the image side
    flip: bool        # mirrored horizontally
    angle: int        # rotation in degrees, counter-clockwise

    @property
    def classname(self) -> str:
        """Official VOC name of the object's class."""
        return CLASSNAMES[self.class_index]

    def box(self) -> tuple[float, float, float, float]:
        """Unrotated bounding box (x0, y0, x1, y1) in fractions of the image side."""
        w, h = _sprite_extent(self.class_index, self.scale)
        return self.cx - w / 2, self.cy - h / 2, self.cx + w / 2, self.cy + h / 2


@dataclass(frozen=True)
class Background:
    """Background recipe: kind, colours, horizon line, texture strength and texture seed."""

    kind: str                     # "flat", "gradient" or "horizon"
    top: tuple[int, int, int]
    bottom: tuple[int, int, int]
    horizon: float                # fraction of the height where top meets bottom
    texture: float                # amplitude of the low-frequency noise texture (grey levels)
    grain: float                  # amplitude of per-pixel grain (grey levels)
    texture_seed: int


@dataclass(frozen=True)
class Occluder:
    """A foreground shape drawn over the objects: ``post``, ``band`` or ``blob`` (ellipse)."""

    shape: str
    box: tuple[float, float, float, float]  # (x0, y0, x1, y1) in fractions of the image side
    color: tuple[int, int, int]


@dataclass(frozen=True)
class Scene:
    """A sampled scene: identity (seed, split, index), scene type, objects in drawing order."""

    seed: int
    split: str
    index: int
    scene_type: str
    objects: tuple[SceneObject, ...]
    background: Background
    occluders: tuple[Occluder, ...]

    @property
    def class_counts(self) -> dict[int, int]:
        """Number of instances per present class index."""
        counts: dict[int, int] = {}
        for obj in self.objects:
            counts[obj.class_index] = counts.get(obj.class_index, 0) + 1
        return counts


@dataclass
class ToySplit:
    """Rendered images of one split with their labels, scene types and scenes."""

    split: str
    seed: int
    image_size: int
    images: np.ndarray        # uint8, N x S x S x 3
    labels: np.ndarray        # int8, N x 20, 1 present / 0 absent
    scene_types: list[str]
    scenes: list[Scene]

    def __len__(self) -> int:
        return len(self.labels)


# --------------------------------------------------------------------------------------------
# Sprites
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _sprites() -> tuple[tuple[Image.Image, ...], tuple[tuple[float, float], ...],
                        tuple[np.ndarray, ...], tuple[float, ...]]:
    """Sprites (premultiplied RGBa) from the committed sheet: sizes, opacity maps, mean opacities."""
    assets = resources.files("lcmc_core.images") / "assets"
    index = json.loads((assets / "emoji_voc_sprites.json").read_text(encoding="utf-8"))
    png = (assets / index["sheet"]).read_bytes()
    if hashlib.sha256(png).hexdigest() != index["sheet_sha256"]:
        raise RuntimeError("lcmc_core/images/assets/emoji_voc_sprites.png does not match the SHA-256 in its "
                           "JSON index; the file is corrupt (Git LFS pointer? line-ending conversion?). "
                           "Restore it from the repository or rerun scripts/render_sprites.py.")
    names = tuple(e["class"] for e in index["sprites"])
    if names != CLASSNAMES:
        raise RuntimeError(f"sprite index lists {names}, expected the emoji-voc classes {CLASSNAMES}")
    with Image.open(io.BytesIO(png)) as im:
        sheet = im.convert("RGBA")
    sprites = tuple(sheet.crop((x, y, x + w, y + h)).convert("RGBa")
                    for x, y, w, h in (e["box"] for e in index["sprites"]))
    sizes = tuple((float(s.width), float(s.height)) for s in sprites)
    # Coarse opacity maps (16 x 16, 0..1) used to check that objects stay visible.
    alphas = tuple(np.asarray(s.getchannel("a").resize((_ALPHA_RES, _ALPHA_RES), Image.Resampling.BOX),
                              dtype=np.float32) / 255.0 for s in sprites)
    return sprites, sizes, alphas, tuple(float(a.mean()) for a in alphas)


def class_sprites(size: int = 48) -> list[np.ndarray]:
    """Each class's sprite as drawn in scenes (uint8 size x size x 4 RGBA, longer side ``size`` px, centred), in class order."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"class_sprites: size={size!r}; expected an integer >= 8 (pixels)")
    out = []
    for i in range(len(CLASSNAMES)):
        im = _sprite_image(i, int(size), False, 0)
        canvas = Image.new("RGBA", (int(size), int(size)), (0, 0, 0, 0))
        canvas.paste(im, ((size - im.width) // 2, (size - im.height) // 2))
        out.append(np.asarray(canvas))
    return out


def _sprite_extent(class_index: int, scale: float) -> tuple[float, float]:
    w, h = _sprites()[1][class_index]
    m = max(w, h)
    return scale * w / m, scale * h / m


@lru_cache(maxsize=8192)
def _sprite_image(class_index: int, longer_side: int, flip: bool, angle: int) -> Image.Image:
    """Sprite resized so its longer side is ``longer_side`` px, flipped and rotated (RGBA)."""
    sprite = _sprites()[0][class_index]
    w, h = sprite.size
    f = longer_side / max(w, h)
    im = sprite.resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.LANCZOS)
    if flip:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if angle:
        im = im.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    return im.convert("RGBA")


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def _check_seed(seed, name: str = "seed") -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name} must be a non-negative int, got {seed!r}")
    return int(seed)


def _check_split(split) -> str:
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    return split


def _check_image_size(image_size) -> int:
    if (isinstance(image_size, (bool, np.bool_)) or not isinstance(image_size, (int, np.integer))
            or not _MIN_IMAGE_SIZE <= image_size <= _MAX_IMAGE_SIZE):
        raise ValueError(f"image_size must be an int in [{_MIN_IMAGE_SIZE}, {_MAX_IMAGE_SIZE}], "
                         f"got {image_size!r}")
    return int(image_size)


def _jitter(rng: np.random.Generator, color: tuple[int, int, int], amount: int) -> tuple[int, int, int]:
    d = rng.integers(-amount, amount + 1, size=3).tolist()
    return tuple(min(255, max(0, c + e)) for c, e in zip(color, d))


def _choice(rng: np.random.Generator, cdf: np.ndarray) -> int:
    """Index drawn from the distribution with cumulative probabilities ``cdf`` (faster than rng.choice)."""
    return min(int(np.searchsorted(cdf, rng.random(), side="right")), len(cdf) - 1)


def _grid_mask(box, shape: str = "rect") -> np.ndarray:
    """Boolean mask of a box (or the ellipse inscribed in it) on the visibility grid."""
    centres = _CENTRES
    x0, y0, x1, y1 = box
    if shape == "blob":
        rx, ry = max((x1 - x0) / 2, 1e-6), max((y1 - y0) / 2, 1e-6)
        dx = ((centres - (x0 + x1) / 2) / rx) ** 2
        dy = ((centres - (y0 + y1) / 2) / ry) ** 2
        return dy[:, None] + dx[None, :] <= 1.0
    inx = (centres >= x0) & (centres < x1)
    iny = (centres >= y0) & (centres < y1)
    return iny[:, None] & inx[None, :]


_CENTRES = (np.arange(_GRID) + 0.5) / _GRID


@lru_cache(maxsize=4096)
def _opacity_on_grid(obj: SceneObject) -> tuple[np.ndarray, float]:
    """Object opacity (0..1) on the visibility grid, and its total opacity including off-frame parts."""
    alpha = _sprites()[2][obj.class_index]
    x0, y0, x1, y1 = obj.box()
    # Grid cells whose centres fall inside the box: a contiguous range on each axis.
    i0, i1 = max(0, math.ceil(x0 * _GRID - 0.5)), min(_GRID, math.ceil(x1 * _GRID - 0.5))
    j0, j1 = max(0, math.ceil(y0 * _GRID - 0.5)), min(_GRID, math.ceil(y1 * _GRID - 0.5))
    grid = np.zeros((_GRID, _GRID), dtype=np.float32)
    if i1 > i0 and j1 > j0:
        cols = np.minimum(((_CENTRES[i0:i1] - x0) / (x1 - x0) * _ALPHA_RES).astype(int), _ALPHA_RES - 1)
        rows = np.minimum(((_CENTRES[j0:j1] - y0) / (y1 - y0) * _ALPHA_RES).astype(int), _ALPHA_RES - 1)
        if obj.flip:
            cols = _ALPHA_RES - 1 - cols
        grid[j0:j1, i0:i1] = alpha[rows][:, cols]
    grid.flags.writeable = False
    total = _sprites()[3][obj.class_index] * (x1 - x0) * (y1 - y0) * _GRID * _GRID
    return grid, max(total, 1e-9)


def _visible_fractions(objects: Sequence[SceneObject], occluders: Sequence[Occluder]) -> list[float]:
    """Visible share of each object's opacity: inside the frame, not under later objects or occluders."""
    covered = np.zeros((_GRID, _GRID), dtype=bool)
    for occ in occluders:
        covered |= _grid_mask(occ.box, occ.shape)
    fractions = [0.0] * len(objects)
    for i in range(len(objects) - 1, -1, -1):  # front to back
        grid, total = _opacity_on_grid(objects[i])
        fractions[i] = float(grid[~covered].sum()) / total
        covered |= grid > 0.5
    return fractions


def _sample_object(rng: np.random.Generator, class_index: int, n_objects: int,
                   horizon: float, scene_type: str) -> SceneObject:
    scale = float(rng.uniform(0.32, 0.72 - 0.06 * (n_objects - 1)))
    scale = min(scale * _SCALE_BOOST.get(CLASSNAMES[class_index], 1.0), 0.8)
    w, h = _sprite_extent(class_index, scale)
    cut, cut_bottom = 0.25, 0.15  # at most these fractions of width/height may leave the frame
    x_lo, x_hi = w / 2 - cut * w, 1 - w / 2 + cut * w
    y_lo, y_hi = h / 2 - cut * h, 1 - h / 2 + cut_bottom * h
    cx = float(rng.uniform(x_lo, x_hi))
    if scene_type == "studio":  # isolated objects: anywhere
        cy = float(rng.uniform(y_lo, y_hi))
    elif rng.random() < _FLY_P.get(CLASSNAMES[class_index], 0.0):  # flies: upper part
        cy = float(rng.uniform(y_lo, max(y_lo, min(y_hi, 0.6))))
    else:
        # Stands on the ground: the bottom edge lies below the horizon / floor line.
        bottom = rng.uniform(min(horizon + 0.05, 0.95), 1.0 + cut_bottom * h)
        cy = float(np.clip(bottom - h / 2, y_lo, y_hi))
    angle = int(rng.integers(-15, 16)) if rng.random() < 0.6 else 0
    return SceneObject(class_index, round(cx, 4), round(cy, 4), round(scale, 4),
                       bool(rng.random() < 0.5), angle)


def _depth_order(objects: list[SceneObject]) -> list[SceneObject]:
    """Objects whose bottom edge is lower are closer to the camera and drawn later."""
    return sorted(objects, key=lambda o: (o.box()[3], o.scale))


def _sample_background(rng: np.random.Generator, t: _SceneType) -> Background:
    kind = ("flat", "gradient", "horizon")[_choice(rng, np.cumsum(t.kinds))]
    top = _jitter(rng, t.top[int(rng.integers(len(t.top)))], 18)
    bottom = _jitter(rng, t.bottom[int(rng.integers(len(t.bottom)))], 18)
    horizon = round(float(rng.uniform(*t.horizon)), 4)
    texture = 0.0 if rng.random() < 0.4 else round(float(rng.uniform(4, 25)), 2)
    grain = round(float(rng.uniform(0, 6)), 2)
    return Background(kind, top, bottom, horizon, texture, grain, int(rng.integers(2**31)))


def _sample_occluder(rng: np.random.Generator, t: _SceneType, target: SceneObject) -> Occluder:
    shape, color = t.occluders[int(rng.integers(len(t.occluders)))]
    x0, y0, x1, y1 = target.box()
    w, h = x1 - x0, y1 - y0
    if shape == "post":  # vertical pole across the whole height
        pw = rng.uniform(0.1, 0.22) * w
        px = rng.uniform(x0 + 0.1 * w, x1 - 0.1 * w - pw)
        box = (px, 0.0, px + pw, 1.0)
    elif shape == "band":  # horizontal strip hiding the lower part (hedge, wall, table edge, wave)
        top = y1 - rng.uniform(0.15, 0.4) * h
        box = (min(0.0, x0), top, max(1.0, x1), top + rng.uniform(0.08, 0.3))
    else:  # blob: an ellipse over a corner of the target (bush, cloud, cushion)
        r = rng.uniform(0.25, 0.45)
        bx = x0 if rng.random() < 0.5 else x1
        by = y0 if rng.random() < 0.4 else y1
        box = (bx - r * w, by - r * h, bx + r * w, by + r * h)
    box = tuple(round(float(v), 4) for v in box)
    return Occluder(shape, box, _jitter(rng, color, 12))


def sample_scene(seed: int, split: str, index: int) -> Scene:
    """Sample scene ``index`` of ``split`` (a pure function of seed, split and index)."""
    seed = _check_seed(seed)
    split = _check_split(split)
    index = _check_seed(index, "index")
    rng = np.random.default_rng([seed, SPLITS[split], index])
    scene_type = SCENE_TYPES[_choice(rng, _SCENE_CDF)]
    t = _SCENES[scene_type]
    background = _sample_background(rng, t)
    n_objects = 1 + _choice(rng, _N_OBJECTS_CDF)
    prior_cdf = _PRIOR_CDFS[scene_type]

    objects: list[SceneObject] = []
    for _ in range(n_objects):
        present = sorted({o.class_index for o in objects})
        repeat_p = max((_REPEAT_P.get(CLASSNAMES[c], 0.15) for c in present), default=0.0)
        if present and rng.random() < repeat_p:
            weights = np.array([_REPEAT_P.get(CLASSNAMES[c], 0.15) for c in present])
            class_index = present[_choice(rng, np.cumsum(weights / weights.sum()))]
        else:
            class_index = _choice(rng, prior_cdf)
        for _attempt in range(25):
            candidate = _sample_object(rng, class_index, n_objects, background.horizon, scene_type)
            trial = _depth_order(objects + [candidate])
            if min(_visible_fractions(trial, ())) >= _MIN_VISIBLE:
                objects = trial
                break
        # An object that finds no place where everything stays visible is left out.

    occluders: tuple[Occluder, ...] = ()
    if objects and rng.random() < 0.3:
        target = objects[int(rng.integers(len(objects)))]
        before = _visible_fractions(objects, ())
        for _attempt in range(5):
            occ = _sample_occluder(rng, t, target)
            after = _visible_fractions(objects, (occ,))
            i = objects.index(target)
            if min(after) >= _MIN_VISIBLE and before[i] - after[i] >= 0.08:
                occluders = (occ,)
                break
    return Scene(seed, split, index, scene_type, tuple(objects), background, occluders)


def scene_labels(scene: Scene) -> np.ndarray:
    """Presence vector of the 20 classes (int8, 1 present / 0 absent)."""
    labels = np.zeros(len(CLASSNAMES), dtype=np.int8)
    for obj in scene.objects:
        labels[obj.class_index] = 1
    return labels


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _render_background(bg: Background, size: int) -> np.ndarray:
    y = (np.arange(size, dtype=np.float32) + 0.5) / size
    top = np.asarray(bg.top, dtype=np.float32)
    bottom = np.asarray(bg.bottom, dtype=np.float32)
    if bg.kind == "flat":
        t = np.zeros(size, dtype=np.float32)
    elif bg.kind == "gradient":
        t = y
    elif bg.kind == "horizon":
        t = np.clip((y - bg.horizon) / 0.03 + 0.5, 0.0, 1.0)
    else:
        raise ValueError(f"background kind must be 'flat', 'gradient' or 'horizon', got {bg.kind!r}")
    column = top[None, :] * (1 - t[:, None]) + bottom[None, :] * t[:, None] + 0.5  # S x 3
    if bg.texture <= 0 and bg.grain <= 0:
        return np.broadcast_to(np.clip(column, 0, 255).astype(np.uint8)[:, None, :], (size, size, 3))
    rng = np.random.default_rng(bg.texture_seed)
    cells = int(rng.integers(3, 9))
    coarse = Image.fromarray(rng.standard_normal((cells, cells), dtype=np.float32))
    noise = np.asarray(coarse.resize((size, size), Image.Resampling.BILINEAR)) * np.float32(bg.texture)
    noise += rng.standard_normal((size, size), dtype=np.float32) * np.float32(bg.grain)
    img = column[:, None, :] + noise[:, :, None]                                    # S x S x 3
    return np.clip(img, 0, 255).astype(np.uint8)


def render_scene(scene: Scene, image_size: int = 64) -> Image.Image:
    """Render a scene as an ``image_size`` x ``image_size`` RGB image."""
    if not isinstance(scene, Scene):
        raise TypeError(f"scene must be a Scene (from sample_scene), got {type(scene).__name__}")
    size = _check_image_size(image_size)
    canvas = Image.fromarray(np.ascontiguousarray(_render_background(scene.background, size)))
    for obj in scene.objects:
        sprite = _sprite_image(obj.class_index, max(2, round(obj.scale * size)), obj.flip, obj.angle)
        x = round(obj.cx * size - sprite.width / 2)
        y = round(obj.cy * size - sprite.height / 2)
        canvas.paste(sprite, (x, y), sprite)
    if scene.occluders:
        draw = ImageDraw.Draw(canvas)
        for occ in scene.occluders:
            box = [round(v * size) for v in occ.box]
            box[2], box[3] = max(box[2], box[0] + 1), max(box[3], box[1] + 1)
            if occ.shape == "blob":
                draw.ellipse(box, fill=occ.color)
            else:
                draw.rectangle([box[0], box[1], box[2] - 1, box[3] - 1], fill=occ.color)
    return canvas


# --------------------------------------------------------------------------------------------
# Captions
# --------------------------------------------------------------------------------------------

# Class words used in captions: a subset of the label set's synonyms, chosen to fit the sprites.
_CAPTION_WORDS = {
    "aeroplane": ("airplane", "plane", "aeroplane", "jet", "airliner"),
    "bicycle": ("bicycle", "bike"),
    "bird": ("bird", "sparrow", "pigeon"),
    "boat": ("boat", "sailboat", "yacht", "ship"),
    "bottle": ("bottle", "wine bottle"),
    "bus": ("bus", "minibus"),
    "car": ("car", "automobile", "sedan"),
    "cat": ("cat", "kitten", "kitty"),
    "chair": ("chair",),
    "cow": ("cow", "calf"),
    "diningtable": ("dining table", "table", "dinner table", "kitchen table"),
    "dog": ("dog", "puppy", "doggy"),
    "horse": ("horse", "pony", "stallion"),
    "motorbike": ("motorbike", "motorcycle"),
    "person": ("person", "man", "woman", "child", "kid", "boy", "girl", "tourist", "pedestrian"),
    "pottedplant": ("potted plant", "houseplant", "plant", "pot plant"),
    "sheep": ("sheep", "lamb"),
    "sofa": ("sofa", "couch", "settee"),
    "train": ("train", "steam train", "locomotive"),
    "tvmonitor": ("tv", "television", "tv monitor", "monitor", "tv screen"),
}
_NUMBERS = {2: "two", 3: "three", 4: "four"}
_ADJECTIVES = ("small", "big", "little", "cute", "old", "beautiful", "lovely")
_PREFIXES = ("", "", "", "", "photo of ", "image of ", "stock photo: ", "a picture of ",
             "close-up of ", "view of ", "snapshot: ", "illustration of ")
_SUFFIXES = ("", "", "", "", " - stock image", " | royalty free", " #photooftheday", " #nofilter",
             " (HD wallpaper)", " - free download", " #weekend")
_MOMENTS = ("a day", "weekend", "an afternoon", "a morning", "memories", "summer")


def _check_caption_words():
    for name, words in _CAPTION_WORDS.items():
        allowed = {w.lower() for w in _LABELS.synonyms[_C[name]]}
        bad = [w for w in words if w.lower() not in allowed]
        if bad:
            raise RuntimeError(f"caption words {bad} are not synonyms of {name!r} in the emoji-voc label set")


_check_caption_words()


def _article(phrase: str) -> str:
    return ("an " if phrase[0].lower() in "aeiou" else "a ") + phrase


def _position(obj: SceneObject) -> str:
    if obj.scale >= 0.6:
        return "in the foreground"
    if obj.cx < 0.38:
        return "on the left"
    if obj.cx > 0.62:
        return "on the right"
    return "in the background" if obj.scale < 0.4 else "in the middle"


def _object_phrase(rng: np.random.Generator, scene: Scene, class_index: int, count: int) -> str:
    words = _CAPTION_WORDS[CLASSNAMES[class_index]]
    word = words[int(rng.integers(len(words)))]
    if count == 1:
        adj = _ADJECTIVES[int(rng.integers(len(_ADJECTIVES)))] + " " if rng.random() < 0.2 else ""
        phrase = _article(adj + word)
        if rng.random() < 0.25:
            obj = next(o for o in scene.objects if o.class_index == class_index)
            phrase += " " + _position(obj)
        return phrase
    plural = pluralize(word)
    r = rng.random()
    if r < 0.55:
        return f"{_NUMBERS[count]} {plural}"
    if r < 0.7:
        return plural
    if r < 0.85:
        return "some " + plural
    return ("a couple of " if count == 2 else "a group of ") + plural


def _join(rng: np.random.Generator, phrases: list[str], allow_with: bool = True) -> str:
    if len(phrases) == 1:
        return phrases[0]
    r = rng.random()
    if r < 0.6 or (r < 0.8 and not allow_with):
        return ", ".join(phrases[:-1]) + " and " + phrases[-1]
    if r < 0.8:
        return phrases[0] + " with " + " and ".join(phrases[1:])
    return " & ".join(phrases)


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def caption_scene(scene: Scene, seed: int, epoch: int = 0,
                  completeness: float = 0.6) -> tuple[str, frozenset[int]]:
    """Alt-text-like caption of a scene and the set of class indices it names."""
    if not isinstance(scene, Scene):
        raise TypeError(f"scene must be a Scene (from sample_scene), got {type(scene).__name__}")
    seed = _check_seed(seed)
    epoch = _check_seed(epoch, "epoch")
    if isinstance(completeness, bool) or not isinstance(completeness, (int, float, np.floating)) \
            or not 0.0 <= completeness <= 1.0:
        raise ValueError(f"completeness must be a number in [0, 1], got {completeness!r}")
    rng = np.random.default_rng([seed, SPLITS[scene.split], scene.index, epoch, _CAPTION_STREAM])
    counts = scene.class_counts
    present = sorted(counts)
    # One draw per present class, first, so a higher completeness names a superset.
    draws = rng.random(len(present))
    named = [c for c, u in zip(present, draws) if u < completeness]
    rng.shuffle(named)
    t = _SCENES[scene.scene_type]
    place, view, tag = _pick(rng, t.places), _pick(rng, t.views), _pick(rng, t.tags)
    prefix, suffix = _pick(rng, _PREFIXES), _pick(rng, _SUFFIXES)

    if named:
        form = int(rng.integers(7))
        objs = _join(rng, [_object_phrase(rng, scene, c, counts[c]) for c in named], allow_with=form != 2)
        if form == 0:
            text = f"{prefix}{objs} {place}{suffix}"
        elif form == 1:
            text = f"{objs}{suffix}"
        elif form == 2:
            text = f"{view} with {objs}"
        elif form == 3:
            text = f"{place}: {objs}"
        elif form == 4:
            text = f"{objs} {place} {tag}"
        elif form == 5:
            first_plural = counts[named[0]] > 1
            text = f"there {'are' if first_plural else 'is'} {objs} {place}"
        else:
            text = f"{prefix}{objs}"
    else:
        form = int(rng.integers(3))
        if form == 0:
            text = f"{prefix}{view}{suffix}"
        elif form == 1:
            text = f"{view} {tag}"
        else:
            text = f"{_pick(rng, _MOMENTS)} {place}{suffix}"
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    return text, frozenset(named)


# --------------------------------------------------------------------------------------------
# Splits and cache
# --------------------------------------------------------------------------------------------


def _cache_name(split: str, n: int, seed: int, image_size: int) -> str:
    return f"emoji-voc-v{TOYWORLD_VERSION}_{split}_seed{seed}_s{image_size}_n{n}.npz"


def _scenes_to_bytes(scenes: Sequence[Scene]) -> np.ndarray:
    """Scenes as UTF-8 JSON in a uint8 array (stored next to the images in the cache)."""
    rows = [[s.scene_type,
             [[o.class_index, o.cx, o.cy, o.scale, o.flip, o.angle] for o in s.objects],
             [s.background.kind, s.background.top, s.background.bottom, s.background.horizon,
              s.background.texture, s.background.grain, s.background.texture_seed],
             [[o.shape, o.box, o.color] for o in s.occluders]] for s in scenes]
    return np.frombuffer(json.dumps(rows, separators=(",", ":")).encode("utf-8"), dtype=np.uint8)


def _scenes_from_bytes(data: np.ndarray, seed: int, split: str, n: int) -> list[Scene]:
    """Inverse of :func:`_scenes_to_bytes` for the first ``n`` scenes."""
    rows = json.loads(data.tobytes().decode("utf-8"))[:n]
    return [Scene(seed, split, i, t,
                  tuple(SceneObject(c, cx, cy, sc, fl, a) for c, cx, cy, sc, fl, a in objs),
                  Background(b[0], tuple(b[1]), tuple(b[2]), *b[3:]),
                  tuple(Occluder(sh, tuple(box), tuple(col)) for sh, box, col in occs))
            for i, (t, objs, b, occs) in enumerate(rows)]


def _load_cached(path: Path, n: int, seed: int, split: str, image_size: int) -> ToySplit | None:
    """The first ``n`` images and scenes of a cache file, or None if it is unusable or stale."""
    try:
        with np.load(path, allow_pickle=False) as f:
            images, labels = f["images"], f["labels"]
            scenes = _scenes_from_bytes(f["scenes"], seed, split, n)
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, EOFError, zipfile.BadZipFile):
        return None  # damaged (truncated, zero bytes, not an npz): rendered again and rewritten
    if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[0] < n
            or images.shape[1:] != (image_size, image_size, 3)
            or labels.shape != (images.shape[0], len(CLASSNAMES)) or len(scenes) != n):
        return None
    labels = labels[:n].astype(np.int8)
    if not np.array_equal(labels, np.stack([scene_labels(s) for s in scenes])):
        return None
    # Spot-check that the file matches this code (first, middle and last scene).
    if any(scenes[i] != sample_scene(seed, split, i) for i in sorted({0, n // 2, n - 1})):
        return None
    return ToySplit(split, seed, image_size, images[:n], labels, [s.scene_type for s in scenes], scenes)


def _resolve_cache(cache) -> Path | None:
    if cache is False:
        return None
    if cache is None or cache is True:
        return default_cache_folder()
    if not isinstance(cache, (str, os.PathLike)):
        raise ValueError(f"cache must be a folder path, None (the default cache folder) or False (no cache), "
                         f"got {cache!r}")
    return default_cache_folder(cache)


def render_split(split: str, n: int, seed: int = 0, image_size: int = 64,
                 cache: str | os.PathLike | None | bool = None) -> ToySplit:
    """Render the first ``n`` scenes of a split (cached as .npz in lcmc's cache; ``cache=False`` disables)."""
    split = _check_split(split)
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int (number of images), got {n!r}")
    n = int(n)
    seed = _check_seed(seed)
    size = _check_image_size(image_size)
    folder = _resolve_cache(cache)

    head: ToySplit | None = None  # a shorter cached prefix, extended below
    if folder is not None and folder.is_dir():
        # Image i does not depend on n: a cached file with at least n images serves the request,
        # and the longest shorter one saves rendering its prefix again.
        prefix = f"emoji-voc-v{TOYWORLD_VERSION}_{split}_seed{seed}_s{size}_n"
        longer, shorter = [], []
        for path in folder.glob(prefix + "*.npz"):
            tail = path.name[len(prefix):-len(".npz")]
            if tail.isdigit() and int(tail) > 0:
                (longer if int(tail) >= n else shorter).append((int(tail), path))
        for _, path in sorted(longer):
            cached = _load_cached(path, n, seed, split, size)
            if cached is not None:
                return cached
        for m, path in sorted(shorter, reverse=True):
            head = _load_cached(path, m, seed, split, size)
            if head is not None:
                break

    start = len(head) if head is not None else 0
    scenes = (head.scenes if head is not None else []) + [sample_scene(seed, split, i) for i in range(start, n)]
    labels = np.stack([scene_labels(s) for s in scenes])
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    if head is not None:
        images[:start] = head.images
    for i in range(start, n):
        images[i] = np.asarray(render_scene(scenes[i], size))
    if folder is not None:
        with atomic_writer(folder / _cache_name(split, n, seed, size), "wb") as f:
            np.savez(f, images=images, labels=labels, scenes=_scenes_to_bytes(scenes))
    return ToySplit(split, seed, size, images, labels, [s.scene_type for s in scenes], scenes)


def split_captions(scenes: ToySplit | Iterable[Scene], seed: int, epoch: int = 0,
                   completeness: float = 0.6) -> tuple[list[str], list[frozenset[int]]]:
    """Captions (and the classes each names) for every scene of a split, for one epoch."""
    if isinstance(scenes, ToySplit):
        scenes = scenes.scenes
    texts, named = [], []
    for scene in scenes:
        text, classes = caption_scene(scene, seed, epoch=epoch, completeness=completeness)
        texts.append(text)
        named.append(classes)
    return texts, named


# --------------------------------------------------------------------------------------------
# Compound prompts (SPARC): the toy world's stand-in for an LLM's common sense
# --------------------------------------------------------------------------------------------

_COMPOUND_STREAM = 11  # the random stream of compound prompts; split code 0 belongs to no split
_COMPOUND_FORMS = ("{objs} {place}", "a photo of {objs} {place}", "{first} next to {rest} {place}",
                   "{view} with {objs}", "{first} with {rest} {place}")


def compound_prompts(n: int, seed: int = 0, max_classes: int = 3) -> list[str]:
    """``n`` SPARC compound prompts naming 2 to ``max_classes`` classes that share a scene type ("a dog and a sheep on a farm").

    Prompt ``k`` depends only on ``(seed, k)``: a scene type other than the studio (uniformly),
    2 or 3 classes (probabilities 0.6 / 0.4; at most the classes the type holds) drawn without
    replacement from its class prior, each named by its prompt name or a caption synonym of
    the ``emoji-voc`` label set (sometimes counted: "two sheep"), put in a sentence with one of
    the type's place or view phrases. ``LabelSet.extract`` finds exactly the drawn classes.

    It plays the part of SPARC's LLM without looking at the test set: it reads only the scene
    types' class priors (``_PRIORS``), the world's common sense of which objects appear together,
    and never samples, renders or captions a scene of any split (:func:`sample_scene` is not
    called), so no test image, label or caption can reach it. Those priors are the distribution
    the test scenes are drawn from, so this source knows co-occurrence exactly, as an ideal LLM
    would; SPARC's own recipe estimated it from training labels.
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int (number of prompts), got {n!r}")
    seed = _check_seed(seed)
    if isinstance(max_classes, (bool, np.bool_)) or max_classes not in (2, 3):
        raise ValueError(f"max_classes must be 2 or 3, got {max_classes!r}")
    types = [t for t in SCENE_TYPES if t != "studio"]
    out = []
    for k in range(int(n)):
        rng = np.random.default_rng([seed, 0, k, _COMPOUND_STREAM])
        t = types[int(rng.integers(len(types)))]
        prior = _PRIORS[t]
        size = min(2 if max_classes == 2 or rng.random() < 0.6 else 3, int((prior > 0).sum()))
        classes = rng.choice(len(CLASSNAMES), size=size, replace=False, p=prior).tolist()
        phrases = []
        for c in classes:
            words = (_LABELS.prompt_names[c], *_CAPTION_WORDS[CLASSNAMES[c]])
            word = words[0] if rng.random() < 0.5 else words[int(rng.integers(len(words)))]
            phrases.append(f"two {pluralize(word)}" if rng.random() < 0.15 else _article(word))
        form = _COMPOUND_FORMS[int(rng.integers(len(_COMPOUND_FORMS)))]
        text = form.format(objs=join_names(phrases), first=phrases[0], rest=join_names(phrases[1:]),
                           place=_pick(rng, _SCENES[t].places), view=_pick(rng, _SCENES[t].views))
        out.append(text)
    return out
