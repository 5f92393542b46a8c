"""What a run records about itself: package versions, the git commit, the machine, and the manifest file.

The manifest (``manifest.json`` in the results folder) says what ran, with which parameters, where,
for how long and how it ended. It holds no environment variables and no host name; paths in it are
relative to the results folder, and everything written passes through :func:`lcmc_core.secrets.redact`.

:class:`PathScrubber` keeps machine paths out of what a run writes (the manifest, the executed
notebooks and their HTML): the results folder, the checkout, the cache folder, the Python
installation, the temporary folder and the home folder are replaced by relative paths or by
placeholders (:data:`PLACEHOLDERS`), so results committed from one machine name nothing of it.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..cache import atomic_write
from ..secrets import redact

__all__ = ["PACKAGES", "package_versions", "git_info", "git_toplevel", "package_checkout", "system_info", "now",
           "relative", "is_within", "write_manifest", "read_manifest", "PathScrubber", "PLACEHOLDERS"]

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


def git_toplevel(folder: str | os.PathLike) -> Path | None:
    """The top folder of the git checkout holding ``folder``, or None (no git, or not a checkout)."""
    try:
        r = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True,
                           text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(r.stdout.strip()) if r.returncode == 0 and r.stdout.strip() else None


def package_checkout() -> Path | None:
    """The source tree holding ``lcmc_core`` when the package runs from one (pyproject.toml beside it), else None."""
    from ..cache import source_checkout
    return source_checkout()


def system_info() -> dict[str, Any]:
    """Python, platform, CPU model and count, torch threads and CPU kernels, GPU name (no environment variables,
    no host name)."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    if hasattr(os, "sched_getaffinity"):
        info["cpu_usable"] = len(os.sched_getaffinity(0))
    info["cpu_model"] = _cpu_model()
    try:
        import torch
        info["torch_threads"] = torch.get_num_threads()
        # the vector kernels torch uses (AVX2, AVX512, ...): trained toy CLIPs can differ between them
        info["torch_cpu_capability"] = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability",
                                               lambda: None)()
        info["cuda_available"] = bool(torch.cuda.is_available())
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        info["gpu_count"] = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # torch absent or broken: record what we have
        info.update(torch_threads=None, cuda_available=None, gpu=None)
    return info


def _cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`), or None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or None


def now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (posix), or as given when it lies elsewhere."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def write_manifest(path: Path, manifest: dict, scrubber: PathScrubber | None = None) -> None:
    """Write the manifest atomically, secrets redacted (and machine paths replaced, given a :class:`PathScrubber`)."""
    text = redact(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
    atomic_write(path, scrubber.scrub(text) if scrubber is not None else text)


def read_manifest(path: Path) -> dict | None:
    """The manifest at ``path`` as a dict, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


#: What :class:`PathScrubber` writes instead of a machine path (the checkout becomes relative paths).
PLACEHOLDERS = {
    "out_dir": "$RESULTS_DIR",       # the results folder, when it lies outside the checkout
    "cache": "$LCMC_CACHE_DIR",      # lcmc's cache folder (lcmc_core.cache.cache_dir)
    "python": "$PYTHON_PREFIX",      # sys.prefix (the virtual environment) outside the checkout
    "python_base": "$PYTHON_BASE",   # sys.base_prefix (the Python installation)
    "tmp": "$TMPDIR",                # the temporary folder (tempfile.gettempdir())
    "home": "~",                     # the home folder
}
# characters that continue a path: a prefix only matches where the path does not go on with one of these
_PATH_CHAR = re.compile(r"[\w.~+-]")
# an ANSI colour code just before a path (IPython's tracebacks) does not make it part of a longer word
_ANSI_BEFORE = re.compile(r"(?:\x1b|\\u001b|\\x1b|\\033)\[[0-9;]*m$")


class PathScrubber:
    """Replace this machine's absolute paths in text by relative paths or placeholders.

    ``out_dir`` (the results folder) becomes its path relative to the checkout when it lies inside
    it (``results/toy``), else ``$RESULTS_DIR``; the checkout (``checkouts``: the git checkout of
    the notebooks and the source tree of the package) becomes relative (``/home/u/lcmc/notebooks/x``
    -> ``notebooks/x``, the bare folder -> ``.``); the cache folder ``$LCMC_CACHE_DIR``; Python's
    prefixes (outside the checkout), the temporary folder and the home folder their placeholders in
    :data:`PLACEHOLDERS`. Longer (more specific) prefixes are replaced first, and a prefix matches
    only where a path starts and ends (``/work/main`` leaves ``/x/work/main`` and ``/work/mainline``
    alone; an ANSI colour code just before a path, as in IPython's tracebacks, still counts as a
    start). Prefixes too short to be specific (``/``, ``/usr``) are left alone.
    """

    def __init__(self, out_dir: str | os.PathLike | None = None, checkouts: Iterable[str | os.PathLike] = (),
                 cache: str | os.PathLike | None = None, extra: dict[str, str] | None = None):
        """``extra``: more ``{path: replacement}`` pairs (the runner passes the dataset folder as ``$DATA_ROOT``)."""
        self.pairs: dict[str, str] = {}
        roots = [Path(c) for c in checkouts if c]

        def inside(path) -> Path | None:
            return next((r for r in roots if is_within(Path(path), r)), None)

        if out_dir:
            root = inside(out_dir)
            self._add(out_dir, relative(Path(out_dir), root) if root else PLACEHOLDERS["out_dir"])
        if cache:
            self._add(cache, PLACEHOLDERS["cache"])
        for root in roots:
            self._add(root, ".", under="")
        for path, replacement in (extra or {}).items():
            self._add(path, replacement)
        for prefix, key in ((sys.prefix, "python"), (sys.base_prefix, "python_base")):
            if not inside(prefix):
                self._add(prefix, PLACEHOLDERS[key])
        self._add(tempfile.gettempdir(), PLACEHOLDERS["tmp"])
        self._add(os.path.expanduser("~"), PLACEHOLDERS["home"])
        self.pairs = dict(sorted(self.pairs.items(), key=lambda kv: len(kv[0]), reverse=True))
        self._pattern = re.compile("|".join(re.escape(p) for p in self.pairs)) if self.pairs else None

    def _add(self, path, replacement: str, under: str | None = None) -> None:
        """Map ``path`` (as given and with links resolved) to ``replacement``, and ``path/`` to ``under`` if given."""
        if not path:
            return
        for variant in {os.path.abspath(os.fspath(path)), os.path.realpath(os.fspath(path))}:
            variant = variant.rstrip("/\\") or variant
            if len(Path(variant).parts) < 2 or variant in ("/usr", "/usr/local", "/opt", "/var"):
                continue  # "/" or a system folder: replacing it would rewrite unrelated paths
            self.pairs.setdefault(variant, replacement)
            for sep in ("/", "\\") if under is not None else ():
                self.pairs.setdefault(variant + sep, under)

    def scrub(self, text: str) -> str:
        """``text`` with every known machine path replaced."""
        if self._pattern is None or not text:
            return text

        def sub(m: re.Match) -> str:
            found, start, end = m.group(0), m.start(), m.end()
            if start > 0:
                before = text[start - 1]
                if before in "/\\":
                    return found  # the middle of a longer path
                if _PATH_CHAR.match(before) and not _ANSI_BEFORE.search(text[max(0, start - 16):start]):
                    return found  # the end of a longer word
            if not found.endswith(("/", "\\")) and end < len(text) and _PATH_CHAR.match(text[end]):
                return found  # /work/main followed by "line": another folder
            return self.pairs[found]

        return self._pattern.sub(sub, text)

    def scrub_file(self, path: str | os.PathLike) -> bool:
        """Rewrite a text file with :meth:`scrub` applied (atomically); True if anything changed."""
        path = Path(path)
        if not path.is_file():
            return False
        text = path.read_text(encoding="utf-8")
        clean = self.scrub(text)
        if clean == text:
            return False
        atomic_write(path, clean)
        return True


def is_within(path: Path, root: Path) -> bool:
    """Whether ``path`` lies inside ``root`` (links resolved)."""
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False
