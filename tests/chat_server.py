"""A local, fake OpenAI-compatible chat-completions server for the LLM generator tests.

:class:`ChatServer` runs the standard library's ``ThreadingHTTPServer`` in a thread, bound to
127.0.0.1 on an ephemeral port, and answers ``POST /v1/chat/completions`` like the real API::

    {"id": ..., "object": "chat.completion", "created": ..., "model": ...,
     "choices": [{"index": 0, "message": {"role": "assistant", "content": ...},
                  "finish_reason": "stop"}],
     "usage": {"prompt_tokens": ..., "completion_tokens": ..., "total_tokens": ...}}

``POST /v1/completions`` (the legacy text-completions API, ``{"object": "text_completion",
"choices": [{"index": 0, "text": ..., "finish_reason": ...}], "usage": ...}``) is served too.

The answer is a deterministic function of the prompt: the class names are parsed from the
paper's prompt ("... a photo that contains dog, cat.") and the sentence names them all
(:func:`sentence_for`), with some harmless noise (quotes, whitespace, a second sentence) that the
job must clean away. Faults are injected by a ``faults(prompt, attempt) -> kind | None``
function (``attempt`` counts earlier requests with the same prompt, from 0), so tests decide
exactly which request fails how. Transport faults (the request must be retried):

- ``"429"``: status 429 with ``Retry-After`` (``retry_after`` seconds, default 0.2);
- ``"500"`` / ``"503"``: a server error;
- ``"slow"``: the answer comes only after ``slow_s`` seconds (past the client's timeout);
- ``"malformed"``: status 200 with a truncated JSON body;
- ``"drop"``: the socket is closed without any reply;
- ``"401"``: an authentication error whose message echoes the key (as some servers do);
- ``"quota"``: a 429 with code ``insufficient_quota`` (no credit left: waiting cannot help);
- ``"trickle"``: the whole reply (status line, headers, body) is sent ``trickle_bytes`` bytes at a
  time, one piece every ``trickle_s`` seconds, so that no single read waits long but the answer
  takes ``len(reply) / trickle_bytes * trickle_s`` seconds (a slow-sending server: a per-read
  timeout never fires).

``models=("a", "b")`` makes the server answer 404 ``model_not_found`` for any other model name.

Content faults (a well-formed answer the job must reject or keep by its policy):
``"empty"``, ``"refuse"`` ("I'm sorry, ..."), ``"long"`` (an overlong sentence), ``"missing"``
(names only the first requested label), ``"echo_key"`` (the content contains the bearer key).

Usage faults (a good answer whose ``usage`` is odd): ``"usage_str"`` (token counts as numeric
strings, ``"12"``), ``"usage_negative"`` (``-5``), ``"usage_garbage"`` (``"lots"``) and
``"usage_nan"`` (``NaN``, which Python's JSON reader accepts). ``"other_model"`` answers with
``"model": "other-model"`` instead of the model asked for; ``served_model="name"`` does that for
every answer.

The server counts requests by fault kind and by prompt, and the maximum number of requests in
flight at once (to check a concurrency limit). ``gate_after=N`` makes every request after the
N-th wait until :meth:`ChatServer.open_gate` (to freeze a job mid-way before killing it).
Run as a script (``python tests/chat_server.py``) it serves until interrupted and prints its URL.
"""
from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_PROMPT_RE = re.compile(r"contains (.+?)\.?\s*$", re.S)
_CONTEXTS = ["in a park", "on a sunny afternoon", "indoors", "by the lake", "at home",
             "in the evening", "on a quiet street"]


def labels_in_prompt(prompt: str) -> list[str]:
    """The class names the paper's prompt asks for ("... contains dog, potted plant." -> [dog, potted plant])."""
    m = _PROMPT_RE.search(prompt)
    if not m:
        return []
    return [p.strip() for p in m.group(1).split(",") if p.strip()]


def _h(prompt: str) -> int:
    return int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16)


def _article(name: str) -> str:
    return ("an " if name[:1] in "aeiou" else "a ") + name


def sentence_for(prompt: str) -> str:
    """The deterministic (noisy) assistant answer naming every label of the prompt."""
    names = labels_in_prompt(prompt) or ["thing"]
    h = _h(prompt)
    phrases = [_article(n) for n in names]
    listed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    text = f"A photo of {listed} {_CONTEXTS[h % len(_CONTEXTS)]}."
    style = (h >> 4) % 4
    if style == 1:
        text = f'  "{text}"\n'
    elif style == 2:
        text = f"{text} The light is soft."
    elif style == 3:
        text = f"\u201c{text}\u201d"
    return text


def token_counts(prompt: str, content: str) -> tuple[int, int]:
    """The usage the server reports: words of the prompt + 8, words of the answer + 1."""
    return len(prompt.split()) + 8, len(content.split()) + 1


class _QuietServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that does not print a traceback when a client hangs up mid-request."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        import sys
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


class ChatServer:
    """A fake chat-completions endpoint on 127.0.0.1 (see the module docstring); use as a context manager."""

    def __init__(self, faults: Callable[[str, int], str | None] | None = None, *,
                 api_key: str | None = None, delay_s: float = 0.0, slow_s: float = 2.0,
                 retry_after: str | None = "0.2", gate_after: int | None = None,
                 models: tuple[str, ...] | None = None, trickle_s: float = 0.05, trickle_bytes: int = 1,
                 served_model: str | None = None):
        self.faults = faults or (lambda prompt, attempt: None)
        self.models = models
        self.trickle_s = trickle_s
        self.trickle_bytes = trickle_bytes
        self.served_model = served_model
        self._stopped = threading.Event()
        self.api_key = api_key
        self.delay_s = delay_s
        self.slow_s = slow_s
        self.retry_after = retry_after
        self.gate_after = gate_after
        self._gate = threading.Event()
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self.kinds: Counter = Counter()          # fault kind (or "ok") -> count
        self.attempts: Counter = Counter()       # prompt -> requests seen
        self.arrivals: list[tuple[float, str, str | None]] = []  # (time, prompt, kind)
        self.last_payload: dict | None = None  # the JSON body of the latest request
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ChatServer:
        """Bind 127.0.0.1 on an ephemeral port and serve in a daemon thread."""
        server = self

        class Handler(_Handler):
            owner = server

        httpd = _QuietServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (requests still waiting at the gate are released, trickling replies end)."""
        self._stopped.set()
        self._gate.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to give the client (``http://127.0.0.1:PORT/v1``)."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def open_gate(self) -> None:
        """Release the requests held by ``gate_after``."""
        self._gate.set()

    # --- bookkeeping -------------------------------------------------------------------------
    def _enter(self, prompt: str) -> tuple[int, int]:
        with self._lock:
            self.requests += 1
            number = self.requests
            attempt = self.attempts[prompt]
            self.attempts[prompt] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return number, attempt

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    owner: ChatServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def _send_json(self, status: int, payload, headers: dict | None = None, raw: bytes | None = None):
        body = raw if raw is not None else json.dumps(payload).encode()
        if getattr(self, "trickle", False):
            self._send_trickled(status, body)
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_trickled(self, status: int, body: bytes) -> None:
        """The whole reply, a few bytes at a time (see ``"trickle"`` in the module docstring)."""
        server = self.owner
        head = (f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        data = head + body
        step = max(1, int(server.trickle_bytes))
        for start in range(0, len(data), step):
            if server._stopped.is_set():
                self.close_connection = True
                return
            self.wfile.write(data[start:start + step])
            self.wfile.flush()
            time.sleep(server.trickle_s)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        route = self.path.rstrip("/")
        if route not in ("/v1/chat/completions", "/v1/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        self.legacy = route == "/v1/completions"
        try:
            payload = json.loads(body)
            if self.legacy:
                prompt = payload["prompt"]
                if not isinstance(prompt, str):
                    raise TypeError("prompt")
            else:
                messages = payload["messages"]
                prompt = next(m["content"] for m in reversed(messages) if m.get("role") == "user")
        except (ValueError, KeyError, StopIteration, TypeError):
            self._send_json(400, {"error": {"message": "expected a chat.completions body",
                                            "type": "invalid_request_error"}})
            return
        server = self.owner
        server.last_payload = payload
        number, attempt = server._enter(prompt)
        kind = None
        self.trickle = False
        try:
            if server.gate_after is not None and number > server.gate_after:
                server._gate.wait(30)
            kind = server.faults(prompt, attempt)
            key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            if kind == "401" or (server.api_key is not None and key != server.api_key):
                kind = "401"
            elif server.models is not None and payload.get("model") not in server.models:
                kind = "no_model"
            with server._lock:
                server.kinds[kind or "ok"] += 1
                server.arrivals.append((time.monotonic(), prompt, kind))
            if server.delay_s:
                time.sleep(server.delay_s)
            self.trickle = kind == "trickle"
            self._answer(kind, prompt, payload, key)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            server._leave()

    def _answer(self, kind, prompt, payload, key):
        server = self.owner
        if kind == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if kind == "no_model":
            self._send_json(404, {"error": {"message": f"The model `{payload.get('model')}` does not exist",
                                            "type": "invalid_request_error", "code": "model_not_found"}})
            return
        if kind == "429":
            headers = {"Retry-After": server.retry_after} if server.retry_after is not None else {}
            self._send_json(429, {"error": {"message": "Rate limit reached", "type": "rate_limit"}},
                            headers)
            return
        if kind == "quota":
            self._send_json(429, {"error": {"message": "You exceeded your current quota.",
                                            "type": "insufficient_quota", "code": "insufficient_quota"}})
            return
        if kind in ("500", "503"):
            self._send_json(int(kind), {"error": {"message": "The server had an error", "type": "server_error"}})
            return
        if kind == "401":
            self._send_json(401, {"error": {"message": f"Incorrect API key provided: {key}.",
                                            "type": "invalid_request_error", "code": "invalid_api_key"}})
            return
        if kind == "slow":
            time.sleep(server.slow_s)
        if kind == "malformed":
            self._send_json(200, None, raw=b'{"id": "chatcmpl-x", "object": "chat.completion", "choices": [{"ind')
            return
        content = sentence_for(prompt)
        names = labels_in_prompt(prompt)
        if kind == "empty":
            content = "   "
        elif kind == "refuse":
            content = "I'm sorry, but I can't help with that request."
        elif kind == "long":
            content = "A photo of " + " and ".join(_article(n) for n in names) + ", " + \
                      " ".join(["with many small details"] * 30) + "."
        elif kind == "missing":
            content = f"A photo of {_article(names[0])} standing alone." if names else "A photo."
        elif kind == "echo_key":
            content = f"A photo of {_article(names[0]) if names else 'a thing'} and the code {key}."
        prompt_tokens, completion_tokens = token_counts(prompt, content)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        odd = {"usage_str": str, "usage_negative": lambda v: -5, "usage_garbage": lambda v: "lots",
               "usage_nan": lambda v: float("nan")}.get(kind)
        if odd is not None:
            usage = {k: odd(v) for k, v in usage.items()}
        model = server.served_model or ("other-model" if kind == "other_model" else payload.get("model", "fake"))
        if self.legacy:
            self._send_json(200, {
                "id": f"cmpl-{_h(prompt):08x}", "object": "text_completion", "created": 1700000000,
                "model": model,
                "choices": [{"index": 0, "text": content, "logprobs": None, "finish_reason": "stop"}],
                "usage": usage})
            return
        self._send_json(200, {
            "id": f"chatcmpl-{_h(prompt):08x}", "object": "chat.completion", "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": usage,
        })


if __name__ == "__main__":
    with ChatServer() as s:
        print(s.url, flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
