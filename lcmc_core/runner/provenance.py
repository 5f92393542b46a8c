"""What a run records about itself: package versions, the git commit, the machine, and the manifest file.

The manifest (``manifest.json`` in the results folder) says what ran, with which parameters, where,
for how long and how it ended. It holds no environment variables and no host name; paths in it are
relative to the results folder, and everything written passes through :func:`lcmc_core.secrets.redact`.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..cache import atomic_write
from ..secrets import redact

__all__ = ["PACKAGES", "package_versions", "git_info", "system_info", "now", "relative", "write_manifest",
           "read_manifest"]

# Distributions whose versions the manifest records (absent ones are recorded as null).
PACKAGES = ("lcmc_core", "torch", "torchvision", "open_clip_torch", "numpy", "pandas", "scikit-learn",
            "scipy", "matplotlib", "seaborn", "pillow", "pyyaml", "tqdm", "openai", "transformers",
            "papermill", "nbconvert", "nbformat", "nbclient", "ipykernel", "jupyter_client", "tabulate")


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of the given distributions (None when absent)."""
    from importlib import metadata
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_info(folder: str | os.PathLike, exclude: str | os.PathLike | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the git checkout holding ``folder`` (``exclude``: a folder not counted as dirty)."""
    def git(*args) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if not top:
        return {"commit": None, "dirty": None}
    commit = git("rev-parse", "HEAD")
    pathspec = ["--", "."]
    if exclude is not None:
        try:
            rel = Path(exclude).resolve().relative_to(Path(top).resolve())
            pathspec.append(f":(exclude){rel.as_posix()}")
        except ValueError:
            pass
    status = git("-C", top, "status", "--porcelain", "--untracked-files=normal", *pathspec)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def system_info() -> dict[str, Any]:
    """Python, platform, CPU count, torch threads and GPU name (no environment variables, no host name)."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    if hasattr(os, "sched_getaffinity"):
        info["cpu_usable"] = len(os.sched_getaffinity(0))
    try:
        import torch
        info["torch_threads"] = torch.get_num_threads()
        info["cuda_available"] = bool(torch.cuda.is_available())
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        info["gpu_count"] = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # torch absent or broken: record what we have
        info.update(torch_threads=None, cuda_available=None, gpu=None)
    return info


def now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (posix), or as given when it lies elsewhere."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def write_manifest(path: Path, manifest: dict) -> None:
    """Write the manifest atomically, secrets redacted."""
    atomic_write(path, redact(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n"))


def read_manifest(path: Path) -> dict | None:
    """The manifest at ``path`` as a dict, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
