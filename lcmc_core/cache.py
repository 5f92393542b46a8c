"""Where lcmc keeps what it can rebuild (toy world, toy CLIPs, features, classifiers), and safe writes there.

The folder is ``$LCMC_CACHE_DIR`` if set, else ``~/.cache/lcmc`` (the Makefile points it at
``.cache/lcmc`` inside the checkout). Files are written to a temporary name and renamed, so a
killed job never leaves a half-written cache entry.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "save_torch_atomic"]


def cache_dir(path=None) -> Path:
    """The cache folder (created): ``path``, else ``$LCMC_CACHE_DIR``, else ``~/.cache/lcmc``."""
    p = Path(path or os.environ.get("LCMC_CACHE_DIR") or Path.home() / ".cache" / "lcmc").expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


def save_torch_atomic(obj, path) -> Path:
    """``torch.save`` to a temporary file next to ``path``, then rename it into place."""
    import torch  # only here: the cache folder itself is needed without torch (toy world rendering)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path
