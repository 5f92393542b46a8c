"""Where lcmc keeps what it can rebuild (toy world, toy CLIPs, features, classifiers), and safe writes there.

The folder is ``$LCMC_CACHE_DIR`` if set, else ``.cache/lcmc`` of the checkout when the package
runs from one (a source tree with ``pyproject.toml`` beside ``lcmc_core/``: the folder the Makefile
uses too, ``$(CURDIR)/.cache/lcmc``), else the user's cache folder (``$XDG_CACHE_HOME/lcmc``,
by default ``~/.cache/lcmc``), as for an installed package. Every file is written
through :func:`atomic_writer`: to a temporary file with a unique name in the same folder, synced,
then renamed into place, so a killed job never leaves a half-written entry and two jobs writing
the same entry never trip over each other's temporary files. :func:`entry_lock` is the lock two
processes take before building the same entry; :func:`load_torch` reads a cached ``torch.save``
file and turns a damaged one into ``None`` (rebuild) instead of a bare ``EOFError``.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["cache_dir", "default_cache_dir", "source_checkout", "user_cache_dir", "atomic_writer", "atomic_write",
           "save_torch_atomic", "load_torch", "entry_lock"]

_CHECKOUT = Path(__file__).resolve().parents[1]


def source_checkout(folder: Path | None = None) -> Path | None:
    """The source tree the package runs from (``pyproject.toml`` naming lcmc_core beside ``lcmc_core/``), else None.

    An installed package (``site-packages/lcmc_core``) has no ``pyproject.toml`` beside it.
    """
    folder = _CHECKOUT if folder is None else Path(folder)
    project = folder / "pyproject.toml"
    if not (project.is_file() and (folder / "lcmc_core" / "__init__.py").is_file()):
        return None
    try:
        text = project.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return folder if "lcmc_core" in text else None


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/lcmc`` (``~/.cache/lcmc`` when unset): where an installed package keeps its cache."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    return (Path(base).expanduser() if os.path.isabs(os.path.expanduser(base)) else Path.home() / ".cache") / "lcmc"


def default_cache_dir() -> Path:
    """``<checkout>/.cache/lcmc`` when the package runs from a checkout (as the Makefile), else :func:`user_cache_dir`."""
    checkout = source_checkout()
    return checkout / ".cache" / "lcmc" if checkout is not None else user_cache_dir()


def cache_dir(path=None) -> Path:
    """The cache folder (created): ``path``, else ``$LCMC_CACHE_DIR``, else :func:`default_cache_dir`."""
    p = Path(path or os.environ.get("LCMC_CACHE_DIR") or default_cache_dir()).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


@contextlib.contextmanager
def atomic_writer(path, mode: str = "w", *, fsync: bool = True, encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a unique temporary file next to ``path`` for writing; on success sync it and rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, **({} if binary else {"encoding": encoding})) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(path, data: str | bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` (text or bytes) to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, "wb" if isinstance(data, bytes) else "w", fsync=fsync) as f:
        f.write(data)
    return Path(path)


def save_torch_atomic(obj, path) -> Path:
    """``torch.save`` to a unique temporary file next to ``path``, then rename it into place."""
    import torch  # only here: the cache folder itself is needed without torch (toy world rendering)

    with atomic_writer(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)


def load_torch(path, what: str = "cache entry", weights_only: bool = True):
    """``torch.load`` a cached file; ``None`` (with a warning, file removed) when it is damaged, so the caller rebuilds it."""
    import pickle

    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except FileNotFoundError:
        return None
    except (EOFError, pickle.UnpicklingError, RuntimeError, ValueError, OSError, KeyError, IndexError) as exc:
        detail = (str(exc).splitlines() or [""])[0][:120]
        warnings.warn(f"{what} {path} is damaged ({type(exc).__name__}{': ' + detail if detail else ''}); "
                      f"deleting it and rebuilding", RuntimeWarning, stacklevel=2)
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def entry_lock(path, timeout: float = -1):
    """An inter-process lock (``<path>.lock``) to hold while building the cache entry ``path``."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock", timeout=timeout)
