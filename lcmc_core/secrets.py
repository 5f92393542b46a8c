"""Keeping secrets out of parameters, notebooks, logs and results: detection and the one redaction helper.

Secrets come from the environment only. A parameter whose *name* looks like a secret (``api_key``,
``*_key``, ``*token*`` but not ``max_tokens``, ``*secret*``, ``password``), a *value* that looks
like an API key (``sk-...``, ``hf_...``, ``ghp_...``) and an endpoint URL that carries or can carry
credentials are refused before anything runs. The URL rule (:func:`url_credentials_message`, used
for every endpoint a user gives) is deliberately blunt, because keys travel under any name
(``?auth=``, ``?code=`` of Azure Functions, ``?X-Amz-Signature=``, ``/key=.../``): a URL with a
user name or password, **any** query string, a fragment, a ``name=value`` or ``;`` path segment or
a key-shaped path segment is refused; :func:`safe_url` shows a URL without any of these.
:func:`redact` is the single scrubber applied to everything written: the values of secret-looking
environment variables (plain and JSON-escaped), user info inside URLs, the values of secret-looking
``name=value`` parameters after ``?``, ``&``, ``;`` or ``/`` (key, token, secret, password, auth,
code, sig/signature, credential, ...), key-shaped tokens and servers' masked echoes of a key
("Incorrect API key provided: sk-ab***xyz"); :func:`redact_tree` and :func:`redact_file` apply it
to nested data and files.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = ["is_secret_name", "is_secret_parameter", "looks_like_secret_value", "secret_value_message",
           "secret_env_values", "redact", "redact_tree", "redact_file", "url_credentials_message", "safe_url", "REDACTED"]

REDACTED = "<redacted>"
_SECRET_SUBSTRINGS = ("secret", "password", "passwd", "apikey", "credential")
_TOKEN = re.compile(r"token(?!s(?:$|[^a-z])|i[sz])")
_SECRET_VALUE = re.compile(r"^(sk-|sk_|hf_|ghp_|gho_|ghs_|github_pat_|xox[abpr]-|AKIA|glpat-)[A-Za-z0-9_\-]{16,}$")
_SECRET_IN_TEXT = re.compile(r"\b(?:sk-|sk_|hf_|ghp_|gho_|ghs_|github_pat_|glpat-)[A-Za-z0-9_\-]{16,}")
_KEY_ECHO = re.compile(r"(api[ _-]?key(?: provided)?\s*[:=]\s*)[^\s'\",;}\]]+", re.I)
# user:password@ in any URL, and name=value parameters (query, matrix or path segment) whose name looks secret
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@]+)@")
_PARAMETER = re.compile(r"(?P<lead>[?&;/])(?P<name>[A-Za-z0-9_.\-]+)=(?P<value>[^&\s#\"'/;<>]+)")
# Words that mark a URL parameter as a credential, besides is_secret_name's (key, token, secret, password, ...)
_SECRET_PARAMETER_WORDS = {"key", "sig", "signature", "auth", "code", "sas", "pwd", "pass", "jwt", "session",
                           "sessionid", "jsessionid", "credential", "credentials", "otp", "hmac"}


def is_secret_name(key: str) -> bool:
    """Whether a parameter (or environment variable) name looks like it holds a secret."""
    k = str(key).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", k) if w]
    if words and words[-1] == "key":
        return True
    if any(s in k for s in _SECRET_SUBSTRINGS):
        return True
    return bool(_TOKEN.search(k))


def is_secret_parameter(name: str) -> bool:
    """Whether a URL parameter name (``auth``, ``code``, ``X-Amz-Signature``, ``api-key``, ...) may hold a credential."""
    words = [w for w in re.split(r"[^a-z0-9]+", str(name).lower()) if w]
    return is_secret_name(name) or any(w in _SECRET_PARAMETER_WORDS or w.startswith("auth") for w in words)


def looks_like_secret_value(value: Any) -> bool:
    """Whether a value looks like an API key or access token (``sk-...``, ``hf_...``, ``ghp_...``)."""
    return isinstance(value, str) and bool(_SECRET_VALUE.match(value.strip()))


def secret_value_message(key: str, where: str) -> str:
    """Why the value of ``key`` (set in ``where``) is refused: it looks like an API key."""
    return (f"the value of {key!r} ({where}) looks like an API key and is refused: secrets come from the "
            f"environment only (e.g. OPENAI_API_KEY), never from profiles or parameters")


def url_credentials_message(url: str, name: str) -> str | None:
    """Why ``url`` (parameter ``name``) is refused, or None: user info, a query, a fragment, a path segment holding a key.

    Every such part is refused whatever its name (keys travel as ``?auth=``, ``?code=``,
    ``?X-Amz-Signature=``, ``/key=.../``, ...); the message shows the URL through :func:`safe_url`.
    """
    text = str(url)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return f"{name}: the value is not a valid URL (expected e.g. http://localhost:8000/v1)"
    where = None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        where = "a user name or password before '@'"
    elif parts.query or "?" in text:
        secret = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True) if is_secret_parameter(k)]
        where = f"the query parameter {secret[0]!r}" if secret else "a query string"
    elif parts.fragment or "#" in text:
        where = "a fragment after '#'"
    else:
        segments = [seg for seg in parts.path.split("/") if seg]
        bad = [seg for seg in segments if "=" in seg or ";" in seg or _SECRET_IN_TEXT.search(seg)]
        if bad:
            shown = bad[0].split("=", 1)[0] + "=..." if "=" in bad[0] else "..."
            where = f"the path segment {shown!r}"
    if where is None:
        return None
    return (f"{name}: the URL carries credentials or may ({where}); a URL with user info, a query string, a "
            f"fragment or a name=value path segment is refused because keys travel there: give the endpoint alone "
            f"(e.g. {safe_url(text)}) and the key in the environment variable named by api_key_env "
            f"(llm.api_key_env in a profile)")


def safe_url(url: str | None) -> str | None:
    """``url`` without user info, query string and fragment, and with ``name=value`` or key-shaped path segments masked.

    For logs, summaries and error messages: whatever the URL held, no credential is shown.
    """
    if url is None:
        return None
    try:
        parts = urlsplit(str(url))
        port = parts.port
    except ValueError:
        return REDACTED
    host = parts.hostname or ""
    if port:
        host = f"{host}:{port}"
    segments = []
    for seg in parts.path.split("/"):
        if "=" in seg or ";" in seg:
            seg = seg.split(";", 1)[0].split("=", 1)[0] + "=" + REDACTED if "=" in seg.split(";", 1)[0] else REDACTED
        elif _SECRET_IN_TEXT.search(seg):
            seg = REDACTED
        segments.append(seg)
    return urlunsplit((parts.scheme, host, "/".join(segments), "", ""))


def secret_env_values(min_length: int = 8) -> list[str]:
    """Values of environment variables whose names look secret (for :func:`redact`), longest first."""
    values = {v for k, v in os.environ.items() if is_secret_name(k) and v and len(v) >= min_length}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | None = None, *, mark: str = REDACTED) -> str:
    """``text`` with secrets replaced by ``mark``: the given ``secrets`` (default: :func:`secret_env_values`),
    plain and JSON-escaped, URL credentials, key-like query values, key-shaped tokens and masked key echoes."""
    text = str(text)
    for s in (secret_env_values() if secrets is None else [s for s in secrets if s]):
        text = text.replace(s, mark)
        escaped = json.dumps(s)[1:-1]
        if escaped != s:
            text = text.replace(escaped, mark)
    text = _URL_USERINFO.sub(lambda m: m.group("scheme") + mark + "@", text)
    text = _PARAMETER.sub(lambda m: (m.group("lead") + m.group("name") + "=" + mark
                                     if is_secret_parameter(m.group("name")) else m.group(0)), text)
    text = _SECRET_IN_TEXT.sub(mark, text)
    return _KEY_ECHO.sub(lambda m: m.group(1) + mark, text)


def redact_tree(obj, secrets: Iterable[str] | None = None):
    """``obj`` with :func:`redact` applied to every string in it (dict keys and values, lists)."""
    secrets = list(secret_env_values() if secrets is None else secrets)
    if isinstance(obj, str):
        return redact(obj, secrets)
    if isinstance(obj, dict):
        return {redact_tree(k, secrets): redact_tree(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_tree(v, secrets) for v in obj]
    return obj


def redact_file(path, secrets: Iterable[str] | None = None) -> bool:
    """Rewrite a text file with :func:`redact` applied (atomically); True if anything changed."""
    from .cache import atomic_write

    path = Path(path)
    if not path.is_file():
        return False
    text = path.read_text(encoding="utf-8")
    clean = redact(text, secrets)
    if clean == text:
        return False
    atomic_write(path, clean)
    return True
