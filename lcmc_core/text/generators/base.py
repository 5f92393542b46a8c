"""What every sentence generator shares: requests in, responses out, and the machinery of LLM-backed generators.

A generator turns :class:`Request` objects (one per plan entry of :mod:`lcmc_core.text.corpus`:
the labels to name and the prompt to send) into :class:`Response` objects (the sentence, matched by
``index``). :class:`SentenceGenerator` is the one-method protocol; :class:`LLMGenerator` adds what
the LLM generators (:mod:`.openai`, :mod:`.hf`) share: a deadline-aware ``generate``, per-call
statistics (:class:`GeneratorStats`), token prices, secret scrubbing, and the retry arithmetic
(:func:`backoff_delay`, :func:`parse_retry_after`) and the lenient reading of token counts
(:func:`token_count`).
"""
from __future__ import annotations

import abc
import email.utils
import math
import numbers
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ...errors import ConfigError, LcmcError

__all__ = ["Request", "Response", "SentenceGenerator", "LLMError", "GeneratorStats", "LLMGenerator",
           "check_prices", "backoff_delay", "parse_retry_after", "token_count"]


@dataclass(frozen=True)
class Request:
    """One generation request: ask for a sentence naming ``label_names`` (classes ``label_ids``)."""

    index: int                      # position in the plan; identifies the request everywhere
    label_ids: tuple[int, ...]      # class indices, in prompt order
    label_names: tuple[str, ...]    # the classes' prompt names, in the same order
    prompt: str                     # the text sent to an LLM


@dataclass(frozen=True)
class Response:
    """A generated sentence for request ``index``; ``meta`` holds generator details (model, tokens...)."""

    index: int
    text: str
    source: str = "unknown"
    meta: dict = field(default_factory=dict)



class SentenceGenerator(abc.ABC):
    """Turns requests into sentences.

    ``generate`` yields one :class:`Response` per request it could answer, matched by
    ``index``; responses may come in any order (concurrent LLM calls) and failed requests may
    be left out (the caller can retry them later, see :func:`lcmc_core.text.corpus.completed_indices`). ``source`` is
    written to every record.
    """

    source: str = "unknown"

    @abc.abstractmethod
    def generate(self, requests: Iterable[Request]) -> Iterator[Response]:
        """Yield a :class:`Response` for each request answered."""



class LLMError(LcmcError, RuntimeError):
    """A failure that retrying cannot fix (bad key, no quota, unknown model or endpoint); the message never holds the key."""


@dataclass
class GeneratorStats:
    """What one ``generate`` call did: attempts, retries and failures by reason, tokens, cost, notes.

    ``notes`` counts answers that were kept but had something odd about them (e.g.
    ``usage_unreadable``: a token count that is not a non-negative number, counted as unknown).
    """

    attempts: int = 0
    responses: int = 0
    retries: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    notes: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        """The statistics as plain JSON-ready values."""
        return {"attempts": self.attempts, "responses": self.responses,
                "retries_by_reason": dict(sorted(self.retries.items())),
                "failed_by_reason": dict(sorted(self.failures.items())),
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost": self.cost, "notes": dict(sorted(self.notes.items()))}


class LLMGenerator(SentenceGenerator):
    """Base of the LLM generators: a deadline-aware ``generate``, statistics, prices, secret scrubbing."""

    source = "llm"
    price_prompt_per_1k: float | None = None
    price_completion_per_1k: float | None = None

    def __init__(self):
        self.stats = GeneratorStats()
        self._stats_lock = threading.Lock()

    def generate(self, requests: Iterable[Request], deadline: float | None = None) -> Iterator[Response]:
        """Yield a Response per answered request; start nothing after ``deadline`` (``time.monotonic()``)."""
        raise NotImplementedError

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Cost of the given token counts at this generator's per-1k prices (None without prices)."""
        if self.price_prompt_per_1k is None and self.price_completion_per_1k is None:
            return None
        return (prompt_tokens * (self.price_prompt_per_1k or 0.0)
                + completion_tokens * (self.price_completion_per_1k or 0.0)) / 1000.0

    def describe(self) -> dict:
        """Settings safe to store in a summary (never the key)."""
        return {"source": self.source}

    def redact(self, text: str) -> str:
        """Return ``text`` with any secret this generator holds replaced by ``***``."""
        return text

    def _reset_stats(self) -> None:
        with self._stats_lock:
            self.stats = GeneratorStats()

    def _count(self, *, attempts: int = 0, responses: int = 0, retry: str | None = None,
               failure: str | None = None, prompt_tokens: int = 0, completion_tokens: int = 0,
               note: str | None = None) -> None:
        with self._stats_lock:
            s = self.stats
            s.attempts += attempts
            s.responses += responses
            if retry:
                s.retries[retry] += 1
            if failure:
                s.failures[failure] += 1
            if note:
                s.notes[note] += 1
            s.prompt_tokens += prompt_tokens
            s.completion_tokens += completion_tokens
            s.cost = self.cost(s.prompt_tokens, s.completion_tokens)


def check_prices(owner: str, prompt: float | None, completion: float | None) -> None:
    """Refuse a price that is not a finite non-negative number (or None), naming it."""
    for name, value in (("price_prompt_per_1k", prompt), ("price_completion_per_1k", completion)):
        if value is not None and not (isinstance(value, numbers.Real) and not isinstance(value, bool)
                                      and math.isfinite(value) and value >= 0):
            raise ConfigError(f"{owner}: {name} must be a finite non-negative number (price per 1,000 tokens) "
                             f"or None, got {value!r}")


def token_count(value) -> int | None:
    """A token count as an int, read leniently: ints, integral floats and numeric strings (``"12"``, ``"12.0"``).

    Negative, fractional, NaN, infinite, boolean or unreadable values give ``None`` (unknown), so a
    server's odd ``usage`` never throws away its answer nor makes a total negative.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 30:
            return None
        try:
            value = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            return None
    if isinstance(value, numbers.Integral):
        return int(value) if value >= 0 else None
    if isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0 and float(value).is_integer():
        return int(value)
    return None


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): ``d/2 + U(0, d/2)``, ``d = min(max_s, base_s 2**(a-1))``."""
    d = min(float(max_s), float(base_s) * 2.0 ** (max(int(attempt), 1) - 1))
    return d / 2 + (rng or random).uniform(0, d / 2)


def parse_retry_after(headers) -> float | None:
    """Seconds asked for by ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date); None if absent or unreadable."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except (TypeError, ValueError):
            if name != "retry-after":
                continue
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                continue
            if when is None:
                continue
            seconds = when.timestamp() - time.time()
        if seconds == seconds:  # not NaN
            return max(0.0, seconds)
    return None
