"""Benchmark datasets behind one call: ``load(name, root=None, split="test")``.

Every loader returns a :class:`MultiLabelDataset`. ``emoji-voc`` is the offline toy world and
needs no ``root``; real benchmarks read the user's copy from ``root``.
"""
from __future__ import annotations

from collections.abc import Callable

from ...errors import UnknownNameError
from .base import MultiLabelDataset
from .layout import DatasetFormatError, DatasetLayoutError, ImageCheckError

__all__ = ["MultiLabelDataset", "load", "available", "register", "DatasetLayoutError",
           "DatasetFormatError", "ImageCheckError"]

_LOADERS: dict[str, Callable[..., MultiLabelDataset]] = {}


def register(name: str):
    """Decorator: make a loader function available to :func:`load` under ``name``."""
    def wrap(fn):
        _LOADERS[name] = fn
        return fn
    return wrap


def available() -> list[str]:
    """Names accepted by :func:`load`."""
    _import_loaders()
    return sorted(_LOADERS)


def load(name: str, root=None, split: str = "test", **options) -> MultiLabelDataset:
    """Load a benchmark split as a :class:`MultiLabelDataset`."""
    _import_loaders()
    if name not in _LOADERS:
        raise UnknownNameError(f"unknown dataset {name!r}; expected one of {sorted(_LOADERS)}")
    return _LOADERS[name](root=root, split=split, **options)


def _import_loaders():
    # Loaders register themselves on import; imported lazily to keep `import lcmc_core` light.
    from . import (  # noqa: F401
        coco2014,
        emoji_voc,
        nuswide,
        voc2007,
    )
