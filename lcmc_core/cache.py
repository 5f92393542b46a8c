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

**Faults.** A cache folder that is a file, or cannot be created, is one :class:`~lcmc_core.errors.CacheError`
or :class:`~lcmc_core.errors.WriteError` line naming the folder and ``LCMC_CACHE_DIR``. Every failed
write (disk full, read-only file system, no permission) is a :class:`~lcmc_core.errors.WriteError`
that says which of these happened and names the file (:func:`write_error`); the entry in place is
left as it was. A cache can be shared read-only: entries are written readable by everyone the umask
allows (not ``0600``), and the readers (toy world, toy CLIP checkpoints, image and text features)
read a complete entry without creating anything, taking the lock only to build a missing one.
"""
from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import CacheError, CorpusError, LcmcError, WriteError

__all__ = ["cache_dir", "default_cache_dir", "source_checkout", "user_cache_dir", "atomic_writer", "atomic_write",
           "save_torch_atomic", "load_torch", "entry_lock", "held_exclusively", "write_error", "write_problem"]

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


def _configured_cache_dir(path=None) -> tuple[Path, str]:
    """The cache folder asked for (not created) and where that choice came from, for messages."""
    if path:
        return Path(path).expanduser(), "the cache parameter"
    if os.environ.get("LCMC_CACHE_DIR"):
        return Path(os.environ["LCMC_CACHE_DIR"]).expanduser(), "LCMC_CACHE_DIR"
    return default_cache_dir(), "the default; set LCMC_CACHE_DIR to choose another"


def cache_dir(path=None) -> Path:
    """The cache folder (created): ``path``, else ``$LCMC_CACHE_DIR``, else :func:`default_cache_dir`.

    A folder that is a file, or that cannot be created, is one error line naming it and where it came from.
    """
    p, source = _configured_cache_dir(path)
    if p.is_dir():
        return p
    if p.exists():
        raise CacheError(f"lcmc's cache folder {p} (from {source}) is a file, not a folder: point LCMC_CACHE_DIR "
                         f"(or the cache parameter) at a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create lcmc's cache folder {p} (from {source}): {write_problem(exc)}; point "
                         f"LCMC_CACHE_DIR (or the cache parameter) at a folder you can write") from None
    return p


_PROBLEMS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
             errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
             errno.EPERM: "permission denied", errno.EFBIG: "the file is too large for the file system",
             errno.ENOTDIR: "a part of the path is a file, not a folder",
             errno.EISDIR: "the path is a folder, not a file",
             errno.EIO: "an input/output error (a failing disk or a lost network mount)"}


def write_problem(exc: OSError) -> str:
    """What a failed write's ``OSError`` means, in words: disk full, read-only file system, permission denied, ..."""
    code = getattr(exc, "errno", None)
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{_PROBLEMS[code]} ({reason})" if code in _PROBLEMS else reason


def _in_cache(path: Path) -> Path | None:
    """The configured cache folder when ``path`` lies inside it, else None."""
    root, _ = _configured_cache_dir()
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    except ValueError:
        return None
    return root


def write_error(path, exc: OSError, what: str = "", advice: str = "") -> WriteError:
    """The one-line :class:`WriteError` for a failed write of ``path``: what happened, the file (and the cache folder).

    ``advice`` is appended after a semicolon (e.g. what was kept and how to resume); ``exc``'s
    ``errno`` and ``strerror`` are kept on the error.
    """
    if isinstance(exc, WriteError) and not advice:
        return exc
    if isinstance(exc, WriteError):
        message = str(exc)
    else:
        message = f"cannot write {what + ' ' if what else ''}{path}: {write_problem(exc)}"
        root = _in_cache(Path(path))
        if root is not None and getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
            message += f"; it is in lcmc's cache folder {root}: free some space there, or point LCMC_CACHE_DIR elsewhere"
        elif root is not None:
            message += (f"; it is in lcmc's cache folder {root}: point LCMC_CACHE_DIR at a writable folder (complete "
                        f"entries of a read-only cache are still read)")
    err = WriteError(message + (f"; {advice}" if advice else ""))
    err.errno, err.strerror, err.filename = exc.errno, exc.strerror, getattr(exc, "filename", None) or str(path)
    return err


def _create_temporary(path: Path) -> tuple[int, str]:
    """A new file with a unique name beside ``path``, created with mode 0666 less the umask (readable like any file)."""
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unique temporary name", str(path))  # pragma: no cover


@contextlib.contextmanager
def atomic_writer(path, mode: str = "w", *, fsync: bool = True, encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a unique temporary file next to ``path`` for writing; on success sync it and rename it to ``path``.

    Any failed write (the folder, the data, the sync, the rename) removes the temporary file, leaves
    ``path`` as it was and raises :func:`write_error`'s one line (disk full, read-only, permission).
    """
    path = Path(path)
    tmp = None
    binary = "b" in mode
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temporary(path)
        # surrogateescape: a file name that is not UTF-8 (kept as surrogate escapes) is written back as its bytes
        with os.fdopen(fd, mode, **({} if binary else {"encoding": encoding, "errors": "surrogateescape"})) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, LcmcError):
            raise write_error(path, exc) from None
        raise


def atomic_write(path, data: str | bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` (text or bytes) to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, "wb" if isinstance(data, bytes) else "w", fsync=fsync) as f:
        f.write(data)
    return Path(path)


def save_torch_atomic(obj, path) -> Path:
    """``torch.save`` to a unique temporary file next to ``path``, then rename it into place.

    The bytes are serialised in memory first, so that a full disk is reported as such (torch's own
    writer turns it into an unrelated ``RuntimeError``).
    """
    import torch  # only here: the cache folder itself is needed without torch (toy world rendering)

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_writer(path, "wb") as f:
        f.write(buffer.getbuffer())
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


class _EntryLock:
    """A ``filelock.FileLock`` whose acquisition reports a lock file that cannot be created as one :class:`WriteError` line."""

    def __init__(self, path: Path, timeout: float):
        from filelock import FileLock

        self.path = path
        self.lock_file = str(path) + ".lock"
        self._lock = FileLock(self.lock_file, timeout=timeout)

    @property
    def is_locked(self) -> bool:
        """Whether this process holds the lock."""
        return self._lock.is_locked

    def acquire(self, timeout: float | None = None, **options) -> _EntryLock:
        """Take the lock (``filelock.Timeout`` when another process holds it past ``timeout``)."""
        from filelock import Timeout

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock.acquire(timeout=timeout, **options)
        except Timeout:
            raise
        except OSError as exc:
            raise write_error(self.lock_file, exc, "the lock file") from None
        return self

    def release(self, force: bool = False) -> None:
        """Release the lock."""
        self._lock.release(force=force)

    def __enter__(self) -> _EntryLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def held_exclusively(path, busy: str):
    """Hold ``path``'s lock for a whole job (a corpus being written); a second job fails at once with ``busy``.

    ``busy`` is the one-line message of the :class:`~lcmc_core.errors.CorpusError` the second job gets.
    ``filelock`` never deletes the lock file while it is held, so there is no window in which a third
    job could lock a fresh file while a second still holds the old one.
    """
    from filelock import Timeout

    lock = entry_lock(path)
    try:
        lock.acquire(timeout=0)  # a folder that cannot be written fails here, before anything is done
    except Timeout:
        raise CorpusError(busy) from None
    try:
        yield
    finally:
        lock.release()


def entry_lock(path, timeout: float = -1) -> _EntryLock:
    """An inter-process lock (``<path>.lock``) to hold while building the cache entry ``path`` (created when acquired).

    Readers of a complete entry need no lock (entries appear by an atomic rename), so a read-only
    cache is read without creating a lock file; building an entry there fails with one line.
    """
    return _EntryLock(Path(path), timeout)
