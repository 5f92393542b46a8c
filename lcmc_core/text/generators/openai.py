"""Sentences from any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama, ...): concurrent, retried, accounted.

:class:`OpenAIGenerator` (``generator="openai"``) talks to a chat-completions endpoint (or the
legacy ``/completions`` of base models such as the paper's ``davinci-002``) through the ``openai``
client:

- parameters: ``model``, ``base_url`` (a URL with credentials in it is refused: keys live in the
  environment), ``temperature``, ``max_tokens`` (either may be ``None`` to leave it out; other
  fields go in ``extra_body``), an optional ``system_prompt``, ``api="chat"|"completions"``;
- the API key is read from the environment variable whose **name** is given
  (``api_key_env="OPENAI_API_KEY"``; ``None`` for local servers that need no key); it never
  appears in ``repr``/``str``, errors, logs, statistics or responses (every message from the
  server is scrubbed with :func:`lcmc_core.secrets.redact`);
- timeouts: ``connect_timeout_s`` (10 s) to reach the server and ``read_timeout_s`` (30 s) for an
  answer, per attempt; at most ``max_attempts`` (5) attempts per request;
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
  after it, attempt timeouts and backoff sleeps are cut to it;
- token and cost accounting from each answer's ``usage`` and the optional per-1k prices.

Failed requests are left out of the output (the generator contract) and counted by reason in
:attr:`stats`, so a rerun of the job asks for them again.
"""
from __future__ import annotations

import contextlib
import errno
import logging
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
from .base import LLMError, LLMGenerator, Request, Response, backoff_delay, check_prices, parse_retry_after

__all__ = ["OpenAIGenerator"]

log = logging.getLogger(__name__)

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class _Failed:
    reason: str
    message: str = ""


@dataclass
class _Fatal:
    message: str


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
        owner = "OpenAIGenerator"
        if timeout_s is not None:  # the single timeout of earlier versions: the read timeout
            read_timeout_s = timeout_s
        if base_url is not None:
            problem = url_credentials_message(base_url, f"{owner}: base_url")
            if problem:
                raise LLMError(problem)
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"{owner}: model must be a non-empty model name such as 'gpt-4o-mini', got {model!r}")
        if api_key_env is not None and (not isinstance(api_key_env, str) or not _ENV_NAME_RE.match(api_key_env)):
            # Never echo the value: it may be a key pasted by mistake.
            raise ConfigError(f"{owner}: api_key_env must be the *name* of an environment variable "
                             f"(letters, digits, underscores, e.g. 'OPENAI_API_KEY'), not the key itself "
                             f"(got a {type(api_key_env).__name__} that is not such a name)")
        for name, value, optional in (("concurrency", concurrency, False), ("max_attempts", max_attempts, False),
                                      ("max_tokens", max_tokens, True),
                                      ("max_consecutive_failures", max_consecutive_failures, True)):
            if optional and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{owner}: {name} must be an integer >= 1{' or None' if optional else ''}, "
                                 f"got {value!r}")
        for name, value in (("connect_timeout_s", connect_timeout_s), ("read_timeout_s", read_timeout_s),
                            ("backoff_base_s", backoff_base_s), ("backoff_max_s", backoff_max_s),
                            ("retry_after_max_s", retry_after_max_s)):
            positive = name.endswith("timeout_s")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (positive and value <= 0):
                raise ConfigError(f"{owner}: {name} must be a {'positive' if positive else 'non-negative'} "
                                 f"number of seconds, got {value!r}")
        if temperature is not None and (not isinstance(temperature, (int, float)) or temperature < 0):
            raise ConfigError(f"{owner}: temperature must be a number >= 0 (or None to leave it out), "
                             f"got {temperature!r}")
        if api not in ("chat", "completions"):
            raise ConfigError(f"{owner}: api must be 'chat' (chat completions) or 'completions' (legacy "
                             f"text completions), got {api!r}")
        check_prices(owner, price_prompt_per_1k, price_completion_per_1k)
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
        kwargs: dict[str, Any] = {"api_key": key, "max_retries": 0, "timeout": self._timeout(None)}
        if base_url is not None:
            kwargs["base_url"] = base_url
        self._client_kwargs = kwargs
        try:
            self._client = openai.OpenAI(**kwargs)
        except Exception as e:
            failure = f"{type(e).__name__}: {e}"
        else:
            failure = None
        if failure is not None:
            raise LLMError(f"{owner}: could not create the openai client for base_url={safe_url(base_url)!r}: "
                           f"{self._scrub(failure, key)}")

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
                "concurrency": self.concurrency, "connect_timeout_s": self.connect_timeout_s,
                "read_timeout_s": self.read_timeout_s, "max_attempts": self.max_attempts, "backoff_base_s": self.backoff_base_s,
                "backoff_max_s": self.backoff_max_s,
                "price_prompt_per_1k": self.price_prompt_per_1k,
                "price_completion_per_1k": self.price_completion_per_1k}

    # --- one request ---------------------------------------------------------------------------
    def _create(self, prompt: str, timeout):
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

    def _classify(self, exc: BaseException, stage: str = "request") -> tuple[str, float | None, str]:
        """(kind, retry_after, message): kind is a retry reason, ``fatal:...`` or ``fail:...``."""
        openai = self._openai
        message = self.redact(f"{type(exc).__name__}: {exc}")[:500]
        if stage == "parse":  # a 200 whose body is not a completion
            return "malformed", None, message
        if isinstance(exc, openai.APITimeoutError):
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
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        meta = {"model": getattr(completion, "model", None) or self.model,
                "finish_reason": getattr(choice, "finish_reason", None),
                "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
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
            timeout = self._timeout(remaining)
            self._count(attempts=1)
            error: BaseException | None = None
            stage = "request"
            try:
                completion = self._create(req.prompt, timeout)
                stage = "parse"
                content, meta = self._parse(completion)
            except Exception as e:
                error = e
            if error is None:
                self._answered.set()
                meta["attempts"] = attempt
                self._count(responses=1, prompt_tokens=meta["prompt_tokens"],
                            completion_tokens=meta["completion_tokens"])
                return Response(req.index, self.redact(content), self.source, meta)
            kind, retry_after, message = self._classify(error, stage)
            del error  # drop the exception (and its traceback) before sleeping or returning
            if stop.is_set():  # the run is ending (Ctrl-C, a fatal error elsewhere): its connections were closed
                return _Failed("stopped")
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
            if pending:  # Ctrl-C, a fatal error or a consumer that stopped early: end requests in flight now
                self._abort_in_flight()
            pool.shutdown(wait=not pending)
        if fatal is not None:
            raise LLMError(fatal)

    def _abort_in_flight(self) -> None:
        """Close the HTTP connections (requests in flight fail at once) and open a fresh client for later calls."""
        with contextlib.suppress(Exception):
            self._client.close()
        with contextlib.suppress(Exception):
            self._client = self._openai.OpenAI(**self._client_kwargs)

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
