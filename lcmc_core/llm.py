"""Sentence generators backed by large language models: any OpenAI-compatible API, or a local Hugging Face model.

CoMC's training corpus is written by an LLM: for each plan entry the model is asked the paper's
prompt ("Please make a brief sentence to describe a photo that contains dog, cat.") and its
answer becomes one training sentence. This module provides two
:class:`~lcmc_core.corpus.SentenceGenerator` implementations; the resumable, validated job
that drives them and writes the corpus is :func:`lcmc_core.generation.generate_corpus`.

:class:`OpenAIGenerator` (``generator="openai"``) talks to any OpenAI-compatible
chat-completions endpoint (OpenAI, Azure-style proxies, vLLM, llama.cpp, Ollama...) through
the ``openai`` client:

- parameters: ``model``, ``base_url``, ``temperature``, ``max_tokens`` (either may be ``None``
  to leave it out, for models that refuse it; other fields go in ``extra_body``, e.g.
  ``{"max_completion_tokens": 40}``), an optional ``system_prompt``, per-attempt ``timeout_s``;
  ``api="chat"`` (``POST /chat/completions``, the default) or ``api="completions"`` (the legacy
  ``POST /completions`` of base models such as the paper's ``davinci-002``);
- the API key is read from an environment variable whose **name** is given
  (``api_key_env="OPENAI_API_KEY"``); the key itself is never a parameter, and it never appears
  in ``repr``/``str`` of the generator, in its errors, logs, statistics or responses (every
  message that comes back from the server is scrubbed of it). ``api_key_env=None`` is for
  local servers that need no key;
- ``concurrency`` requests in flight at once (a thread pool);
- our own retries (the client's are disabled with ``max_retries=0``): on 429 (waiting at least
  the server's ``Retry-After`` / ``retry-after-ms``), 408/409/5xx, timeouts, dropped
  connections and malformed bodies, with exponential backoff and jitter: attempt ``a``
  (1-based) waits ``d/2 + U(0, d/2)`` with ``d = min(backoff_max_s, backoff_base_s * 2**(a-1))``;
  at most ``max_attempts`` attempts per request. 401/403/404 and a 429 with code
  ``insufficient_quota`` stop the whole run with :class:`LLMError` (retrying cannot help);
  other 4xx fail only that request; ``max_consecutive_failures`` (20) requests failing in a row
  (after their retries) also stop the run (the endpoint is down or misconfigured);
- a deadline (``generate(requests, deadline=...)``, a ``time.monotonic()`` value): no request
  starts after it, attempt timeouts and backoff sleeps are cut to it, so a run ends cleanly
  close to it and keeps every answer that arrived;
- token and cost accounting: prompt and completion tokens from each answer's ``usage``; cost
  from the optional prices ``price_prompt_per_1k`` / ``price_completion_per_1k`` (any currency,
  per 1,000 tokens), ``None`` when no price is given.

:class:`TransformersGenerator` (``generator="transformers"``) runs a local Hugging Face causal
LM with its chat template, in batches (``pip install -e .[transformers]``; ``transformers`` is
imported only when the generator is built). Sampling is seeded per batch from ``(seed, first
plan index of the batch)`` without touching the global torch RNG; with ``do_sample=False`` each
answer depends on its prompt only.

Both report per-call statistics in :attr:`LLMGenerator.stats` (:class:`GeneratorStats`) and put
``prompt_tokens``, ``completion_tokens``, ``finish_reason`` and ``model`` in each
:class:`~lcmc_core.corpus.Response`'s ``meta``. Failed requests are left out of the output
(the :class:`~lcmc_core.corpus.SentenceGenerator` contract) and counted by reason in the stats,
so a rerun of the job asks for them again.
"""
from __future__ import annotations

import email.utils
import logging
import os
import random
import re
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Union
from urllib.parse import urlsplit, urlunsplit

from .corpus import Request, Response, SentenceGenerator

__all__ = ["LLMError", "GeneratorStats", "LLMGenerator", "OpenAIGenerator", "TransformersGenerator",
           "make_generator", "backoff_delay", "parse_retry_after", "safe_url", "TRANSFORMERS_HINT"]

log = logging.getLogger(__name__)

#: How to install the optional ``transformers`` extra (used in error messages).
TRANSFORMERS_HINT = ("the 'transformers' generator needs the optional extra: run "
                     "`pip install -e .[transformers]` in the repository (or `pip install transformers "
                     "accelerate`)")

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Servers that echo the key partially masked ("Incorrect API key provided: sk-ab***xyz").
_KEY_ECHO_RE = re.compile(r"(api[ _-]?key(?: provided)?\s*[:=]\s*)[^\s'\",;}\]]+", re.I)


class LLMError(RuntimeError):
    """A failure that retrying cannot fix (bad key, no quota, unknown model or endpoint); the message never holds the key."""


@dataclass
class GeneratorStats:
    """What one ``generate`` call did: attempts, retries and failures by reason, tokens, cost."""

    attempts: int = 0
    responses: int = 0
    retries: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Optional[float] = None

    def as_dict(self) -> dict:
        """The statistics as plain JSON-ready values."""
        return {"attempts": self.attempts, "responses": self.responses,
                "retries_by_reason": dict(sorted(self.retries.items())),
                "failed_by_reason": dict(sorted(self.failures.items())),
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost": self.cost}


class LLMGenerator(SentenceGenerator):
    """Base of the LLM generators: a deadline-aware ``generate``, statistics, prices, secret scrubbing."""

    source = "llm"
    price_prompt_per_1k: Optional[float] = None
    price_completion_per_1k: Optional[float] = None

    def __init__(self):
        self.stats = GeneratorStats()
        self._stats_lock = threading.Lock()

    def generate(self, requests: Iterable[Request], deadline: Optional[float] = None) -> Iterator[Response]:
        """Yield a Response per answered request; start nothing after ``deadline`` (``time.monotonic()``)."""
        raise NotImplementedError

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Optional[float]:
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

    def _count(self, *, attempts: int = 0, responses: int = 0, retry: Optional[str] = None,
               failure: Optional[str] = None, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        with self._stats_lock:
            s = self.stats
            s.attempts += attempts
            s.responses += responses
            if retry:
                s.retries[retry] += 1
            if failure:
                s.failures[failure] += 1
            s.prompt_tokens += prompt_tokens
            s.completion_tokens += completion_tokens
            s.cost = self.cost(s.prompt_tokens, s.completion_tokens)


def _check_prices(owner: str, prompt: Optional[float], completion: Optional[float]) -> None:
    for name, value in (("price_prompt_per_1k", prompt), ("price_completion_per_1k", completion)):
        if value is not None and not (isinstance(value, (int, float)) and value >= 0):
            raise ValueError(f"{owner}: {name} must be a non-negative number (price per 1,000 tokens) "
                             f"or None, got {value!r}")


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: Optional[random.Random] = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): ``d/2 + U(0, d/2)``, ``d = min(max_s, base_s * 2**(attempt-1))``."""
    d = min(float(max_s), float(base_s) * 2.0 ** (max(int(attempt), 1) - 1))
    return d / 2 + (rng or random).uniform(0, d / 2)


def parse_retry_after(headers) -> Optional[float]:
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


def safe_url(url: Optional[str]) -> Optional[str]:
    """``url`` without user info and query string (where credentials may hide), for logs and summaries."""
    if url is None:
        return None
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass
class _Failed:
    reason: str
    message: str = ""


@dataclass
class _Fatal:
    message: str


class OpenAIGenerator(LLMGenerator):
    """Sentences from an OpenAI-compatible chat-completions endpoint (concurrent, retried, budgeted, accounted).

    See the module docstring for the retry, deadline and accounting rules. ``source`` (written
    to every corpus record) is ``"openai:<model>"``.
    """

    def __init__(self, model: str, *, base_url: Optional[str] = None,
                 api_key_env: Optional[str] = "OPENAI_API_KEY", temperature: Optional[float] = 1.0,
                 max_tokens: Optional[int] = 40, system_prompt: Optional[str] = None,
                 api: str = "chat", concurrency: int = 8,
                 timeout_s: float = 60.0, max_attempts: int = 6, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 60.0, retry_after_max_s: float = 300.0,
                 price_prompt_per_1k: Optional[float] = None,
                 price_completion_per_1k: Optional[float] = None, extra_body: Optional[dict] = None,
                 max_consecutive_failures: Optional[int] = 20, jitter_seed: Optional[int] = None):
        super().__init__()
        owner = "OpenAIGenerator"
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"{owner}: model must be a non-empty model name such as 'gpt-4o-mini', got {model!r}")
        if api_key_env is not None and (not isinstance(api_key_env, str) or not _ENV_NAME_RE.match(api_key_env)):
            # Never echo the value: it may be a key pasted by mistake.
            raise ValueError(f"{owner}: api_key_env must be the *name* of an environment variable "
                             f"(letters, digits, underscores, e.g. 'OPENAI_API_KEY'), not the key itself "
                             f"(got a {type(api_key_env).__name__} that is not such a name)")
        for name, value, optional in (("concurrency", concurrency, False), ("max_attempts", max_attempts, False),
                                      ("max_tokens", max_tokens, True),
                                      ("max_consecutive_failures", max_consecutive_failures, True)):
            if optional and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{owner}: {name} must be an integer >= 1{' or None' if optional else ''}, "
                                 f"got {value!r}")
        for name, value in (("timeout_s", timeout_s), ("backoff_base_s", backoff_base_s),
                            ("backoff_max_s", backoff_max_s), ("retry_after_max_s", retry_after_max_s)):
            if not isinstance(value, (int, float)) or value < 0 or (name == "timeout_s" and value <= 0):
                raise ValueError(f"{owner}: {name} must be a {'positive' if name == 'timeout_s' else 'non-negative'} "
                                 f"number of seconds, got {value!r}")
        if temperature is not None and (not isinstance(temperature, (int, float)) or temperature < 0):
            raise ValueError(f"{owner}: temperature must be a number >= 0 (or None to leave it out), "
                             f"got {temperature!r}")
        if api not in ("chat", "completions"):
            raise ValueError(f"{owner}: api must be 'chat' (chat completions) or 'completions' (legacy "
                             f"text completions), got {api!r}")
        _check_prices(owner, price_prompt_per_1k, price_completion_per_1k)
        if api_key_env is None:
            key = "no-key"
        else:
            key = os.environ.get(api_key_env, "")
            if not key.strip():
                raise LLMError(f"{owner}: the environment variable {api_key_env} is not set or empty; set it "
                               f"to your API key (e.g. `export {api_key_env}=...` in the shell that starts "
                               f"Python), pass api_key_env='OTHER_NAME' to read another variable, or "
                               f"api_key_env=None for a local server that needs no key")
        try:
            import openai
        except ImportError:  # pragma: no cover - openai is a core dependency
            raise ImportError(f"{owner}: the 'openai' package is missing; run `pip install openai`") from None
        self._openai = openai
        self.model = model.strip()
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.temperature = None if temperature is None else float(temperature)
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.system_prompt = system_prompt
        self.api = api
        self.concurrency = int(concurrency)
        self.timeout_s = float(timeout_s)
        self.max_attempts = int(max_attempts)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self.retry_after_max_s = float(retry_after_max_s)
        self.price_prompt_per_1k = price_prompt_per_1k
        self.price_completion_per_1k = price_completion_per_1k
        self.extra_body = dict(extra_body or {})
        self.max_consecutive_failures = max_consecutive_failures
        self.source = f"openai:{self.model}"
        self._rng = random.Random(jitter_seed)
        self._rng_lock = threading.Lock()
        kwargs: dict[str, Any] = {"api_key": key, "max_retries": 0, "timeout": self.timeout_s}
        if base_url is not None:
            kwargs["base_url"] = base_url
        try:
            self._client = openai.OpenAI(**kwargs)
        except Exception as e:  # noqa: BLE001 - rebuilt below without the original (it may hold the key)
            failure = f"{type(e).__name__}: {e}"
        else:
            failure = None
        if failure is not None:
            raise LLMError(f"{owner}: could not create the openai client for base_url={safe_url(base_url)!r}: "
                           f"{self._scrub(failure, key)}")

    # --- secrets -------------------------------------------------------------------------------
    @staticmethod
    def _scrub(text: str, key: Optional[str]) -> str:
        text = str(text)
        if key and key != "no-key":
            text = text.replace(key, "***")
        return _KEY_ECHO_RE.sub(r"\1***", text)

    def redact(self, text: str) -> str:
        """Return ``text`` with this generator's API key (and echoed key fragments) replaced by ``***``."""
        return self._scrub(text, getattr(getattr(self, "_client", None), "api_key", None))

    def __repr__(self) -> str:
        return (f"OpenAIGenerator(model={self.model!r}, base_url={safe_url(self.base_url)!r}, "
                f"api_key_env={self.api_key_env!r}, api={self.api!r}, concurrency={self.concurrency}, "
                f"temperature={self.temperature}, max_tokens={self.max_tokens})")

    __str__ = __repr__

    def __getstate__(self):
        raise TypeError("OpenAIGenerator cannot be pickled (it holds a client with the API key); "
                        "build one per process from the same parameters")

    def describe(self) -> dict:
        """Settings safe to store in a summary (never the key)."""
        return {"source": self.source, "model": self.model, "base_url": safe_url(self.base_url),
                "api_key_env": self.api_key_env, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "system_prompt": self.system_prompt, "api": self.api,
                "concurrency": self.concurrency, "timeout_s": self.timeout_s,
                "max_attempts": self.max_attempts, "backoff_base_s": self.backoff_base_s,
                "backoff_max_s": self.backoff_max_s,
                "price_prompt_per_1k": self.price_prompt_per_1k,
                "price_completion_per_1k": self.price_completion_per_1k}

    # --- one request ---------------------------------------------------------------------------
    def _create(self, prompt: str, timeout: float):
        """One API call for ``prompt`` (chat or legacy completions)."""
        kwargs: dict[str, Any] = {"model": self.model, "timeout": timeout}
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if self.extra_body:
            kwargs["extra_body"] = self.extra_body
        if self.api == "completions":
            text = f"{self.system_prompt}\n\n{prompt}" if self.system_prompt else prompt
            return self._client.completions.create(prompt=text, **kwargs)
        return self._client.chat.completions.create(messages=self._messages(prompt), **kwargs)

    def _messages(self, prompt: str) -> list[dict]:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return messages + [{"role": "user", "content": prompt}]

    def _backoff(self, attempt: int) -> float:
        with self._rng_lock:
            return backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, self._rng)

    def _classify(self, exc: BaseException, stage: str = "request") -> tuple[str, Optional[float], str]:
        """(kind, retry_after, message): kind is a retry reason, ``fatal:...`` or ``fail:...``."""
        openai = self._openai
        message = self.redact(f"{type(exc).__name__}: {exc}")[:500]
        if stage == "parse":  # a 200 whose body is not a completion
            return "malformed", None, message
        if isinstance(exc, openai.APITimeoutError):
            return "timeout", None, message
        if isinstance(exc, openai.APIConnectionError):
            return "connection", None, message
        if isinstance(exc, openai.APIStatusError):
            status = int(exc.status_code)
            if status == 429:
                if getattr(exc, "code", None) == "insufficient_quota":
                    return "fatal:insufficient_quota", None, message
                return "rate_limited", parse_retry_after(exc.response.headers), message
            if status in (408,):
                return "timeout", parse_retry_after(exc.response.headers), message
            if status == 409 or status >= 500:
                return "server_error", parse_retry_after(exc.response.headers), message
            if status in (401, 403, 404):
                return f"fatal:http_{status}", None, message
            return f"fail:http_{status}", None, message
        if isinstance(exc, (ValueError, openai.APIResponseValidationError)):  # e.g. a truncated JSON body
            return "malformed", None, message
        if isinstance(exc, openai.APIError):
            return "api_error", None, message
        # Anything else is a bug or a bad setting (e.g. extra_body): retrying cannot help.
        return f"fatal:{type(exc).__name__}", None, message

    def _parse(self, completion) -> tuple[str, dict]:
        choice = completion.choices[0]
        content = choice.text if self.api == "completions" else choice.message.content
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise TypeError(f"message content is {type(content).__name__}, expected str")
        usage = getattr(completion, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        meta = {"model": getattr(completion, "model", None) or self.model,
                "finish_reason": getattr(choice, "finish_reason", None),
                "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        return content, meta

    def _complete(self, req: Request, deadline: Optional[float], stop: threading.Event):
        """Answer one request with retries; return a Response, a _Failed or a _Fatal (never raise)."""
        reason = "not_attempted"
        for attempt in range(1, self.max_attempts + 1):
            if stop.is_set():
                return _Failed("stopped")
            timeout = self.timeout_s
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return _Failed("time_budget")
                timeout = min(timeout, remaining)
            self._count(attempts=1)
            error: Optional[BaseException] = None
            stage = "request"
            try:
                completion = self._create(req.prompt, timeout)
                stage = "parse"
                content, meta = self._parse(completion)
            except Exception as e:  # noqa: BLE001 - classified below, outside the except block
                error = e
            if error is None:
                meta["attempts"] = attempt
                self._count(responses=1, prompt_tokens=meta["prompt_tokens"],
                            completion_tokens=meta["completion_tokens"])
                return Response(req.index, self.redact(content), self.source, meta)
            kind, retry_after, message = self._classify(error, stage)
            del error  # drop the exception (and its traceback) before sleeping or returning
            if kind.startswith("fatal:"):
                return _Fatal(f"request {req.index} to {safe_url(self.base_url) or 'the OpenAI API'} "
                              f"failed with {kind[6:]}: {message}")
            if kind.startswith("fail:"):
                log.warning("request %d failed (%s), not retried: %s", req.index, kind[5:], message)
                return _Failed(kind[5:], message)
            reason = kind
            if attempt == self.max_attempts:
                break
            self._count(retry=kind)
            delay = self._backoff(attempt)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.retry_after_max_s))
            if deadline is not None and time.monotonic() + delay >= deadline:
                return _Failed("time_budget")
            log.debug("request %d attempt %d: %s; retrying in %.2fs", req.index, attempt, message, delay)
            if stop.wait(delay):
                return _Failed("stopped")
        log.warning("request %d failed after %d attempts (last: %s)", req.index, self.max_attempts, reason)
        return _Failed(reason)

    # --- many requests -------------------------------------------------------------------------
    def generate(self, requests: Iterable[Request], deadline: Optional[float] = None) -> Iterator[Response]:
        """Yield Responses in completion order, ``concurrency`` requests in flight; failed ones are left out."""
        self._reset_stats()
        it = iter(requests)
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="lcmc-openai")
        pending: set = set()
        exhausted = False
        fatal: Optional[str] = None
        in_a_row = 0
        try:
            while True:
                while (not exhausted and len(pending) < self.concurrency and not stop.is_set()
                       and (deadline is None or time.monotonic() < deadline)):
                    req = next(it, None)
                    if req is None:
                        exhausted = True
                        break
                    pending.add(pool.submit(self._complete, req, deadline, stop))
                if not pending:
                    if not exhausted and deadline is not None and time.monotonic() >= deadline:
                        self._count_unstarted(it)
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    outcome = fut.result()
                    if isinstance(outcome, Response):
                        in_a_row = 0
                        yield outcome
                    elif isinstance(outcome, _Fatal):
                        fatal = outcome.message
                        stop.set()
                    else:
                        self._count(failure=outcome.reason)
                        if outcome.reason in ("stopped", "time_budget"):
                            continue
                        in_a_row += 1
                        limit = self.max_consecutive_failures
                        if limit is not None and in_a_row >= limit and fatal is None:
                            fatal = (f"{in_a_row} requests in a row failed after their retries (last: "
                                     f"{outcome.reason}{': ' + outcome.message if outcome.message else ''}); "
                                     f"stopping: check base_url={safe_url(self.base_url)!r}, the model name "
                                     f"and the server, then rerun to resume")
                            stop.set()
                if fatal is not None:
                    break
        finally:
            stop.set()
            pool.shutdown(wait=fatal is None and not pending, cancel_futures=True)
        if fatal is not None:
            raise LLMError(fatal)

    def _count_unstarted(self, it) -> None:
        n = sum(1 for _ in it)
        if n:
            with self._stats_lock:
                self.stats.failures["time_budget_not_started"] += n


# --------------------------------------------------------------------------------------------
# Local Hugging Face models
# --------------------------------------------------------------------------------------------

def _import_transformers():
    try:
        import transformers
    except ImportError as e:
        raise ImportError(f"{TRANSFORMERS_HINT} ({e})") from None
    return transformers


class TransformersGenerator(LLMGenerator):
    """Sentences from a local Hugging Face causal LM, prompted through its chat template, in batches.

    ``model`` is a model id or folder (loaded with ``AutoModelForCausalLM``, and
    ``AutoTokenizer`` unless ``tokenizer`` is given) or an already loaded model. Prompts use
    ``tokenizer.apply_chat_template`` when the tokenizer has a template, the plain prompt
    otherwise; padding is on the left. ``finish_reason`` is ``"stop"`` when the model ended the
    answer and ``"length"`` when it hit ``max_new_tokens``. ``source`` is ``"transformers:<name>"``.
    """

    def __init__(self, model, *, tokenizer=None, device: Optional[str] = None, batch_size: int = 16,
                 max_new_tokens: int = 40, temperature: float = 1.0, top_p: float = 1.0,
                 do_sample: bool = True, seed: int = 0, system_prompt: Optional[str] = None,
                 model_kwargs: Optional[dict] = None, trust_remote_code: bool = False,
                 price_prompt_per_1k: Optional[float] = None,
                 price_completion_per_1k: Optional[float] = None):
        super().__init__()
        owner = "TransformersGenerator"
        transformers = _import_transformers()
        import torch
        for name, value in (("batch_size", batch_size), ("max_new_tokens", max_new_tokens)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{owner}: {name} must be an integer >= 1, got {value!r}")
        if do_sample and not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ValueError(f"{owner}: temperature must be > 0 when do_sample=True, got {temperature!r}")
        _check_prices(owner, price_prompt_per_1k, price_completion_per_1k)
        self._torch = torch
        if isinstance(model, str):
            name = model
            try:
                if tokenizer is None:
                    tokenizer = transformers.AutoTokenizer.from_pretrained(
                        model, trust_remote_code=trust_remote_code)
                model = transformers.AutoModelForCausalLM.from_pretrained(
                    model, trust_remote_code=trust_remote_code, **(model_kwargs or {}))
            except (OSError, ValueError) as e:
                raise OSError(f"{owner}: could not load model {name!r} (expected a Hugging Face model id, "
                              f"downloaded or in the cache, or a folder with config, weights and tokenizer): "
                              f"{type(e).__name__}: {e}") from None
        else:
            name = getattr(getattr(model, "config", None), "name_or_path", None) or type(model).__name__
            if tokenizer is None:
                raise ValueError(f"{owner}: pass tokenizer=... together with an already loaded model")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token is None:
                raise ValueError(f"{owner}: the tokenizer of {name!r} has neither a pad nor an eos token")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self._eos = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        self.model_name = str(name)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.do_sample = bool(do_sample)
        self.seed = int(seed)
        self.system_prompt = system_prompt
        self.price_prompt_per_1k = price_prompt_per_1k
        self.price_completion_per_1k = price_completion_per_1k
        self.source = f"transformers:{self.model_name}"

    def __repr__(self) -> str:
        return (f"TransformersGenerator(model={self.model_name!r}, device={str(self.device)!r}, "
                f"batch_size={self.batch_size}, do_sample={self.do_sample}, temperature={self.temperature})")

    def describe(self) -> dict:
        """Settings safe to store in a summary."""
        return {"source": self.source, "model": self.model_name, "device": str(self.device),
                "batch_size": self.batch_size, "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature, "top_p": self.top_p, "do_sample": self.do_sample,
                "seed": self.seed, "system_prompt": self.system_prompt,
                "price_prompt_per_1k": self.price_prompt_per_1k,
                "price_completion_per_1k": self.price_completion_per_1k}

    def render(self, prompt: str) -> str:
        """The text fed to the model for ``prompt`` (the chat template applied, generation prompt added)."""
        if getattr(self.tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
            messages.append({"role": "user", "content": prompt})
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return f"{self.system_prompt}\n\n{prompt}" if self.system_prompt else prompt

    def _batch(self, batch: list[Request]) -> list[Response]:
        torch = self._torch
        templated = bool(getattr(self.tokenizer, "chat_template", None))
        enc = self.tokenizer([self.render(r.prompt) for r in batch], return_tensors="pt", padding=True,
                             add_special_tokens=not templated).to(self.device)
        kwargs = dict(max_new_tokens=self.max_new_tokens, do_sample=self.do_sample,
                      pad_token_id=self.tokenizer.pad_token_id)
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            torch.manual_seed((self.seed * 1_000_003 + batch[0].index) % (2 ** 63))
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1]:].tolist()
        prompt_lengths = enc["attention_mask"].sum(dim=1).tolist()
        responses = []
        for req, tokens, n_prompt in zip(batch, new, prompt_lengths):
            stop_at = next((j for j, t in enumerate(tokens) if t in self._eos), None)
            used = tokens if stop_at is None else tokens[:stop_at + 1]
            finish = "length" if stop_at is None and len(tokens) >= self.max_new_tokens else "stop"
            text = self.tokenizer.decode(used, skip_special_tokens=True)
            meta = {"model": self.model_name, "finish_reason": finish, "prompt_tokens": int(n_prompt),
                    "completion_tokens": len(used)}
            self._count(attempts=1, responses=1, prompt_tokens=int(n_prompt), completion_tokens=len(used))
            responses.append(Response(req.index, text, self.source, meta))
        return responses

    def generate(self, requests: Iterable[Request], deadline: Optional[float] = None) -> Iterator[Response]:
        """Yield Responses batch by batch, in request order; start no batch after ``deadline``."""
        self._reset_stats()
        batch: list[Request] = []
        it = iter(requests)
        while True:
            req = next(it, None)
            if req is not None:
                batch.append(req)
                if len(batch) < self.batch_size:
                    continue
            if batch:
                if deadline is not None and time.monotonic() >= deadline:
                    with self._stats_lock:
                        self.stats.failures["time_budget_not_started"] += len(batch) + sum(1 for _ in it)
                    return
                yield from self._batch(batch)
                batch = []
            if req is None:
                return


def make_generator(name: Union[str, SentenceGenerator], label_set=None, seed: int = 0,
                   **options) -> SentenceGenerator:
    """Build a generator by name: ``"template"``, ``"openai"`` (OpenAIGenerator(**options)) or ``"transformers"``; instances pass through."""
    if isinstance(name, SentenceGenerator) or (not isinstance(name, str) and callable(getattr(name, "generate", None))):
        if options:
            raise TypeError(f"generator options {sorted(options)} were given with a ready "
                            f"{type(name).__name__} instance; pass them to its constructor instead")
        return name
    if name == "template":
        from .corpus import TemplateGenerator
        if options:
            raise TypeError(f"the 'template' generator takes no options, got {sorted(options)}")
        if label_set is None:
            raise ValueError("make_generator('template') needs label_set")
        return TemplateGenerator(label_set, seed)
    if name == "openai":
        if "model" not in options:
            raise TypeError("the 'openai' generator needs model='...' (e.g. 'gpt-4o-mini', or the name "
                            "your OpenAI-compatible server uses)")
        return OpenAIGenerator(**options)
    if name == "transformers":
        if "model" not in options:
            raise TypeError("the 'transformers' generator needs model='...' (a Hugging Face model id "
                            "or folder, e.g. 'Qwen/Qwen2.5-0.5B-Instruct')")
        options.setdefault("seed", seed)
        return TransformersGenerator(**options)
    raise ValueError(f"unknown generator {name!r}; expected 'template', 'openai', 'transformers' or a "
                     f"SentenceGenerator instance")
