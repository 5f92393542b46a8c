"""The CoMC authors' released COCO classifier and text memory: packaged copies, SHA-256 checks and safe loading.

The official repository (yic20/CoMC, MIT licence) ships two files, packaged here unchanged under
``lcmc_core/method/assets/official_comc/`` with their licence (:func:`packaged_official_files`):

- ``model-best.pth.tar``: the trained classifier, ``state_dict['adapter.0.weight']`` float32
  (80, 1024) (a bias-free ``nn.Linear(1024, 80)``); :func:`load_official_classifier`.
- ``coco_templates.pt``: the text memory of the official inference, float16 (80, 1024), unit rows;
  :func:`load_official_memory` (float32, not renormalised: the official code only calls ``.float()``).

Both list the classes in the COCO category order (the official names are
:data:`lcmc_core.text.label_sets.COCO2014_OFFICIAL_NAMES`).

**Why** ``torch.load(path, weights_only=True)`` **refuses the checkpoint.** First, every storage is
tagged ``cuda:0``, so without ``map_location`` a machine without CUDA fails before unpickling
anything. With ``map_location="cpu"`` the weights-only unpickler stops at ``GLOBAL
torch.optim.lr_scheduler.CosineAnnealingLR``: the file is a plain ``torch.save`` of Dassl's
checkpoint dict, whose ``scheduler`` entry is the ``state_dict()`` of Dassl's
``ConstantWarmupScheduler``; that keeps the scheduler's ``successor`` attribute, the whole
``CosineAnnealingLR`` *object* (pickled by ``NEWOBJ`` + ``BUILD``), which holds the whole
``torch.optim.adam.Adam`` object, whose ``state`` is a ``collections.defaultdict(dict)`` keyed by the
trained ``nn.Parameter``. Allowing those names one by one, the unpickler refuses ``Adam``, then
``collections.defaultdict``, then ``builtins.dict`` (its default factory), then ``SETITEM`` on a
``defaultdict`` (it only fills ``dict``, ``OrderedDict`` and ``Counter``).

**What is allowed instead.** The weights-only unpickler itself (``weights_only=True``), with
exactly four extra globals for the duration of one load (``torch.serialization.safe_globals``):
the name ``torch.optim.lr_scheduler.CosineAnnealingLR`` and the name ``torch.optim.adam.Adam`` are
bound to :class:`DiscardedTrainingObject` (an inert class: its instances only keep the pickled
attributes, no optimizer or scheduler code runs); the name ``collections.defaultdict`` is bound to
:func:`_plain_dict` (returns an empty ``dict``, ignoring the default factory); and ``builtins.dict``
(the default factory, a plain-data constructor). Binding a name to another object is torch's
``(object, "module.name")`` form of ``safe_globals`` (torch >= 2.6). The real ``Adam`` is not
allowed because rebuilding it calls ``Optimizer.__setstate__``, which patches ``Adam.step`` for
the whole process; the loader needs none of those objects. The memory file needs nothing beyond
``weights_only=True``.

**SHA-256.** :data:`OFFICIAL_SHA256` holds the released files' digests. :func:`verify_official_file`
checks a file against them: a packaged copy that differs raises :class:`~lcmc_core.errors.WeightsError`
(the installation is damaged); any other file that differs is allowed (e.g. a checkpoint retrained
with the official code) and reported by an :class:`UnreleasedFileWarning` and a ``False`` result,
which callers can record. Both loaders run this check first.

Damaged, empty or foreign files raise a one-line :class:`~lcmc_core.errors.WeightsError` naming the
file and what was expected; code in a file is never executed (the weights-only unpickler refuses
every global not listed above).
"""
from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from ..errors import MissingFileError, WeightsError

__all__ = ["OFFICIAL_CLASSIFIER_SHA256", "OFFICIAL_MEMORY_SHA256", "OFFICIAL_SHA256", "OFFICIAL_FILENAMES",
           "OFFICIAL_NUM_CLASSES", "OFFICIAL_EMBED_DIM", "OfficialFiles", "UnreleasedFileWarning",
           "DiscardedTrainingObject", "packaged_official_files", "file_sha256", "verify_official_file",
           "load_official_classifier", "load_official_memory"]

#: SHA-256 of the released ``model-best.pth.tar`` (yic20/CoMC, ``output/coco/comc/rn50_coco2014/seed1/comc/``).
OFFICIAL_CLASSIFIER_SHA256 = "3c140ad03a9c45070ba7f3e9f85179a7fca740024764aa3344f93446982b3c2a"
#: SHA-256 of the released ``coco_templates.pt`` (yic20/CoMC, ``suppl/``).
OFFICIAL_MEMORY_SHA256 = "146955f8478f531b0243c34e57c6b6f655b9d08786ed78df5cc792cb16c7c350"
OFFICIAL_SHA256 = {"classifier": OFFICIAL_CLASSIFIER_SHA256, "memory": OFFICIAL_MEMORY_SHA256}
OFFICIAL_FILENAMES = {"classifier": "model-best.pth.tar", "memory": "coco_templates.pt"}
OFFICIAL_NUM_CLASSES = 80
OFFICIAL_EMBED_DIM = 1024   # CLIP RN50's embedding size

_ASSETS = ("assets", "official_comc")
_WEIGHT_KEY = "adapter.0.weight"
_MIN_TORCH = (2, 6)          # safe_globals with (object, "module.name") pairs
_UNIT_TOLERANCE = 1e-2       # float16 storage keeps row norms within ~5e-4 of 1
_EXPECTED = {
    "classifier": (f"the official CoMC checkpoint (a torch zip archive whose 'state_dict' holds only "
                   f"'{_WEIGHT_KEY}', a float32 ({OFFICIAL_NUM_CLASSES}, {OFFICIAL_EMBED_DIM}) tensor)"),
    "memory": (f"the official CoMC text memory (a torch zip archive holding one ({OFFICIAL_NUM_CLASSES}, "
               f"{OFFICIAL_EMBED_DIM}) float16 tensor with unit rows)"),
}


class UnreleasedFileWarning(UserWarning):
    """A user-supplied file differs from the released one (another SHA-256); it is loaded anyway."""


class DiscardedTrainingObject:
    """Inert stand-in for the optimizer and scheduler objects pickled in the checkpoint: keeps their attributes, runs nothing."""


def _plain_dict(default_factory=None) -> dict:
    """Stand-in for ``collections.defaultdict`` while unpickling: an empty plain dict (the factory is dropped)."""
    return {}


# The only globals added to torch's weights-only allowlist, and only while the checkpoint is read.
_CHECKPOINT_SAFE_GLOBALS = [
    (DiscardedTrainingObject, "torch.optim.lr_scheduler.CosineAnnealingLR"),
    (DiscardedTrainingObject, "torch.optim.adam.Adam"),
    (_plain_dict, "collections.defaultdict"),
    dict,
]


@dataclass(frozen=True)
class OfficialFiles:
    """Paths of the packaged official files."""

    classifier: Path
    memory: Path
    licence: Path
    readme: Path


def _packaged_folder() -> Path:
    """The folder of the packaged official files (a real folder: pip installs package data as files)."""
    return Path(str(resources.files("lcmc_core.method").joinpath(*_ASSETS)))


def packaged_official_files() -> OfficialFiles:
    """The paths of the packaged copies of the official checkpoint, memory, licence and README (MissingFileError if absent)."""
    folder = _packaged_folder()
    files = OfficialFiles(classifier=folder / OFFICIAL_FILENAMES["classifier"], memory=folder / OFFICIAL_FILENAMES["memory"],
                          licence=folder / "LICENSE", readme=folder / "README.md")
    for path in (files.classifier, files.memory, files.licence, files.readme):
        if not path.is_file():
            raise MissingFileError(f"{path}: packaged official CoMC file is missing; reinstall lcmc_core "
                                   f"(its package data includes lcmc_core/method/assets/official_comc/)")
    return files


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_kind(kind: str) -> str:
    if kind not in OFFICIAL_SHA256:
        raise ValueError(f"kind: expected one of {sorted(OFFICIAL_SHA256)}, got {kind!r}")
    return kind


def _existing_file(path: str | os.PathLike, kind: str) -> Path:
    """``path`` as a Path after checking it names a non-empty file, with one-line errors."""
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"{p}: no such file; expected {_EXPECTED[kind]}")
    if not p.is_file():
        raise WeightsError(f"{p}: not a file; expected {_EXPECTED[kind]}")
    if p.stat().st_size == 0:
        raise WeightsError(f"{p}: empty file; expected {_EXPECTED[kind]}")
    return p


def _is_packaged(path: Path, kind: str) -> bool:
    return path.resolve() == (_packaged_folder() / OFFICIAL_FILENAMES[kind]).resolve()


def verify_official_file(path: str | os.PathLike, kind: str) -> bool:
    """Whether ``path`` is the released ``kind`` file ("classifier" or "memory") byte for byte.

    A packaged copy that differs raises :class:`~lcmc_core.errors.WeightsError`; any other file that
    differs gives ``False`` and an :class:`UnreleasedFileWarning`.
    """
    return _verify(path, kind, stacklevel=3)


def _verify(path: str | os.PathLike, kind: str, stacklevel: int) -> bool:
    _check_kind(kind)
    p = _existing_file(path, kind)
    actual = file_sha256(p)
    expected = OFFICIAL_SHA256[kind]
    if actual == expected:
        return True
    if _is_packaged(p, kind):
        raise WeightsError(f"{p}: the packaged official CoMC file was modified (SHA-256 {actual}, released "
                           f"{expected}); reinstall lcmc_core or restore the file from the repository")
    warnings.warn(f"{p}: not the released official CoMC {kind} file (SHA-256 {actual}, released {expected}); "
                  f"loading it anyway", UnreleasedFileWarning, stacklevel=stacklevel)
    return False


def _one_line(exc: BaseException) -> str:
    """The gist of a torch.load failure in one short line (torch's weights-only messages span paragraphs)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    for tail in ("Please use `torch.serialization", "Check the documentation of torch.load"):
        text = text.split(tail)[0]
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _torch_load(p: Path, kind: str, safe_globals: list | None):
    """``torch.load`` with the weights-only unpickler on CPU (plus ``safe_globals`` for this call); errors in one line."""
    if not zipfile.is_zipfile(p):
        raise WeightsError(f"{p}: not a torch zip archive (damaged, truncated or another format); expected "
                           f"{_EXPECTED[kind]}")
    try:
        if safe_globals:
            with torch.serialization.safe_globals(safe_globals):
                return torch.load(p, map_location="cpu", weights_only=True)
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad content
        raise WeightsError(f"{p}: cannot be read safely ({_one_line(exc)}); expected {_EXPECTED[kind]}") from exc


def _check_matrix(p: Path, kind: str, what: str, value) -> torch.Tensor:
    """``value`` if it is a finite floating (80, 1024) tensor, else a one-line WeightsError naming ``what``."""
    if not isinstance(value, torch.Tensor):
        raise WeightsError(f"{p}: {what} is a {type(value).__name__}, not a tensor; expected {_EXPECTED[kind]}")
    shape = (OFFICIAL_NUM_CLASSES, OFFICIAL_EMBED_DIM)
    if tuple(value.shape) != shape or not value.dtype.is_floating_point:
        raise WeightsError(f"{p}: {what} is a {value.dtype} tensor of shape {tuple(value.shape)}; "
                           f"expected {_EXPECTED[kind]}")
    out = value.detach().to(torch.float32).contiguous()
    if not bool(torch.isfinite(out).all()):
        raise WeightsError(f"{p}: {what} holds NaN or infinite values; expected {_EXPECTED[kind]}")
    return out


def _torch_is_recent() -> bool:
    return torch.torch_version.TorchVersion(torch.__version__) >= _MIN_TORCH


def load_official_classifier(path: str | os.PathLike | None = None) -> torch.Tensor:
    """The released adapter weight ``state_dict['adapter.0.weight']`` as float32 (80, 1024); ``None`` reads the packaged copy."""
    p = packaged_official_files().classifier if path is None else Path(path)
    _verify(p, "classifier", stacklevel=3)
    if not _torch_is_recent():
        raise WeightsError(f"{p}: reading the official CoMC checkpoint safely needs torch >= 2.6 (safe_globals "
                           f"with renamed globals); this is torch {torch.__version__}")
    checkpoint = _torch_load(p, "classifier", _CHECKPOINT_SAFE_GLOBALS)
    if not isinstance(checkpoint, Mapping) or "state_dict" not in checkpoint:
        found = sorted(map(str, checkpoint)) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise WeightsError(f"{p}: holds {found}, no 'state_dict'; expected {_EXPECTED['classifier']}")
    state = checkpoint["state_dict"]
    if not isinstance(state, Mapping) or set(state) != {_WEIGHT_KEY}:
        found = sorted(map(str, state)) if isinstance(state, Mapping) else type(state).__name__
        raise WeightsError(f"{p}: 'state_dict' holds {found}; expected {_EXPECTED['classifier']}")
    return _check_matrix(p, "classifier", f"'state_dict'['{_WEIGHT_KEY}']", state[_WEIGHT_KEY])


def load_official_memory(path: str | os.PathLike | None = None) -> torch.Tensor:
    """The released text memory as float32 (80, 1024), rows as stored (unit, not renormalised); ``None``: the packaged copy."""
    p = packaged_official_files().memory if path is None else Path(path)
    _verify(p, "memory", stacklevel=3)
    memory = _check_matrix(p, "memory", "the stored object", _torch_load(p, "memory", None))
    norms = memory.norm(dim=1)
    worst = float((norms - 1).abs().max())
    if worst > _UNIT_TOLERANCE:
        raise WeightsError(f"{p}: memory rows are not unit vectors (a row norm is off by {worst:.3g}); "
                           f"expected {_EXPECTED['memory']}")
    return memory
