"""Judging one LLM answer: clean it to the sentence it holds, then accept or reject it with a reason.

:func:`clean_text` strips white space, surrounding quotes, a preamble line ("Sure! Here is a
sentence:"), a "Sentence:" prefix or a list marker, and keeps the first sentence of the first line.
:func:`validate_answer` then checks, in this order (:data:`REASONS`): ``empty``, ``refused``
(refusal wording or ``finish_reason="content_filter"``), ``truncated`` (``finish_reason="length"``
without final punctuation), ``overlong``, ``no_labels``, ``missing_labels``, ``extra_labels``. The
first three and ``no_labels`` always drop the answer (:data:`ALWAYS_DROPPED`); the others follow a
policy (:data:`DEFAULT_POLICY`: drop truncated and overlong answers, keep sentences that miss or
add labels, since a sentence's labels are the classes it names).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from .label_sets import get_label_set

__all__ = ["DEFAULT_POLICY", "ALWAYS_DROPPED", "REASONS", "Verdict", "clean_text", "is_refusal",
           "check_policy", "validate_answer"]

#: What happens to answers with each policy-governed issue ("drop" or "keep").
DEFAULT_POLICY: dict[str, str] = {"truncated": "drop", "overlong": "drop", "missing_labels": "keep",
                                  "extra_labels": "keep"}
#: Issues that always drop an answer.
ALWAYS_DROPPED = ("empty", "refused", "no_labels")
#: Every issue, in the order they are checked (a rejected answer's reason is the first dropping one).
REASONS = ("empty", "refused", "truncated", "overlong", "no_labels", "missing_labels", "extra_labels")

# --------------------------------------------------------------------------------------------
# Cleaning and validation
# --------------------------------------------------------------------------------------------

_QUOTE_PAIRS = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "`": "`",
                "\u00ab": "\u00bb", "*": "*", "_": "_"}
_CLOSERS = set(_QUOTE_PAIRS.values())
_PREFIX_RE = re.compile(r"^(?:sentence|caption|description|answer|output|response)\s*\d*\s*[:\-\u2013]\s*", re.I)
_LIST_RE = re.compile(r"^(?:[-*\u2022]\s+|\d{1,2}[.)]\s+)")
_PREAMBLE_RE = re.compile(r"^(?:sure|certainly|of course|okay|ok|absolutely|here(?:'s| is| are)|"
                          r"this is|below is)\b", re.I)
_SENTENCE_END_RE = re.compile(r"[.!?]+[\"'\u201d\u2019)\]*_]*(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9])")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "no", "mt",
                  "ft", "approx", "prof", "inc", "co", "u.s", "u.k", "a.m", "p.m"}
_FINAL_PUNCT_RE = re.compile(r"[.!?][\"'\u201d\u2019)\]]*$")
_REFUSAL_START_RE = re.compile(
    r"^(?:i'?m sorry|i am sorry|sorry\b|i apologi[sz]e|my apologies|i can'?t\b|i cannot\b|i can not\b|"
    r"i'?m (?:not able|unable)|i am (?:not able|unable)|i won'?t\b|i will not\b|i'?m afraid\b|"
    r"unfortunately,? i\b|as an ai\b|i do not feel comfortable|i don'?t feel comfortable)", re.I)
_REFUSAL_ANY_RE = re.compile(r"\bas an ai(?: language)? model\b|\bi (?:cannot|can'?t|am unable to|'m unable to) "
                             r"(?:create|generate|write|describe|help|provide|assist|fulfil)", re.I)


def _strip_quotes(text: str) -> str:
    text = text.strip()
    while len(text) >= 2 and text[0] in _QUOTE_PAIRS and text[-1] == _QUOTE_PAIRS[text[0]]:
        text = text[1:-1].strip()
    if text and text[0] in _QUOTE_PAIRS and _QUOTE_PAIRS[text[0]] not in text[1:]:
        text = text[1:].strip()          # a lone opening quote (the closing one was cut off)
    if text and text[-1] in _CLOSERS and text[-1] not in "'*_":
        opener = next(o for o, c in _QUOTE_PAIRS.items() if c == text[-1])
        if opener not in text[:-1] and (opener != text[-1] or text[:-1].count(opener) % 2 == 0):
            text = text[:-1].strip()     # a lone closing quote
    return text


def _first_sentence(text: str) -> str:
    for m in _SENTENCE_END_RE.finditer(text):
        before = text[:m.start()]
        word = re.search(r"([\w.]+)$", before)
        if word and (word.group(1).lower().rstrip(".") in _ABBREVIATIONS or len(word.group(1)) == 1):
            continue
        return text[:m.end()]
    return text


def clean_text(raw: str) -> str:
    """Return the sentence in an LLM answer: first real line, no preamble/prefix/quotes, first sentence only."""
    if not isinstance(raw, str):
        raise TypeError(f"clean_text: expected the answer as str, got {type(raw).__name__}")
    lines = [ln.strip() for ln in raw.replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln and not re.fullmatch(r"[`'\"*_\-=\s]+", ln)]
    if not lines:
        return ""
    line = lines[0]
    for candidate in lines:
        bare = _strip_quotes(candidate)
        if bare.endswith(":") or (_PREAMBLE_RE.match(bare) and len(lines) > 1 and bare.endswith((":", "!"))):
            continue
        line = candidate
        break
    for _ in range(3):
        line = _strip_quotes(_LIST_RE.sub("", _PREFIX_RE.sub("", _strip_quotes(line))))
    line = _strip_quotes(_first_sentence(line))
    return " ".join(line.split())


def is_refusal(text: str) -> bool:
    """True if ``text`` reads like a model refusing ("I'm sorry, I can't ...", "As an AI language model ...")."""
    t = text.replace("\u2019", "'").strip()
    return bool(_REFUSAL_START_RE.match(t) or _REFUSAL_ANY_RE.search(t))


@dataclass
class Verdict:
    """The outcome of validating one answer: cleaned text, extracted labels, issues, and the drop reason (None = kept)."""

    text: str
    label_ids: list
    issues: list
    reason: str | None

    @property
    def kept(self) -> bool:
        """True when the answer goes into the corpus."""
        return self.reason is None


def check_policy(policy: dict | None) -> dict:
    merged = dict(DEFAULT_POLICY)
    if policy is None:
        return merged
    if not isinstance(policy, dict):
        raise TypeError(f"policy must be a dict such as {{'missing_labels': 'drop'}}, got {type(policy).__name__}")
    for key, value in policy.items():
        if key in ALWAYS_DROPPED:
            if value != "drop":
                raise ConfigError(f"policy[{key!r}] cannot be {value!r}: {', '.join(ALWAYS_DROPPED)} answers "
                                 f"are always dropped")
            continue
        if key not in DEFAULT_POLICY:
            raise ConfigError(f"unknown policy key {key!r}; expected some of {sorted(DEFAULT_POLICY)}")
        if value not in ("drop", "keep"):
            raise ConfigError(f"policy[{key!r}] must be 'drop' or 'keep', got {value!r}")
        merged[key] = value
    return merged


def validate_answer(raw: str, requested_ids: Sequence[int], label_set, *,
                    policy: dict | None = None, max_words: int = 50, max_chars: int = 300,
                    finish_reason: str | None = None) -> Verdict:
    """Clean an answer and judge it (see the module docstring for the issues and the policy)."""
    ls = get_label_set(label_set)
    pol = check_policy(policy)
    text = clean_text(raw)
    issues = []
    ids: set[int] = set()
    if not text:
        issues.append("empty")
    else:
        if is_refusal(text) or finish_reason == "content_filter":
            issues.append("refused")
        if finish_reason == "length" and not _FINAL_PUNCT_RE.search(text):
            issues.append("truncated")
        if len(text.split()) > max_words or len(text) > max_chars:
            issues.append("overlong")
        ids = ls.extract(text)
        want = {int(i) for i in requested_ids}
        if not ids:
            issues.append("no_labels")
        else:
            if want - ids:
                issues.append("missing_labels")
            if ids - want:
                issues.append("extra_labels")
    reason = next((i for i in issues if i in ALWAYS_DROPPED or pol.get(i) == "drop"), None)
    return Verdict(text, sorted(ids), issues, reason)
