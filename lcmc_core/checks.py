"""Argument checks shared by every module: one wording for "expected X, got Y" errors that name the parameter."""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["is_int", "is_real", "check_int", "check_real", "check_choice", "as_tensor", "all_finite"]


def is_int(x: Any) -> bool:
    """True for Python or numpy integers (never for bools)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def is_real(x: Any) -> bool:
    """True for finite real numbers (ints included, bools excluded)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int, or a ``ValueError`` naming ``name`` and the accepted range."""
    if not is_int(value) or (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{name}: expected an integer{_range(low, high)}, got {value!r}")
    return int(value)


def check_real(name: str, value: Any, low: float | None = None, high: float | None = None, *,
               low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float, or a ``ValueError`` naming ``name`` and the accepted range (bounds closed unless ``*_open``)."""
    ok = is_real(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ConfigError(f"{name}: expected a finite number{_range(low, high, low_open, high_open)}, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, allowed: Sequence) -> Any:
    """``value`` if it is one of ``allowed``, else a ``ValueError`` naming ``name`` and the choices."""
    if value not in allowed:
        raise ConfigError(f"{name}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def as_tensor(x: Any, name: str, floating: bool = False):
    """``x`` as a torch tensor (numpy arrays and nested lists converted), or a ``TypeError`` naming ``name``."""
    import torch

    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(np.asarray(x))
        except Exception as exc:
            raise TypeError(f"{name}: expected a torch tensor or numpy array, got {type(x).__name__}") from exc
    if floating and not torch.is_floating_point(x):
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    return x


def all_finite(x, rows: int = 8192) -> bool:
    """True when a tensor holds no NaN or infinity; checked ``rows`` rows at a time (``torch.isfinite`` needs ~2x the tensor)."""
    if x.ndim == 0:
        return bool(x.isfinite())
    return all(bool(block.isfinite().all()) for block in x.split(rows))


def _range(low, high, low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""
