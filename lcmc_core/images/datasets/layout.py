"""Shared helpers for the real-benchmark loaders (VOC2007, COCO 2014, NUS-WIDE).

The loaders read a user's own copy of a dataset, so most of what can go wrong is about files:
a folder not extracted where expected, a label file cut short, an image that never downloaded.
This module turns each of those into one clear error:

- :class:`DatasetLayoutError` (a ``FileNotFoundError``): required files or folders are missing, or
  an image folder is empty. The loader collects *every* missing piece first (:class:`LayoutCheck`)
  and raises once, listing what is missing, where it was expected, and what to download and where
  to put it (one line when a single piece is missing).
- :class:`DatasetFormatError` (a ``ValueError``): a file exists but does not follow the official
  format (or lists no image at all); the message names the file and, where it makes sense, the line.
- :class:`ImageCheckError` (an ``OSError``): listed images are missing or cannot be decoded and
  the caller asked for ``missing="fail"``; the message gives the count and the first names.

It also holds the image side shared by every loader: :func:`inspect_images` (existence, then
decoding, remembered between runs, or a header check) and the ``missing="fail"|"skip"`` policy
applied by :func:`build_dataset`, :func:`open_rgb` (PIL, converted to 8-bit RGB with the right
scaling, because these datasets contain grayscale, CMYK, palette and 16-bit files; see
:func:`to_rgb`), :func:`contained_path` (listed files stay inside the dataset root) and
:func:`read_aligned_lines` (line-aligned files; an image list's names are kept byte for byte, so a
file whose name is not UTF-8 is found).
"""
from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...errors import ConfigError, LcmcError
from .base import MultiLabelDataset

__all__ = [
    "DatasetLayoutError", "DatasetFormatError", "ImageCheckError", "LayoutCheck",
    "MISSING_POLICIES", "open_rgb", "to_rgb", "build_dataset", "read_text_lines",
    "require_root", "open_root", "check_choice", "check_classnames", "PathImages", "inspect_images",
    "read_aligned_lines", "contained_path",
]

MISSING_POLICIES = ("fail", "skip")
# How many file names an error or warning lists before saying "and N more".
_SHOW = 10


class DatasetLayoutError(LcmcError, FileNotFoundError):
    """Required dataset files or folders are missing; ``missing`` lists ``(path, what)`` pairs."""

    def __init__(self, message: str, missing: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.missing = list(missing)

    def __str__(self) -> str:  # FileNotFoundError would otherwise print only the errno form
        return self.args[0]


class DatasetFormatError(LcmcError, ValueError):
    """A dataset file exists but does not follow its official format (file and line named)."""


class ImageCheckError(LcmcError, OSError):
    """Images listed by the split are missing or unreadable; ``missing``/``unreadable`` hold paths."""

    def __init__(self, message: str, missing: Sequence[str] = (), unreadable: Sequence[str] = ()):
        super().__init__(message)
        self.missing = list(missing)
        self.unreadable = list(unreadable)

    def __str__(self) -> str:
        return self.args[0]


class LayoutCheck:
    """Collect missing files/folders (and empty image folders), then raise one :class:`DatasetLayoutError` listing them all."""

    def __init__(self, dataset: str, split: str, root: Path):
        self.dataset = dataset
        self.split = split
        self.root = Path(root)
        self.missing: list[tuple[str, str]] = []
        self.empty: set[str] = set()
        self.advice: list[str] = []

    def file(self, path: Path, what: str) -> bool:
        """Record ``path`` as missing unless it is an existing file; return whether it exists."""
        if Path(path).is_file():
            return True
        self.missing.append((str(path), what))
        return False

    def folder(self, path: Path, what: str, *, nonempty: bool = False) -> bool:
        """Record ``path`` as missing unless it is an existing folder (holding something, with ``nonempty``)."""
        if Path(path).is_dir():
            if not nonempty or _holds_entries(Path(path)):
                return True
            self.empty.add(str(path))
        self.missing.append((str(path), what))
        return False

    def files(self, paths: Iterable[Path], what: str, advice: str | None = None) -> list[Path]:
        """Check many files of one kind; record each missing one; return the missing paths."""
        absent = [Path(p) for p in paths if not Path(p).is_file()]
        for p in absent:
            self.missing.append((str(p), what))
        if absent and advice:
            self.advise(advice)
        return absent

    def advise(self, text: str) -> None:
        """Add one line of download/placement advice (printed once, in order)."""
        if text not in self.advice:
            self.advice.append(text)

    def _piece(self, path: str, what: str) -> str:
        return f"{what}: the folder {path} is empty" if path in self.empty else f"{what}: expected at {path}"

    def raise_if_missing(self) -> None:
        """Raise :class:`DatasetLayoutError` naming every recorded missing piece, if any (one line for one piece)."""
        if not self.missing:
            return
        n = len(self.missing)
        head = (f"{self.dataset} (split {self.split!r}): the dataset under {self.root} is incomplete; "
                f"{n} required {'piece is' if n == 1 else 'pieces are'} missing")
        if n == 1:
            advice = f". How to fix: {' '.join(self.advice)}" if self.advice else ""
            raise DatasetLayoutError(f"{head}: {self._piece(*self.missing[0])}{advice}", self.missing)
        lines = [head + ":"]
        # Every missing path is listed (no truncation): the user needs the full picture, and a
        # whole missing folder is reported as that folder, not as its thousands of files.
        for path, what in self.missing:
            lines.append(f"  - {self._piece(path, what)}")
        if self.advice:
            lines.append("How to fix:")
            lines.extend(f"  * {a}" for a in self.advice)
        raise DatasetLayoutError("\n".join(lines), self.missing)


def _holds_entries(folder: Path) -> bool:
    """Whether ``folder`` holds any file or folder besides hidden ones (``.DS_Store``, ...)."""
    try:
        with os.scandir(folder) as entries:
            return any(not e.name.startswith(".") for e in entries)
    except OSError:
        return True  # unreadable: the image checks will say so, naming the images


def require_root(dataset: str, root) -> Path:
    """Return ``root`` as an absolute :class:`Path`; raise if it was not given or does not exist."""
    if root is None:
        raise ConfigError(f"{dataset}: the 'root' parameter is required (the folder holding your copy "
                         f"of the dataset); e.g. lcmc_core.images.datasets.load({dataset!r}, root='/data/{dataset}')")
    path = Path(os.path.expanduser(str(root))).absolute()
    if not path.is_dir():
        raise DatasetLayoutError(
            f"{dataset}: root folder {path} does not exist (parameter 'root'); expected the folder "
            f"that holds your copy of the dataset", [(str(path), "dataset root folder")])
    return path


def open_root(dataset: str, root, split: str, splits: Sequence[str], missing: str) -> Path:
    """The checks every loader starts with (``split``, ``missing``, ``root``); returns the root folder."""
    check_choice(dataset, "split", split, splits)
    check_choice(dataset, "missing", missing, MISSING_POLICIES)
    return require_root(dataset, root)


def check_choice(dataset: str, param: str, value, allowed: Sequence) -> None:
    """Raise ``ValueError`` naming ``param`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{dataset}: parameter {param!r} must be one of {list(allowed)}, got {value!r}")


def check_classnames(dataset: str, found: Sequence[str], expected: Sequence[str], source: str) -> None:
    """Raise :class:`DatasetFormatError` unless ``found`` equals the label set's names, in order."""
    found, expected = list(found), list(expected)
    if found == expected:
        return
    detail = []
    if len(found) != len(expected):
        detail.append(f"{len(found)} classes found, {len(expected)} expected")
    diffs = [(i, f, e) for i, (f, e) in enumerate(zip(found, expected)) if f != e]
    for i, f, e in diffs[:_SHOW]:
        detail.append(f"position {i}: found {f!r}, expected {e!r}")
    if len(diffs) > _SHOW:
        detail.append(f"... and {len(diffs) - _SHOW} more differences")
    raise DatasetFormatError(
        f"{dataset}: the class names in {source} do not match the official {dataset} label set "
        f"(lcmc_core.text.label_sets.get_label_set({dataset!r})); " + "; ".join(detail))


def read_text_lines(path: Path) -> list[tuple[int, str]]:
    """Return ``(line_number, stripped_text)`` for the non-blank lines of a text file (any line ending)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DatasetLayoutError(f"cannot read {path}: {e}", [(str(path), "text file")]) from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # the official lists are ASCII; never fail on an odd byte
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_aligned_lines(path: Path, what: str) -> list[str]:
    """The lines of a line-aligned file (line ``k`` belongs to image ``k``): a blank line inside it is an error.

    Trailing blank lines (a final newline, or several) are allowed; a blank line before the last
    value would shift every later value onto the wrong image, so it names the file and line.
    Lines are decoded as file names are (``os.fsdecode``: UTF-8, other bytes kept as surrogate
    escapes), so a listed file whose name is not UTF-8 is found on disk byte for byte.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DatasetLayoutError(f"cannot read {path}: {e}", [(str(path), what)]) from e
    lines = [line.strip() for line in raw.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]
    for n, line in enumerate(lines, 1):
        if not line:
            raise DatasetFormatError(f"{path}, line {n}: blank line in a {what}, where every line holds the value "
                                     f"of one image (the line after it would be read as this image's); remove it")
    return [os.fsdecode(line) for line in lines]


def contained_path(base: Path, rel: str, where: str) -> str:
    """``base / rel`` as a string, after checking that ``rel`` is a relative path that stays inside ``base``."""
    norm = os.path.normpath(rel.replace("\\", "/")) if rel else ""
    if (not rel or "\0" in rel or os.path.isabs(rel) or rel.startswith(("/", "\\")) or ":" in rel
            or norm == "." or norm == ".." or norm.startswith("../")):
        raise DatasetFormatError(f"{where}: {rel!r} is not a file name inside {base} (expected a relative path "
                                 f"such as 'COCO_val2014_000000000042.jpg', with no '..', drive or leading '/')")
    return str(Path(base) / norm)


def _names(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:_SHOW])
    return shown + (f", ... and {len(paths) - _SHOW} more" if len(paths) > _SHOW else "")


def _existing_files(paths: Sequence[str]) -> np.ndarray:
    """Vectorised existence check: list each parent folder once instead of one stat per file."""
    listing: dict[str, set[str] | None] = {}
    ok = np.zeros(len(paths), dtype=bool)
    for i, p in enumerate(paths):
        parent, name = os.path.split(p)
        if parent not in listing:
            try:
                listing[parent] = {e.name for e in os.scandir(parent) if e.is_file()}
            except OSError:
                listing[parent] = None
        names = listing[parent]
        ok[i] = names is not None and name in names
    return ok


def _decodes(path: str) -> bool:
    try:
        with Image.open(path) as im:
            im.load()
        return True
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError):
        # PIL raises OSError for truncated data, UnidentifiedImageError for non-images and, for
        # some broken headers, ValueError/SyntaxError.
        return False


def _header_ok(path: str) -> bool:
    """A cheap check: the file is not empty and PIL recognises its header (truncated data passes)."""
    try:
        if os.path.getsize(path) == 0:
            return False
        with Image.open(path) as im:
            return im.size[0] > 0 and im.size[1] > 0
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False


def _signature(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _verified_before(paths: Sequence[str]) -> tuple[Path, dict]:
    """The record of images that decoded in an earlier check (path -> [size, mtime_ns]), and its file."""
    import hashlib
    import json

    from ...cache import cache_dir

    key = hashlib.sha256("\n".join(paths).encode("utf-8", "surrogateescape")).hexdigest()[:20]
    record = cache_dir() / "image_checks" / f"{key}.json"
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        ok = data["decoded"] if isinstance(data, dict) and isinstance(data.get("decoded"), dict) else {}
    except (OSError, ValueError, KeyError):
        ok = {}
    return record, ok


def _remember_verified(record: Path, decoded: dict) -> None:
    import json

    from ...cache import atomic_write

    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(record, json.dumps({"version": 1, "decoded": decoded}), fsync=False)
    except OSError as exc:  # a read-only cache only costs decoding again next time
        warnings.warn(f"could not record the image check in {record}: {exc}", RuntimeWarning, stacklevel=3)


def inspect_images(paths: Sequence[str], *, verify_images: bool = True, workers: int | None = None) -> list[str]:
    """For each image, ``""`` when usable, else why not: ``"missing"``, ``"empty"`` or ``"unreadable"``.

    ``verify_images`` decodes every image (what encoding will do), remembering the files that
    decoded by size and modification time so a later check of the same files decodes only what
    changed; without it only the header is read (a truncated file then passes).
    """
    exists = _existing_files(paths)
    idx = [int(i) for i in np.flatnonzero(exists)]
    n_workers = workers or min(8, os.cpu_count() or 1)
    reasons = ["" if ok else "missing" for ok in exists]
    if verify_images:
        record, before = _verified_before(paths)
        sigs = {i: _signature(paths[i]) for i in idx}
        todo = [i for i in idx if sigs[i] is None or before.get(paths[i]) != sigs[i]]
        with ThreadPoolExecutor(max_workers=n_workers) as pool:  # PIL decoding releases the GIL
            results = dict(zip(todo, pool.map(_decodes, [paths[i] for i in todo])))
        decoded = {paths[i]: sigs[i] for i in idx if results.get(i, True) and sigs[i] is not None}
        if todo or len(decoded) != len(before):
            _remember_verified(record, decoded)
        ok = {i: results.get(i, True) for i in idx}
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            ok = dict(zip(idx, pool.map(_header_ok, [paths[i] for i in idx])))
    for i in idx:
        if not ok[i]:
            reasons[i] = "empty" if _size(paths[i]) == 0 else "unreadable"
    return reasons


def _size(path: str) -> int:
    """Size of ``path`` in bytes (-1 when it cannot be read)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def _apply_policy(dataset: str, split: str, paths: Sequence[str], reasons: Sequence[str], missing: str) -> np.ndarray:
    check_choice(dataset, "missing", missing, MISSING_POLICIES)
    keep = np.array([not r for r in reasons], dtype=bool)
    absent = [p for p, r in zip(paths, reasons) if r == "missing"]
    broken = [p for p, r in zip(paths, reasons) if r in ("empty", "unreadable")]
    if not absent and not broken:
        return keep
    parts = []
    if absent:
        parts.append(f"{len(absent)} missing (not found): {_names(absent)}")
    if broken:
        n_empty = sum(r == "empty" for r in reasons)
        parts.append(f"{len(broken)} unreadable (PIL cannot decode them{f'; {n_empty} are empty files' if n_empty else ''}): "
                     f"{_names(broken)}")
    summary = (f"{dataset} (split {split!r}): {len(absent) + len(broken)} of {len(paths)} images "
               f"cannot be used; " + "; ".join(parts))
    if len(absent) == len(paths):
        summary += (". None of the listed images was found: check that the image folder follows the "
                    f"expected layout (the first image should be at {paths[0]})")
    if missing == "skip" and not keep.any():
        raise ImageCheckError(summary + ". missing='skip' would leave no image at all.", absent, broken)
    if missing == "fail":
        raise ImageCheckError(
            summary + ". Restore those files, or pass missing='skip' (profile key missing_images: skip) to drop "
            "their rows (the evaluation then covers fewer images than the official split).", absent, broken)
    warnings.warn(summary + f". missing='skip': dropping those {len(absent) + len(broken)} rows; "
                  f"{int(keep.sum())} images remain.", RuntimeWarning, stacklevel=_caller_stacklevel())
    return keep


def _caller_stacklevel() -> int:
    """Stack level of the first frame outside this package, so warnings point at the user's call."""
    frame, level = inspect.currentframe().f_back, 1
    while frame is not None and (frame.f_globals.get("__name__", "") + ".").startswith(__package__ + "."):
        frame, level = frame.f_back, level + 1
    return level


def to_rgb(im: Image.Image) -> Image.Image:
    """``im`` as 8-bit RGB with its values scaled, not clipped: 16-bit and 32-bit grayscale and float images included.

    PIL's own ``convert("RGB")`` clips a 16-bit image (mode ``I;16``, or ``I`` holding 16-bit
    values) to 255, turning it all white. Here ``I;16*`` is scaled from 0..65535; ``I`` from
    0..255, 0..65535 or the 32-bit range, whichever holds its largest value; ``F`` from 0..1 when
    its values lie there, else clipped to 0..255. Palette images with transparency go through RGBA.
    """
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(im, dtype=np.float64)
        if mode.startswith("I;16"):
            top = 65535.0
        elif mode == "I":
            peak = float(values.max(initial=0.0))
            top = 255.0 if peak <= 255 else (65535.0 if peak <= 65535 else 4294967295.0)
        else:
            finite = values[np.isfinite(values)]
            top = 1.0 if finite.size and finite.min() >= 0 and finite.max() <= 1 else 255.0
        gray = np.clip(np.nan_to_num(values) * (255.0 / top), 0, 255).round().astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")  # palette transparency must go through RGBA first
    return im.convert("RGB")


def open_rgb(path: str) -> Image.Image:
    """Open an image with PIL and return it as 8-bit RGB (grayscale, CMYK, palette, 16-bit: see :func:`to_rgb`)."""
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb(im)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageCheckError(f"cannot read image {path}: {e}. It changed or was only header-checked when the "
                              f"dataset was loaded: load it with verify_images=True to find every unreadable "
                              f"image, and missing='skip' to drop them.", unreadable=[str(path)]) from e


class PathImages:
    """Image loader reading ``paths[i]`` from disk as RGB (picklable, for DataLoader workers)."""

    def __init__(self, paths: Sequence[str]):
        self.paths = list(paths)

    def __call__(self, i: int) -> Image.Image:
        return open_rgb(self.paths[i])


def _check_unique(name: str, image_ids: Sequence[str], image_paths: Sequence[str], info: dict | None) -> None:
    """Two rows for one image id or one image file are an error (the split would count that image twice)."""
    source = (info or {}).get("annotation_file") or (info or {}).get("image_list") or "the split's image list"
    for what, values in (("image id", image_ids), ("image file", image_paths)):
        if len(set(values)) != len(values):
            seen: dict[str, int] = {}
            for row, v in enumerate(values):
                if v in seen:
                    raise DatasetFormatError(f"{name}: {source} lists {what} {v!r} twice (entries {seen[v] + 1} "
                                             f"and {row + 1}); each image must appear once")
                seen[v] = row


def build_dataset(name: str, split: str, classnames: Sequence[str], labels: np.ndarray,
                  image_ids: Sequence[str], image_paths: Sequence[str], *, missing: str = "fail",
                  verify_images: bool = True, label_set: str | None = None,
                  info: dict | None = None) -> MultiLabelDataset:
    """Apply the image checks and policy, then return the :class:`MultiLabelDataset` (a split listing no image is an error)."""
    image_paths = [str(p) for p in image_paths]
    if not image_paths:
        source = (info or {}).get("annotation_file") or (info or {}).get("image_list") or "the split's image list"
        raise DatasetFormatError(f"{name} (split {split!r}): {source} lists no images; expected the official "
                                 f"{split} split (re-extract the dataset's archive)")
    _check_unique(name, image_ids, image_paths, info)
    reasons = inspect_images(image_paths, verify_images=verify_images)
    keep = _apply_policy(name, split, image_paths, reasons, missing)
    info = dict(info or {})
    info["skipped_images"] = [image_ids[i] for i in np.flatnonzero(~keep)]
    info["skipped_reasons"] = {image_ids[i]: reasons[i] for i in np.flatnonzero(~keep)}
    info["images_verified"] = "decoded" if verify_images else "header"
    info["official_size"] = len(image_paths)
    labels = np.asarray(labels, dtype=np.int8)[keep]
    ids = [image_ids[i] for i in np.flatnonzero(keep)]
    paths = [image_paths[i] for i in np.flatnonzero(keep)]
    return MultiLabelDataset(name, split, classnames, labels, PathImages(paths),
                             image_ids=ids, image_paths=paths, label_set=label_set or name, info=info)
