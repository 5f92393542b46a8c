"""Keeping secrets out of parameters, notebooks, logs and results: detection and the one redaction helper.

Secrets come from the environment only. A parameter whose *name* looks like a secret (``api_key``,
``*_key``, ``*token*`` but not ``max_tokens``, ``*secret*``, ``password``), a *value* that looks
like an API key (``sk-...``, ``hf_...``, ``ghp_...``) and a URL carrying credentials
(``http://user:sk-...@host/v1``, ``?api_key=...``) are refused before anything runs.
:func:`redact` is the single scrubber applied to everything written: the values of secret-looking
environment variables (plain and JSON-escaped), credentials inside URLs, and servers' masked
echoes of a key ("Incorrect API key provided: sk-ab***xyz"); :func:`redact_tree` and
:func:`redact_file` apply it to nested data and files.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = ["is_secret_name", "looks_like_secret_value", "secret_value_message", "secret_env_values", "redact",
           "redact_tree", "redact_file", "url_credentials_message", "safe_url", "REDACTED"]

REDACTED = "<redacted>"
_SECRET_SUBSTRINGS = ("secret", "password", "passwd", "apikey", "credential")
_TOKEN = re.compile(r"token(?!s(?:$|[^a-z])|i[sz])")
_SECRET_VALUE = re.compile(r"^(sk-|sk_|hf_|ghp_|gho_|ghs_|github_pat_|xox[abpr]-|AKIA|glpat-)[A-Za-z0-9_\-]{16,}$")
_SECRET_IN_TEXT = re.compile(r"\b(?:sk-|sk_|hf_|ghp_|gho_|ghs_|github_pat_|glpat-)[A-Za-z0-9_\-]{16,}")
_KEY_ECHO = re.compile(r"(api[ _-]?key(?: provided)?\s*[:=]\s*)[^\s'\",;}\]]+", re.I)
# user:password@ in any URL, and key-like query parameters
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@]+)@")
_SECRET_QUERY = re.compile(r"([?&](?:api[_-]?key|key|token|access_token|secret|password|sig|signature)=)[^&\s#\"']+",
                           re.I)


def is_secret_name(key: str) -> bool:
    """Whether a parameter (or environment variable) name looks like it holds a secret."""
    k = str(key).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", k) if w]
    if words and words[-1] == "key":
        return True
    if any(s in k for s in _SECRET_SUBSTRINGS):
        return True
    return bool(_TOKEN.search(k))


def looks_like_secret_value(value: Any) -> bool:
    """Whether a value looks like an API key or access token (``sk-...``, ``hf_...``, ``ghp_...``)."""
    return isinstance(value, str) and bool(_SECRET_VALUE.match(value.strip()))


def secret_value_message(key: str, where: str) -> str:
    """Why the value of ``key`` (set in ``where``) is refused: it looks like an API key."""
    return (f"the value of {key!r} ({where}) looks like an API key and is refused: secrets come from the "
            f"environment only (e.g. OPENAI_API_KEY), never from profiles or parameters")


def url_credentials_message(url: str, name: str) -> str | None:
    """Why ``url`` (parameter ``name``) is refused: it carries credentials; None when it carries none."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return None
    secret_query = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True) if is_secret_name(k)
                    or k.lower() in ("key", "sig", "signature")]
    if parts.username or parts.password or secret_query:
        where = "user name or password" if (parts.username or parts.password) else f"query parameter {secret_query[0]!r}"
        return (f"{name}: the URL carries credentials ({where}) and is refused: give the URL without them "
                f"(e.g. {safe_url(url)}) and put the key in the environment variable named by llm.api_key_env")
    return None


def safe_url(url: str | None) -> str | None:
    """``url`` without user info and query string (where credentials may hide), for logs and summaries."""
    if url is None:
        return None
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


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
    text = _SECRET_QUERY.sub(lambda m: m.group(1) + mark, text)
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
