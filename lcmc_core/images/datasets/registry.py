"""The dataset registry: the name -> loader table that :func:`lcmc_core.images.datasets.load` looks names up in.

Each dataset module registers its loader with :func:`register` when it is imported; the package
(``lcmc_core.images.datasets``) imports those modules when a name is first looked up. This module
imports no dataset module, so the dataset modules and the package depend on it, never the
other way round (no import cycle).
"""
from __future__ import annotations

from collections.abc import Callable

from .base import MultiLabelDataset

__all__ = ["register", "loaders"]

_LOADERS: dict[str, Callable[..., MultiLabelDataset]] = {}


def register(name: str):
    """Decorator: make a loader function available to ``datasets.load`` under ``name``."""
    def wrap(fn):
        _LOADERS[name] = fn
        return fn
    return wrap


def loaders() -> dict[str, Callable[..., MultiLabelDataset]]:
    """The registered loaders by name (a copy)."""
    return dict(_LOADERS)
