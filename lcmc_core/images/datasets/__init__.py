"""Benchmark datasets behind one call: ``load(name, root=None, split="test")``.

Every loader returns a :class:`MultiLabelDataset`. ``emoji-voc`` is the offline toy world and
needs no ``root``; real benchmarks read the user's copy from ``root``. The name -> loader table
lives in :mod:`.registry` (each dataset module registers itself there); the dataset modules are
imported on the first lookup, to keep ``import lcmc_core`` light.
"""
from __future__ import annotations

from ...errors import UnknownNameError
from .base import MultiLabelDataset
from .layout import DatasetFormatError, DatasetLayoutError, ImageCheckError
from .registry import loaders, register

__all__ = ["MultiLabelDataset", "load", "available", "register", "DatasetLayoutError",
           "DatasetFormatError", "ImageCheckError"]


def available() -> list[str]:
    """Names accepted by :func:`load`."""
    _import_loaders()
    return sorted(loaders())


def load(name: str, root=None, split: str = "test", **options) -> MultiLabelDataset:
    """Load a benchmark split as a :class:`MultiLabelDataset`."""
    _import_loaders()
    table = loaders()
    if name not in table:
        raise UnknownNameError(f"unknown dataset {name!r}; expected one of {sorted(table)}")
    return table[name](root=root, split=split, **options)


def _import_loaders():
    # Loaders register themselves on import (in .registry); imported lazily to keep `import lcmc_core` light.
    from . import (  # noqa: F401
        coco2014,
        emoji_voc,
        nuswide,
        voc2007,
    )
