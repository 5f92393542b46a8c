"""Sentences from any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama, ...): concurrent, retried, accounted.

:class:`OpenAIGenerator` (``generator="openai"``) talks to a chat-completions endpoint (or the
legacy ``/completions`` of base models such as the paper's ``davinci-002``) through the ``openai``
client:

- parameters: ``model``, ``base_url`` (a URL with a user name, password, query string, fragment
  or ``name=value`` path segment is refused, as is such an ``OPENAI_BASE_URL`` when ``base_url``
  is None: keys live in the environment, see :func:`lcmc_core.secrets.url_credentials_message`),
  ``temperature``, ``max_tokens`` (either may be ``None`` to leave it out; other fields go in
  ``extra_body``), an optional ``system_prompt``, ``api="chat"|"completions"``; every number
  must be finite (``nan`` or ``inf`` is one :class:`~lcmc_core.errors.ConfigError` line);
- the API key is read from the environment variable whose **name** is given
  (``api_key_env="OPENAI_API_KEY"``; ``None`` for local servers that need no key); it never
  appears in ``repr``/``str``, errors, logs, statistics or responses (every message from the
  server is scrubbed with :func:`lcmc_core.secrets.redact`);
- timeouts: ``connect_timeout_s`` (10 s) to reach the server and ``read_timeout_s`` (30 s) for the
  whole answer, per attempt: an attempt still running ``read_timeout_s`` after it started is
  abandoned (its connection closed) however the bytes trickle in, since the HTTP client's own
  read timeout only bounds the wait for each next byte; at most ``max_attempts`` (5) attempts
  per request;
- ``concurrency`` requests in flight at once (a thread pool);
- our own retries (the client's are disabled): on 429 (waiting at least the server's
  ``Retry-After`` / ``retry-after-ms``), 408/409/5xx, timeouts, dropped connections and malformed
  bodies, with exponential backoff and jitter (attempt ``a`` waits ``d/2 + U(0, d/2)``, ``d =
  min(backoff_max_s, backoff_base_s * 2**(a-1))``). Each retry is reported as it happens to
  ``on_event`` (the generation job shows it in its progress line) and logged;
- failing fast: 401/403/404 and a 429 with code ``insufficient_quota`` stop the run with one clear
  :class:`~lcmc_core.text.generators.base.LLMError` (wrong key, unknown model or endpoint); so does a
  refused connection or an unknown host before any request has succeeded (seconds, not minutes),
  and a request whose every attempt timed out while no request has been answered yet (an endpoint
  that accepts connections and never answers); ``max_consecutive_failures`` (20) requests failing
  in a row stop it too;
- stopping: Ctrl-C (or the end of the consumer) sets a stop flag, closes the HTTP client so that
  requests in flight end at once, and returns within seconds; every answer that arrived is kept;
- a deadline (``generate(requests, deadline=...)``, a ``time.monotonic()`` value): no request starts
  after it, attempts are abandoned at it and backoff sleeps cut to it, so ``generate`` returns
  within about a second of it;
- threads: each of the ``concurrency`` workers has its own HTTP client and runs each attempt on
  a short-lived daemon thread that it can abandon; an abandoned attempt's client is closed, so
  that thread ends at the server's next byte or its read timeout at the latest (the number of
  threads is bounded by the concurrency, never by the number of requests);
- token and cost accounting from each answer's ``usage`` and the optional per-1k prices. Token
  counts are read leniently (numeric strings accepted); a negative, NaN or unreadable count is
  unknown (the answer is kept and ``stats.notes["usage_unreadable"]`` counts it). Each answer's
  ``meta["model"]`` is the model the server says answered.

Failed requests are left out of the output (the generator contract) and counted by reason in
:attr:`stats`, so a rerun of the job asks for them again.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import math
import numbers
import os
import queue
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError
from ...secrets import redact, safe_url, url_credentials_message
from .base import (
    LLMError,
    LLMGenerator,
    Request,
    Response,
    backoff_delay,
    check_prices,
    parse_retry_after,
    token_count,
)

__all__ = ["OpenAIGenerator"]

log = logging.getLogger(__name__)

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OWNER = "OpenAIGenerator"
# How long past the deadline generate() waits for workers before giving up on them (they end at it).
_DEADLINE_GRACE_S = 2.0


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_settings(*, model, base_url, api_key_env, temperature, api, concurrency, max_attempts, max_tokens,
                    max_consecutive_failures, **seconds) -> None:
    """One ConfigError line (LLMError for a URL with credentials) for the first bad setting; never echoes a key."""
    _check_base_url(base_url)
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"{_OWNER}: model must be a non-empty model name such as 'gpt-4o-mini', got {model!r}")
    if api_key_env is not None and (not isinstance(api_key_env, str) or not _ENV_NAME_RE.match(api_key_env)):
        # Never echo the value: it may be a key pasted by mistake.
        raise ConfigError(f"{_OWNER}: api_key_env must be the *name* of an environment variable "
                          f"(letters, digits, underscores, e.g. 'OPENAI_API_KEY'), not the key itself "
                          f"(got a {type(api_key_env).__name__} that is not such a name)")
    for name, value, optional in (("concurrency", concurrency, False), ("max_attempts", max_attempts, False),
                                  ("max_tokens", max_tokens, True),
                                  ("max_consecutive_failures", max_consecutive_failures, True)):
        if optional and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{_OWNER}: {name} must be an integer >= 1{' or None' if optional else ''}, "
                              f"got {value!r}")
    for name, value in seconds.items():
        positive = name.endswith("timeout_s")
        if not _is_number(value) or not math.isfinite(value) or value < 0 or (positive and value <= 0):
            raise ConfigError(f"{_OWNER}: {name} must be a finite {'positive' if positive else 'non-negative'} "
                              f"number of seconds, got {value!r}")
    if temperature is not None and (not _is_number(temperature) or not math.isfinite(temperature) or temperature < 0):
        raise ConfigError(f"{_OWNER}: temperature must be a finite number >= 0 (or None to leave it out), "
                          f"got {temperature!r}")
    if api not in ("chat", "completions"):
        raise ConfigError(f"{_OWNER}: api must be 'chat' (chat completions) or 'completions' (legacy "
                          f"text completions), got {api!r}")


def _check_base_url(base_url) -> None:
    """Refuse a base_url (or, without one, an ``OPENAI_BASE_URL`` the client would read) that can carry a secret."""
    if base_url is not None:
        if not isinstance(base_url, str) or not base_url.strip():
            raise ConfigError(f"{_OWNER}: base_url must be the endpoint's URL (e.g. 'http://localhost:8000/v1') or "
                              f"None for the OpenAI API, got {type(base_url).__name__}")
        problem = url_credentials_message(base_url, f"{_OWNER}: base_url")
    else:
        env = os.environ.get("OPENAI_BASE_URL")
        problem = url_credentials_message(env, f"{_OWNER}: the environment variable OPENAI_BASE_URL (read by the "
                                               f"openai client when base_url is None)") if env else None
    if problem:
        raise LLMError(problem)


def _api_key(api_key_env: str | None) -> str:
    """The API key from the environment variable named ``api_key_env`` ("no-key" without one); one LLMError line if unset."""
    if api_key_env is None:
        return "no-key"
    key = os.environ.get(api_key_env, "")
    if not key.strip():
        raise LLMError(f"{_OWNER}: the environment variable {api_key_env} is not set or empty; set it "
                       f"to your API key (e.g. `export {api_key_env}=...` in the shell that starts "
                       f"Python), pass api_key_env='OTHER_NAME' to read another variable, or "
                       f"api_key_env=None for a local server that needs no key")
    return key


@dataclass
class _Failed:
    reason: str
    message: str = ""


@dataclass
class _Fatal:
    message: str


class _AttemptTimedOut(Exception):
    """An attempt ran past its whole-answer limit (or the deadline) and was abandoned."""


class _DaemonPool:
    """At most ``workers`` daemon threads running submitted calls; :meth:`shutdown` need not wait for them."""

    def __init__(self, workers: int):
        self.workers = workers
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []

    def submit(self, fn, *args) -> Future:
        """Run ``fn(*args)`` on a worker; the returned Future holds its result or exception."""
        future: Future = Future()
        self.jobs.put((future, fn, args))
        if len(self.threads) < self.workers:
            t = threading.Thread(target=self._work, name=f"lcmc-openai-{len(self.threads)}", daemon=True)
            t.start()
            self.threads.append(t)
        return future

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the workers once their current call returns; with ``wait``, join them."""
        for _ in self.threads:
            self.jobs.put(None)
        if wait:
            for t in self.threads:
                t.join()


class OpenAIGenerator(LLMGenerator):
    """Sentences from an OpenAI-compatible chat-completions endpoint (concurrent, retried, budgeted, accounted).

    See the module docstring for the retry, deadline and accounting rules. ``source`` (written
    to every corpus record) is ``"openai:<model>"``.
    """

    def __init__(self, model: str, *, base_url: str | None = None,
                 api_key_env: str | None = "OPENAI_API_KEY", temperature: float | None = 1.0,
                 max_tokens: int | None = 40, system_prompt: str | None = None,
                 api: str = "chat", concurrency: int = 8, connect_timeout_s: float = 10.0,
                 read_timeout_s: float = 30.0, timeout_s: float | None = None, max_attempts: int = 5,
                 backoff_base_s: float = 1.0,
                 backoff_max_s: float = 60.0, retry_after_max_s: float = 300.0,
                 price_prompt_per_1k: float | None = None,
                 price_completion_per_1k: float | None = None, extra_body: dict | None = None,
                 max_consecutive_failures: int | None = 20, jitter_seed: int | None = None,
                 on_event: Callable[[str], None] | None = None):
        super().__init__()
        if timeout_s is not None:  # the single timeout of earlier versions: the read timeout
            read_timeout_s = timeout_s
        _check_settings(model=model, base_url=base_url, api_key_env=api_key_env, temperature=temperature,
                        api=api, concurrency=concurrency, max_attempts=max_attempts, max_tokens=max_tokens,
                        max_consecutive_failures=max_consecutive_failures, connect_timeout_s=connect_timeout_s,
                        read_timeout_s=read_timeout_s, backoff_base_s=backoff_base_s, backoff_max_s=backoff_max_s,
                        retry_after_max_s=retry_after_max_s)
        check_prices(_OWNER, price_prompt_per_1k, price_completion_per_1k)
        key = _api_key(api_key_env)
        try:
            import openai
        except ImportError:  # pragma: no cover - openai is a core dependency
            raise ImportError(f"{_OWNER}: the 'openai' package is missing; run `pip install openai`") from None
        self._openai = openai
        self.model = model.strip()
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.temperature = None if temperature is None else float(temperature)
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.system_prompt = system_prompt
        self.api = api
        self.concurrency = int(concurrency)
        self.connect_timeout_s = float(connect_timeout_s)
        self.read_timeout_s = float(read_timeout_s)
        self.timeout_s = self.read_timeout_s
        self.max_attempts = int(max_attempts)
        self.on_event = on_event
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
        self._workers = threading.local()   # each worker thread's own client (see _worker_client)
        self._clients: set = set()          # every worker client not yet closed
        self._clients_lock = threading.Lock()
        self._client_kwargs: dict[str, Any] = {"api_key": key, "max_retries": 0, "timeout": self._timeout(None)}
        if base_url is not None:
            self._client_kwargs["base_url"] = base_url
        self._client = self._make_client()

    def _make_client(self):
        """A new openai client with this generator's settings; a failure is one LLMError line (key scrubbed)."""
        try:
            return self._openai.OpenAI(**self._client_kwargs)
        except Exception as e:
            failure = f"{type(e).__name__}: {e}"
        raise LLMError(f"{_OWNER}: could not create the openai client for base_url={safe_url(self.base_url)!r}: "
                       f"{self.redact(failure)}")

    def _timeout(self, remaining: float | None):
        """The per-attempt timeout (connect and read), cut to ``remaining`` seconds of a deadline.

        Built with ``openai.Timeout``, the client's own export (whichever HTTP library it uses underneath).
        """
        read, connect = self.read_timeout_s, self.connect_timeout_s
        if remaining is not None:
            read, connect = min(read, remaining), min(connect, remaining)
        return self._openai.Timeout(read, connect=connect, write=read, pool=read)

    # --- secrets -------------------------------------------------------------------------------
    @staticmethod
    def _scrub(text: str, key: str | None) -> str:
        return redact(str(text), [key] if key and key != "no-key" else [], mark="***")

    def redact(self, text: str) -> str:
        """Return ``text`` with this generator's API key (and echoed key fragments) replaced by ``***``."""
        return self._scrub(text, getattr(self, "_client_kwargs", {}).get("api_key"))

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
                "concurrency": self.concurrency, "connect_timeout_s": self.connect_timeout_s,
                "read_timeout_s": self.read_timeout_s, "max_attempts": self.max_attempts, "backoff_base_s": self.backoff_base_s,
                "backoff_max_s": self.backoff_max_s,
                "price_prompt_per_1k": self.price_prompt_per_1k,
                "price_completion_per_1k": self.price_completion_per_1k}

    # --- one request ---------------------------------------------------------------------------
    def _create(self, client, prompt: str, timeout):
        """One API call for ``prompt`` (chat or legacy completions) through ``client``."""
        kwargs: dict[str, Any] = {"model": self.model, "timeout": timeout}
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if self.extra_body:
            kwargs["extra_body"] = self.extra_body
        if self.api == "completions":
            text = f"{self.system_prompt}\n\n{prompt}" if self.system_prompt else prompt
            return client.completions.create(prompt=text, **kwargs)
        return client.chat.completions.create(messages=self._messages(prompt), **kwargs)

    def _messages(self, prompt: str) -> list[dict]:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return messages + [{"role": "user", "content": prompt}]

    def _backoff(self, attempt: int) -> float:
        with self._rng_lock:
            return backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, self._rng)

    def _classify(self, exc: BaseException, stage: str = "request") -> tuple[str, float | None, str]:
        """(kind, retry_after, message): kind is a retry reason, ``fatal:...`` or ``fail:...``."""
        openai = self._openai
        message = self.redact(f"{type(exc).__name__}: {exc}")[:500]
        if stage == "parse":  # a 200 whose body is not a completion
            return "malformed", None, message
        if isinstance(exc, (openai.APITimeoutError, _AttemptTimedOut)):
            return "timeout", None, message
        if isinstance(exc, openai.APIConnectionError):
            if not self._answered.is_set() and _unreachable(exc):
                return "fatal:unreachable", None, (f"{message} ({safe_url(self.base_url) or 'the OpenAI API'} refused "
                                                   f"the connection or its host is unknown: is the server running and "
                                                   f"base_url right?)")
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
        counts = {}
        for name in ("prompt_tokens", "completion_tokens"):
            raw = getattr(usage, name, None)
            counts[name] = token_count(raw)
            counts[name + "_unreadable"] = raw is not None and counts[name] is None
        served = getattr(completion, "model", None)
        meta = {"model": served if isinstance(served, str) and served.strip() else self.model,
                "finish_reason": getattr(choice, "finish_reason", None),
                "prompt_tokens": counts["prompt_tokens"], "completion_tokens": counts["completion_tokens"]}
        if counts["prompt_tokens_unreadable"] or counts["completion_tokens_unreadable"]:
            meta["usage_unreadable"] = True
        return content, meta

    def _complete(self, req: Request, deadline: float | None, stop: threading.Event):
        """Answer one request with retries; return a Response, a _Failed or a _Fatal (never raise)."""
        reason = "not_attempted"
        timeouts = 0
        for attempt in range(1, self.max_attempts + 1):
            if stop.is_set():
                return _Failed("stopped")
            remaining = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return _Failed("time_budget")
            limit = self.read_timeout_s if remaining is None else min(self.read_timeout_s, remaining)
            self._count(attempts=1)
            error: BaseException | None = None
            stage = "request"
            try:
                completion = self._attempt(req.prompt, self._timeout(remaining), limit, stop)
                stage = "parse"
                content, meta = self._parse(completion)
            except Exception as e:
                error = e
            if error is None:
                self._answered.set()
                meta["attempts"] = attempt
                self._count(responses=1, prompt_tokens=meta["prompt_tokens"] or 0,
                            completion_tokens=meta["completion_tokens"] or 0,
                            note="usage_unreadable" if meta.get("usage_unreadable") else None)
                return Response(req.index, self.redact(content), self.source, meta)
            kind, retry_after, message = self._classify(error, stage)
            del error  # drop the exception (and its traceback) before sleeping or returning
            if stop.is_set():  # the run is ending (Ctrl-C, a fatal error elsewhere): its connections were closed
                return _Failed("stopped")
            if kind == "timeout" and deadline is not None and time.monotonic() >= deadline - 1e-3:
                return _Failed("time_budget")
            if kind.startswith("fatal:"):
                return _Fatal(f"request {req.index} to {safe_url(self.base_url) or 'the OpenAI API'} "
                              f"failed with {kind[6:]}: {message}")
            if kind.startswith("fail:"):
                log.warning("request %d failed (%s), not retried: %s", req.index, kind[5:], message)
                return _Failed(kind[5:], message)
            reason = kind
            timeouts = timeouts + 1 if kind == "timeout" else timeouts
            if attempt == self.max_attempts:
                if timeouts == attempt and not self._answered.is_set():
                    return _Fatal(f"{safe_url(self.base_url) or 'the OpenAI API'} accepted connections but answered "
                                  f"none of {attempt} attempts of request {req.index} within read_timeout_s="
                                  f"{self.read_timeout_s:g} s, and no request has been answered yet; check the server "
                                  f"(is the model loaded?) or raise read_timeout_s")
                break
            self._count(retry=kind)
            self._event(f"request {req.index}: {kind} on attempt {attempt}/{self.max_attempts}, retrying")
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

    # --- one attempt, abandonable -----------------------------------------------------------------
    def _attempt(self, prompt: str, timeout, limit_s: float, stop: threading.Event):
        """One API call, on a daemon thread of its own, waited for at most ``limit_s`` seconds.

        The HTTP client's read timeout bounds each read, not the answer: a server sending a few
        bytes a second keeps a request alive for minutes. Past ``limit_s`` (or when the run stops)
        the call is abandoned: the worker's client is closed, so the call's thread ends at the
        server's next byte (or its read timeout), and the next attempt gets a fresh client.
        """
        client = self._worker_client()
        outcome: dict[str, Any] = {}
        finished = threading.Event()

        def call():
            try:
                outcome["completion"] = self._create(client, prompt, timeout)
            except BaseException as exc:  # handed to the worker below
                outcome["error"] = exc
            finally:
                finished.set()

        threading.Thread(target=call, name="lcmc-openai-call", daemon=True).start()
        end = time.monotonic() + limit_s
        while not finished.wait(max(0.0, min(0.1, end - time.monotonic()))):
            if stop.is_set() or time.monotonic() >= end:
                self._retire_client(client)
                raise _AttemptTimedOut(f"no complete answer within {limit_s:.3g} s (read_timeout_s="
                                       f"{self.read_timeout_s:g} bounds the whole answer); attempt abandoned")
        if "error" in outcome:
            raise outcome.pop("error")
        return outcome["completion"]

    def _worker_client(self):
        """The calling worker thread's own client (created on first use, and again after it was retired)."""
        client = getattr(self._workers, "client", None)
        if client is None:
            client = self._make_client()
            with self._clients_lock:
                self._clients.add(client)
            self._workers.client = client
        return client

    def _retire_client(self, client) -> None:
        """Close ``client`` (ending its request in flight) and forget it; its worker will make a new one."""
        with self._clients_lock:
            self._clients.discard(client)
        if getattr(self._workers, "client", None) is client:
            self._workers.client = None
        with contextlib.suppress(Exception):
            client.close()

    def _close_worker_clients(self) -> None:
        """Close every worker client (requests in flight through them end at once)."""
        with self._clients_lock:
            clients, self._clients = list(self._clients), set()
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()

    # --- many requests -------------------------------------------------------------------------
    # Requests run on daemon threads (not a ThreadPoolExecutor, whose threads the interpreter
    # joins at exit): after Ctrl-C or a fatal error the job returns at once instead of waiting
    # up to read_timeout_s for answers in flight, and the process can exit.
    def generate(self, requests: Iterable[Request], deadline: float | None = None) -> Iterator[Response]:
        """Yield Responses in completion order, ``concurrency`` requests in flight; failed ones are left out."""
        self._reset_stats()
        self._answered = threading.Event()
        it = iter(requests)
        stop = threading.Event()
        pool = _DaemonPool(self.concurrency)
        pending: set = set()
        exhausted = False
        fatal: str | None = None
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
                # Workers end their attempts at the deadline; the wait is bounded too, in case one cannot.
                grace = None if deadline is None else max(0.0, deadline + _DEADLINE_GRACE_S - time.monotonic())
                done, pending = wait(pending, timeout=grace, return_when=FIRST_COMPLETED)
                if not done and deadline is not None and time.monotonic() >= deadline + _DEADLINE_GRACE_S:
                    for _ in pending:
                        self._count(failure="time_budget")
                    if not exhausted:
                        self._count_unstarted(it)
                    break
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
            abandon = bool(pending)  # Ctrl-C, a fatal error, the deadline or a consumer that stopped early
            if abandon:
                self._close_worker_clients()  # requests in flight end now
            pool.shutdown(wait=not abandon)
            self._close_worker_clients()
        if fatal is not None:
            raise LLMError(fatal)

    def _event(self, message: str) -> None:
        log.info(message)
        if self.on_event is not None:
            with contextlib.suppress(Exception):
                self.on_event(message)

    def _count_unstarted(self, it) -> None:
        n = sum(1 for _ in it)
        if n:
            with self._stats_lock:
                self.stats.failures["time_budget_not_started"] += n


def _unreachable(exc: BaseException) -> bool:
    """True when the cause of a connection error is a refused connection or an unknown host (not a dropped one)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
            return True
        text = str(exc).lower()
        if any(s in text for s in ("connection refused", "name or service not known", "nodename nor servname",
                                   "getaddrinfo failed", "temporary failure in name resolution",
                                   "no address associated")):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
