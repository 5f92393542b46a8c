"""The errors a user of lcmc can cause, under one base class, so that the command line can print them in one line.

Every error that bad input, a missing file or a misbehaving service raises derives from
:class:`LcmcError` (and from the matching built-in class, so ``except ValueError`` or ``except
FileNotFoundError`` keep working). ``python -m lcmc_core`` catches :class:`LcmcError`, prints its
message and exits with status 2; any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

__all__ = ["LcmcError", "ConfigError", "UnknownNameError", "MissingFileError", "WeightsError",
           "WeightsUnavailableError", "CacheError", "CorpusError", "WriteError", "EmptyCorpusError"]


class LcmcError(Exception):
    """Base class of every error a user can cause (bad parameters, files, datasets, endpoints)."""

    def __str__(self) -> str:  # some built-in bases (KeyError, OSError) would decorate the message
        return str(self.args[0]) if self.args else self.__class__.__name__


class ConfigError(LcmcError, ValueError):
    """A profile, a parameter or a command-line override is invalid."""


class UnknownNameError(LcmcError, KeyError, ValueError):
    """A name (model, dataset, label set, variant, generator) is not one of those known (a bad value and a failed lookup)."""


class MissingFileError(LcmcError, FileNotFoundError):
    """A file the user named does not exist."""


class WeightsError(LcmcError, RuntimeError):
    """Model weights cannot be used: unreadable file, wrong architecture, wrong activation."""


class WeightsUnavailableError(WeightsError):
    """Pretrained weights were asked for but cannot be found locally or downloaded."""


class CacheError(LcmcError, RuntimeError):
    """A cache entry is damaged in a way that cannot be rebuilt automatically; the message says what to delete."""


class CorpusError(LcmcError, ValueError):
    """A corpus file or record is malformed (the message names the file and line)."""


class WriteError(LcmcError, OSError):
    """A file cannot be written (disk full, read-only file system, no permission); the message names the file and the cause.

    ``errno`` and ``filename`` are those of the operating-system error, so ``except OSError`` code keeps working.
    """


class EmptyCorpusError(CorpusError):
    """A corpus job answered every request but accepted no sentence; ``summary`` is what it wrote (every file is kept)."""

    def __init__(self, message: str, summary=None):
        super().__init__(message)
        self.summary = summary
