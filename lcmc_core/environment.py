"""The installed Python packages against the lock file: what a rerun's environment changes.

``requirements.lock`` (written by ``make lock``, installed by ``make setup``) pins every package of
the environment to one version, with environment markers for other platforms and Pythons.
:func:`lock_differences` says which installed distributions differ from it (another version,
not locked, or locked and missing), so that a rerun whose numbers move can tell whether the
environment could be the cause; :func:`oldest_allowed` reads a dependency's lower bound from
``pyproject.toml`` (``make test-openai-oldest`` installs that release).
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .errors import ConfigError

__all__ = ["LOCK_NAME", "PROJECT", "INSTALLER_TOOLS", "LockedPackage", "Difference", "canonical_name",
           "read_lock", "installed_versions", "lock_differences", "lock_summary", "oldest_allowed",
           "find_lock", "format_differences"]

LOCK_NAME = "requirements.lock"
#: this project's own distribution (installed from the checkout, never locked)
PROJECT = "lcmc-core"
#: the installer's own tools: a virtual environment brings them, whatever the lock says
INSTALLER_TOOLS = frozenset({"pip", "setuptools", "wheel", "distribute"})


def canonical_name(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Open_CLIP.torch`` -> ``open-clip-torch``)."""
    from packaging.utils import canonicalize_name
    return str(canonicalize_name(name))


@dataclass(frozen=True)
class LockedPackage:
    """One pinned line of the lock that applies to this interpreter."""

    name: str
    version: str
    line: int


@dataclass(frozen=True)
class Difference:
    """An installed distribution that is not as the lock says (``locked`` or ``installed`` None when absent)."""

    name: str
    locked: str | None
    installed: str | None

    def __str__(self) -> str:
        if self.locked is None:
            return f"{self.name} {self.installed} (not in the lock)"
        if self.installed is None:
            return f"{self.name} missing (lock: {self.locked})"
        return f"{self.name} {self.installed} (lock: {self.locked})"


def read_lock(path: str | Path, environment: dict | None = None) -> dict[str, LockedPackage]:
    """The lock's pins that apply to this interpreter (markers evaluated), by canonical name.

    Every requirement line must pin exactly one version (``name==version``); anything else is a
    :class:`~lcmc_core.errors.ConfigError` naming the file and line.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the lock file ({e.strerror or e}); run `make lock` to write it") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the lock file is not UTF-8 text; run `make lock` to rewrite it") from None
    pins: dict[str, LockedPackage] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            raise ConfigError(f"{path}:{number}: pip options ({line.split()[0]}) do not belong in the lock; "
                              f"it holds only name==version lines")
        try:
            req = Requirement(line)
        except InvalidRequirement as e:
            raise ConfigError(f"{path}:{number}: not a requirement ({e}); expected name==version") from None
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            found = str(req.specifier) or "no version"
            raise ConfigError(f"{path}:{number}: {req.name} is not pinned to one version ({found}); every "
                              f"package of the lock must be name==version")
        if req.marker is not None and not req.marker.evaluate(environment):
            continue
        name = canonical_name(req.name)
        if name in pins and pins[name].version != specs[0].version:
            raise ConfigError(f"{path}:{number}: {req.name} is pinned twice for this interpreter "
                              f"({pins[name].version} on line {pins[name].line} and {specs[0].version})")
        pins[name] = LockedPackage(name, specs[0].version, number)
    return pins


def installed_versions() -> dict[str, str]:
    """Every distribution importable by this interpreter, by canonical name (the first one found wins, as imports do)."""
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            out.setdefault(canonical_name(name), dist.version)
    return out


def lock_differences(lock: str | Path, installed: dict[str, str] | None = None) -> list[Difference]:
    """Installed distributions that differ from the lock, sorted by name (empty: the environment is the lock).

    The project itself and the installer's tools (:data:`INSTALLER_TOOLS`) are not compared.
    """
    pins = read_lock(lock)
    installed = installed_versions() if installed is None else {canonical_name(k): v for k, v in installed.items()}
    skip = INSTALLER_TOOLS | {PROJECT}
    out = []
    for name in sorted(set(pins) | set(installed)):
        if name in skip:
            continue
        locked = pins[name].version if name in pins else None
        have = installed.get(name)
        if locked != have:
            out.append(Difference(name, locked, have))
    return out


def lock_summary(lock: str | Path | None) -> dict:
    """What the manifest records about the environment: the lock's SHA-256 and the packages that differ from it."""
    if lock is None:
        return {"lock": None, "lock_sha256": None, "differs_from_lock": None}
    path = Path(lock)
    try:
        diffs = lock_differences(path)
    except ConfigError as e:
        return {"lock": path.name, "lock_sha256": None, "differs_from_lock": None, "lock_error": str(e)}
    return {"lock": path.name, "lock_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "differs_from_lock": [str(d) for d in diffs]}


def find_lock() -> Path | None:
    """The lock file of the source checkout this package runs from, or None (an installed package has none)."""
    from .cache import source_checkout
    root = source_checkout()
    if root is None:
        return None
    path = root / LOCK_NAME
    return path if path.is_file() else None


def format_differences(diffs: list[Difference], lock: str | Path) -> str:
    """One line when the environment is the lock, else a count and one line per package."""
    if not diffs:
        return f"the installed packages are exactly {Path(lock).name} (python {sys.version.split()[0]})"
    lines = [f"{len(diffs)} installed package(s) differ from {Path(lock).name}:"]
    lines += [f"  {d}" for d in diffs]
    return "\n".join(lines)


def oldest_allowed(package: str, requirements: list[str] | None = None) -> str:
    """``name==version`` of the lowest release this project allows for ``package`` (its ``>=`` bound).

    ``requirements``: requirement strings (default: the installed project's own, from its metadata,
    extras included).
    """
    from packaging.requirements import Requirement
    from packaging.version import Version

    if requirements is None:
        requirements = metadata.requires(PROJECT) or []
    wanted = canonical_name(package)
    for text in requirements:
        req = Requirement(text)
        if canonical_name(req.name) != wanted:
            continue
        lows = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
        if not lows:
            raise ConfigError(f"pyproject.toml: {req.name} has no lower bound ({req}); add one (name>=X.Y)")
        return f"{req.name}=={max(lows, key=Version)}"
    raise ConfigError(f"{package!r} is not a dependency of {PROJECT} (pyproject.toml)")
