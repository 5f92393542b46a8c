"""The text corpus of CoMC: sentences that name a few labels each, and their multi-hot targets.

CoMC trains its multi-label classifier on text only. The corpus is made in four steps, each a
function here:

1. **Plan** (:func:`sample_label_sets`, :func:`make_requests`). As in the paper, each request asks
   for k labels with k uniform in ``k_range`` (1..5), drawn uniformly without replacement from
   the label set; optionally the draw is weighted by a co-occurrence prior (see
   :func:`sample_label_sets`). Entry ``i`` depends only on ``(seed, i)``, so a plan can be
   extended or resumed at any index and an LLM run can be restarted where it stopped.
2. **Prompt** (:func:`paper_prompt`): "Please make a brief sentence to describe a photo that
   contains dog, cat." (the official prompt, with the classes' natural prompt names).
3. **Generate** with a :class:`SentenceGenerator`: it turns :class:`Request` objects into
   :class:`Response` objects (same ``index``). :class:`TemplateGenerator` is the offline,
   deterministic stand-in for the LLM (varied, natural sentences; each names exactly the
   requested labels). An LLM generator (OpenAI client, transformers) implements the same one
   method and may answer out of order, concurrently, or leave out requests it failed.
4. **Label** (:func:`extract_labels`): as in the paper, a sentence's labels are the classes its
   text actually names (:meth:`lcmc_core.labels.LabelSet.extract`); the requested labels are
   kept in the record as ``requested``.

:func:`build_corpus` runs all four. :func:`prompt_augmentation` adds the paper's single-label
texts: for every class, ``copies`` (9) copies of "a photo of a {class}." plus one text per
template of :data:`PROMPT_TEMPLATES` (our own 80 ImageNet-style templates).

Storage is JSON Lines (optionally gzip-compressed when the name ends in ``.gz``), one record per
line::

    {"text": "Two dogs next to a cat.", "labels": ["cat", "dog"], "label_ids": [7, 11],
     "source": "template", "requested": ["dog", "cat"], "index": 12}

``labels`` (official class names) is authoritative; ``label_ids`` must agree with it when given;
``requested`` and ``index`` are optional. :func:`write_corpus` / :func:`read_corpus` store and
load it (errors name the file and line); a :class:`Corpus` holds texts, an N x C int8 multi-hot
target matrix and sources. :func:`label_statistics`, :func:`labels_per_text` and
:func:`cooccurrence_counts` describe it; co-occurrence counts of one corpus can serve as the
prior of the next plan.
"""
from __future__ import annotations

import abc
import gzip
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, Union

import numpy as np
import pandas as pd

from .labels import LabelSet, get_label_set, pluralize, with_article

__all__ = [
    "Request", "Response", "SentenceGenerator", "TemplateGenerator", "Corpus",
    "PROMPT_TEMPLATES", "PAPER_PROMPT", "sample_label_sets", "make_requests", "paper_prompt",
    "extract_labels", "make_record", "prompt_augmentation", "build_corpus", "write_corpus",
    "read_corpus", "corpus_from_records", "completed_indices", "label_statistics",
    "labels_per_text", "cooccurrence_counts", "get_generator",
]

LabelSetLike = Union[str, LabelSet]
#: A co-occurrence prior: a C x C matrix of non-negative weights, or a function
#: ``prior(chosen: tuple[int, ...]) -> weights`` (length C, non-negative); see sample_label_sets.
Prior = Union[np.ndarray, Sequence[Sequence[float]], Callable[[tuple], Sequence[float]]]

#: The official CoMC prompt; ``{}`` receives the class names joined by ", ".
PAPER_PROMPT = "Please make a brief sentence to describe a photo that contains {}."


# --------------------------------------------------------------------------------------------
# 1. The plan
# --------------------------------------------------------------------------------------------

def _check_k_range(k_range, n_classes: int) -> tuple[int, int]:
    try:
        lo, hi = (int(k) for k in k_range)
    except (TypeError, ValueError):
        raise ValueError(f"k_range must be a pair of integers (low, high), got {k_range!r}") from None
    if not 1 <= lo <= hi:
        raise ValueError(f"k_range must satisfy 1 <= low <= high, got {k_range!r}")
    if lo > n_classes:
        raise ValueError(f"k_range {k_range!r} asks for at least {lo} labels but the label set "
                         f"has only {n_classes} classes")
    return lo, min(hi, n_classes)


def _prior_weights(prior, n_classes: int):
    """Return a function chosen -> weights (length C) from a matrix or a callable prior."""
    if callable(prior):
        return prior
    matrix = np.asarray(prior, dtype=np.float64)
    if matrix.shape != (n_classes, n_classes):
        raise ValueError(f"prior must be a {n_classes} x {n_classes} matrix (or a callable), "
                         f"got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)) or (matrix < 0).any():
        raise ValueError("prior must hold finite, non-negative weights")
    matrix = (matrix + matrix.T) / 2
    diag = np.diag(matrix).copy()
    first = diag if diag.sum() > 0 else np.ones(n_classes)
    off = matrix.copy()
    np.fill_diagonal(off, 0.0)

    def weights(chosen: tuple) -> np.ndarray:
        if not chosen:
            return first
        return off[list(chosen)].sum(axis=0)
    return weights


def sample_label_sets(label_set: LabelSetLike, n: int, seed: int, k_range=(1, 5),
                      prior: Prior | None = None, *, start: int = 0) -> list[tuple[int, ...]]:
    """Return the request plan: ``n`` label-index tuples (entries ``start .. start+n-1``), each from ``(seed, index)`` alone.

    ``k`` is uniform in ``k_range`` (inclusive; capped at C). Without a ``prior`` the labels are
    drawn uniformly without replacement, as in the paper. With a prior they are drawn one after
    another: a C x C matrix ``W`` of co-occurrence weights (e.g. :func:`cooccurrence_counts` of a
    real training set; it is symmetrised) draws the first label in proportion to ``diag(W)``
    (uniformly when the diagonal is all zero) and each further label ``j`` in proportion to
    ``sum over chosen i of W[i, j]``. A callable ``prior(chosen) -> weights`` gives the weights
    directly (``chosen`` is ``()`` for the first label). Labels already chosen are never drawn
    again; when all remaining weights are zero the next label is drawn uniformly, so every
    entry has exactly ``k`` labels. Tuples keep the draw order (the order of the prompt).
    """
    ls = get_label_set(label_set)
    n, seed, start = int(n), int(seed), int(start)
    if n < 0 or start < 0:
        raise ValueError(f"sample_label_sets: n ({n}) and start ({start}) must be >= 0")
    if seed < 0:
        raise ValueError(f"sample_label_sets: seed must be >= 0, got {seed}")
    C = len(ls)
    lo, hi = _check_k_range(k_range, C)
    weights_of = None if prior is None else _prior_weights(prior, C)
    plan = []
    for i in range(start, start + n):
        rng = np.random.default_rng([seed, i])
        k = int(rng.integers(lo, hi + 1))
        if weights_of is None:
            plan.append(tuple(int(j) for j in rng.choice(C, size=k, replace=False)))
            continue
        chosen: list[int] = []
        for _ in range(k):
            w = np.asarray(weights_of(tuple(chosen)), dtype=np.float64).copy()
            if w.shape != (C,) or not np.all(np.isfinite(w)) or (w < 0).any():
                raise ValueError(f"prior returned invalid weights for chosen={tuple(chosen)}: expected "
                                 f"{C} finite non-negative numbers, got shape {w.shape}")
            w[chosen] = 0.0
            if w.sum() <= 0:
                w = np.ones(C)
                w[chosen] = 0.0
            chosen.append(int(rng.choice(C, p=w / w.sum())))
        plan.append(tuple(chosen))
    return plan


def paper_prompt(names: Sequence[str]) -> str:
    """Return the paper's LLM prompt for the given class names."""
    names = [str(n) for n in names]
    if not names:
        raise ValueError("paper_prompt: expected at least one class name")
    return PAPER_PROMPT.format(", ".join(names))


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


def make_requests(label_set: LabelSetLike, n: int, seed: int, k_range=(1, 5),
                  prior: Prior | None = None, *, start: int = 0,
                  prompt_fn: Callable[[Sequence[str]], str] = paper_prompt) -> list[Request]:
    """Return :class:`Request` objects for plan entries ``start .. start+n-1`` (see :func:`sample_label_sets`)."""
    ls = get_label_set(label_set)
    plan = sample_label_sets(ls, n, seed, k_range, prior, start=start)
    requests = []
    for offset, ids in enumerate(plan):
        names = tuple(ls.prompt_names[i] for i in ids)
        requests.append(Request(start + offset, ids, names, prompt_fn(names)))
    return requests


# --------------------------------------------------------------------------------------------
# 2. Generators
# --------------------------------------------------------------------------------------------

class SentenceGenerator(abc.ABC):
    """Turns requests into sentences.

    ``generate`` yields one :class:`Response` per request it could answer, matched by
    ``index``; responses may come in any order (concurrent LLM calls) and failed requests may
    be left out (the caller can retry them later, see :func:`completed_indices`). ``source`` is
    written to every record.
    """

    source: str = "unknown"

    @abc.abstractmethod
    def generate(self, requests: Iterable[Request]) -> Iterator[Response]:
        """Yield a :class:`Response` for each request answered."""


# Fragments of template sentences. Every fragment that names a class of the label set in use
# is dropped for that label set, so sentences name exactly the requested classes.
_FRAMES_ANY = [
    "A photo of {L}{C}.", "{L}{C}.", "There {be} {L}{C}.", "{L} can be seen{C}.",
    "This picture shows {L}{C}.", "In this image, {L} {be} visible{C}.", "Here you can see {L}{C}.",
    "A snapshot of {L}{C}.", "An image of {L}{C}.", "A close-up shot of {L}{C}.", "We see {L}{C}.",
    "A scene with {L}{C}.", "Someone took a picture of {L}{C}.", "The photo features {L}{C}.",
    "Look at {L}{C}!", "A candid shot of {L}{C}.", "{L} {be} shown{C}.", "My photo of {L}{C}.",
    "A wide shot showing {L}{C}.", "An everyday scene: {L}{C}.", "Just {L}{C}.",
    "The picture captures {L}{C}.", "A quick snap of {L}{C}.", "{L}, all in one shot{C}.",
    "This is a photograph of {L}{C}.", "An old photograph of {L}{C}.",
]
_FRAMES_MULTI = [
    "{L} together{C}.", "{A} {prep} {B}{C}.", "{A} {prep} {B}, with {R}{C}.",
    "{A} and {B}{C}, along with {R}.", "Both {A} and {B} appear{C}.",
    "{A} {prep} {B}, and {R} nearby{C}.",
]
_PREPOSITIONS = ["next to", "beside", "near", "in front of", "behind", "close to", "alongside",
                 "not far from", "together with", "facing"]
_CONTEXTS = [
    "in a park", "in the morning", "indoors", "outdoors", "in a small room", "in the kitchen",
    "in the countryside", "at the market", "at a campsite", "in the living room", "in a garage",
    "on a farm", "in a field", "at the zoo", "in winter", "in summer", "at the station",
    "during the day", "in the afternoon light", "in the rain", "under a bright light",
    "at an event", "in the distance", "in the foreground", "on vacation", "at the airport",
    "on a cloudy afternoon", "in the evening", "on a quiet street", "by the lake", "at the beach",
    "in the city", "near the window", "in a garden", "on a warm day", "at home", "in an office",
    "in a village", "in the mountains", "by the sea", "in the snow", "at sunset", "at night",
]
_ADJECTIVES = ["small", "large", "big", "little", "old", "new", "beautiful", "colorful", "red",
               "blue", "white", "black", "brown", "gray", "green", "yellow", "dark", "tiny",
               "huge", "lovely", "shiny", "pretty"]
# Adjectives for people (the generic ones above read oddly: "a red person").
_PERSON_ADJECTIVES = ["young", "tall", "smiling", "happy", "elderly", "cheerful", "busy", "tired"]
_COUNTS = ["two", "three", "four", "five", "several", "a few", "some", "many", "a couple of",
           "a group of", "2", "3"]
# Phrases for classes whose prompt names are not countable nouns: (noun phrases, adverbials).
_MASS_PHRASES = {
    "night": ([], ["at night", "late at night", "during the night", "on a dark night"]),
    "sky": (["the sky", "a clear sky", "a blue sky"], ["under a clear sky", "against the sky"]),
    "snow": (["snow", "fresh snow", "deep snow"], ["in the snow", "covered in snow"]),
    "sand": (["sand", "white sand", "the sand"], ["on the sand", "in the sand"]),
    "grass": (["grass", "green grass", "tall grass"], ["on the grass", "in the grass"]),
    "water": (["water", "calm water", "clear water"], ["in the water", "by the water"]),
    "surf": (["the surf", "rough surf"], ["in the surf"]),
    "frost": (["frost", "thick frost"], ["covered in frost"]),
    "fire": (["a fire", "a small fire", "a big fire"], []),
    "food": (["some food", "a plate of food", "plenty of food"], []),
    "dancing": (["two dancers", "a dancer", "dancers"], []),
    "running": (["a runner", "runners", "a jogger"], []),
    "soccer": (["a soccer ball", "a soccer match", "a soccer game"], []),
    "military": (["soldiers", "a soldier", "an army unit"], []),
    "police": (["the police", "a police officer", "two policemen"], []),
    "coral": (["coral", "a coral reef", "colorful coral"], []),
    "broccoli": (["broccoli", "some broccoli", "fresh broccoli"], []),
    "scissors": (["scissors", "a pair of scissors"], []),
}
_PLURAL_PHRASES = {"two dancers", "dancers", "runners", "soldiers", "two policemen", "scissors"}
# Synonyms that are not plain countable nouns: never used by the template generator.
_NOT_NOUNS = {
    "snowy", "sunny", "frosty", "tattooed", "reflected", "overcast", "swim", "dance", "swimming",
    "jogging", "surfing", "skiing", "golf", "tennis", "rugby", "hockey", "ballet", "basketball",
    "baseball", "volleyball", "cricket", "football", "sprint", "rubble", "moonlight", "rime",
    "hoarfrost", "sunshine", "sunlight", "wildlife", "foliage", "luggage", "marathon", "cattle",
    "people", "crowd", "quake", "table tennis", "ice skating", "ice hockey", "ice", "desert",
    "twilight", "dusk", "dawn", "midnight", "nightfall", "night time", "nighttime", "niagara falls",
    "downtown", "sub sandwich", "lego", "alps", "woods", "rally", "running water",
    "pool of water", "signage", "earthquake damage", "cycling race", "stadium", "street food",
}
_MAX_TRIES = 25


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(phrases: Sequence[str], rng: np.random.Generator) -> str:
    if len(phrases) == 1:
        return phrases[0]
    conj = " and " if rng.random() < 0.85 else (" as well as " if len(phrases) == 2 else " and ")
    comma = "," if len(phrases) > 2 and rng.random() < 0.5 else ""
    return ", ".join(phrases[:-1]) + comma + conj + phrases[-1]


class TemplateGenerator(SentenceGenerator):
    """Offline, deterministic sentence writer: varied sentences that name exactly the requested labels.

    Each sentence depends only on ``(seed, request.index, request.label_ids)``. It uses many
    frames, prompt names or synonyms, singular or plural with counts, determiners, adjectives
    and scene context; fragments that would name another class of the label set are never used
    for it. Each sentence is checked with :meth:`LabelSet.extract` and redrawn (up to 25 times)
    until it names exactly the requested classes, falling back to "A photo of X, Y and Z." built
    from prompt names, which names every class of the shipped label sets (tested).
    """

    source = "template"

    def __init__(self, label_set: LabelSetLike, seed: int = 0):
        self.label_set = get_label_set(label_set)
        self.seed = int(seed)
        ls = self.label_set
        clean = lambda s: not ls.extract(s.replace("{", " ").replace("}", " "))  # noqa: E731
        self._frames = [f for f in _FRAMES_ANY if clean(f)]
        self._frames_multi = [f for f in _FRAMES_MULTI if clean(f)]
        self._preps = [p for p in _PREPOSITIONS if clean(p)]
        self._contexts = [c for c in _CONTEXTS if clean(c)]
        self._adjectives = [a for a in _ADJECTIVES if clean(a)]
        self._person_adjectives = [a for a in _PERSON_ADJECTIVES if clean(a)]
        self._forms = []
        for i in range(len(ls)):
            name = ls.prompt_names[i]
            forms = [f for f in ls.synonyms[i] if f.lower() not in _NOT_NOUNS and f != name
                     and with_article(f) != f]
            self._forms.append([name] + forms)

    def _phrase(self, i: int, rng: np.random.Generator) -> tuple[str, bool, bool]:
        """Return (phrase, is_plural, is_adverbial) for class ``i``."""
        name = self.label_set.prompt_names[i]
        if name in _MASS_PHRASES:
            nps, advs = _MASS_PHRASES[name]
            if advs and (not nps or rng.random() < 0.4):
                return str(rng.choice(advs)), False, True
            np_ = str(rng.choice(nps))
            return np_, np_ in _PLURAL_PHRASES, False
        if with_article(name) == name:  # other mass nouns
            return (name if rng.random() < 0.5 else f"the {name}"), False, False
        forms = self._forms[i]
        form = name if rng.random() < 0.5 or len(forms) == 1 else str(rng.choice(forms[1:]))
        adjectives = self._person_adjectives if name == "person" else self._adjectives
        adj = str(rng.choice(adjectives)) + " " if adjectives and rng.random() < 0.3 else ""
        if " of " not in form and rng.random() < 0.4:
            return f"{rng.choice(_COUNTS)} {adj}{pluralize(form)}", True, False
        r = rng.random()
        if r < 0.6:
            return with_article(adj + form), False, False
        if r < 0.9:
            return f"the {adj}{form}", False, False
        return f"one {adj}{form}", False, False

    def sentence(self, index: int, label_ids: Sequence[int]) -> str:
        """Return the sentence for request ``index`` naming classes ``label_ids``."""
        ls = self.label_set
        want = {int(i) for i in label_ids}
        if not want:
            raise ValueError(f"TemplateGenerator: request {index} has no labels")
        bad = [i for i in want if not 0 <= i < len(ls)]
        if bad:
            raise ValueError(f"TemplateGenerator: request {index} has label ids {bad} outside 0..{len(ls) - 1}")
        rng = np.random.default_rng([self.seed, int(index), *sorted(want)])
        for _ in range(_MAX_TRIES):
            text = self._compose([int(i) for i in label_ids], rng)
            if ls.extract(text) == want:
                return text
        return self.fallback(label_ids)

    def fallback(self, label_ids: Sequence[int]) -> str:
        """The plain sentence used when no varied one names exactly the labels."""
        ls = self.label_set
        return f"A photo of {_join([with_article(ls.prompt_names[i]) for i in label_ids], _FixedRng())}."

    def _compose(self, ids: list[int], rng: np.random.Generator) -> str:
        order = list(rng.permutation(len(ids))) if rng.random() < 0.5 else list(range(len(ids)))
        nps, advs, plural = [], [], []
        for j in order:
            phrase, is_plural, is_adv = self._phrase(ids[j], rng)
            (advs if is_adv else nps).append(phrase)
            if not is_adv:
                plural.append(is_plural)
        if not nps:  # only adverbial classes: make the first one a noun phrase
            return f"A photo taken {_join(advs, rng)}."
        context = " " + " and ".join(advs) if advs else ""
        if not advs and self._contexts and rng.random() < 0.5:
            context = " " + str(rng.choice(self._contexts))
        if len(nps) >= 2 and self._frames_multi and self._preps and rng.random() < 0.4:
            frame = str(rng.choice(self._frames_multi))
            a, b, rest = nps[0], nps[1], nps[2:]
            if ("{R}" in frame and not rest) or (frame.startswith("Both") and rest):
                frame = "{A} {prep} {B}{C}."
            if "{R}" not in frame and rest:
                b = _join([b] + rest, rng)
            text = frame.format(A=a, B=b, R=_join(rest, rng) if rest else "",
                                prep=rng.choice(self._preps), C=context, L=_join(nps, rng))
        else:
            frame = str(rng.choice(self._frames))
            be = "are" if len(nps) > 1 or plural[0] else "is"
            text = frame.format(L=_join(nps, rng), C=context, be=be)
        return _cap(text)

    def generate(self, requests: Iterable[Request]) -> Iterator[Response]:
        """Yield one template sentence per request, in request order."""
        for req in requests:
            yield Response(req.index, self.sentence(req.index, req.label_ids), self.source)


class _FixedRng:
    """Stands in for a Generator in :func:`_join` to make the fallback sentence fixed."""

    def random(self) -> float:
        return 0.0


def get_generator(generator: Union[str, SentenceGenerator], label_set: LabelSetLike,
                  seed: int = 0, **options) -> SentenceGenerator:
    """Return a generator instance: ``"template"``, ``"openai"`` or ``"transformers"`` (built with ``options``, see :mod:`lcmc_core.llm`); instances pass through."""
    if isinstance(generator, str):
        if generator == "template" and not options:
            return TemplateGenerator(label_set, seed)
        if generator in ("template", "openai", "transformers"):
            from .llm import make_generator  # imported lazily: LLM clients are not needed offline
            return make_generator(generator, label_set, seed, **options)
        raise ValueError(f"unknown generator {generator!r}; expected 'template', 'openai', 'transformers' "
                         f"or a SentenceGenerator instance")
    if not callable(getattr(generator, "generate", None)):
        raise TypeError(f"generator must be 'template' or have a generate(requests) method, got "
                        f"{type(generator).__name__}")
    return generator


# --------------------------------------------------------------------------------------------
# 3. Labels and records
# --------------------------------------------------------------------------------------------

def extract_labels(text: str, label_set: LabelSetLike) -> set[int]:
    """Return the class indices that ``text`` names (see :meth:`LabelSet.extract`)."""
    return get_label_set(label_set).extract(text)


def make_record(text: str, label_ids: Iterable[int], label_set: LabelSetLike, source: str,
                **extra) -> dict:
    """Return one corpus record (sorted label ids, their official names, the source, extra fields)."""
    ls = get_label_set(label_set)
    ids = sorted({int(i) for i in label_ids})
    return {"text": text, "labels": ls.names(ids), "label_ids": ids, "source": source, **extra}


def build_corpus(label_set: LabelSetLike, n: int, seed: int,
                 generator: Union[str, SentenceGenerator] = "template", *, k_range=(1, 5),
                 prior: Prior | None = None, start: int = 0,
                 prompt_fn: Callable[[Sequence[str]], str] = paper_prompt,
                 drop_unlabeled: bool = True) -> list[dict]:
    """Plan, generate and label ``n`` sentences; return records sorted by plan index.

    A record's labels are those its text names (``extract_labels``); ``requested`` holds the
    asked-for class names and ``index`` the plan position. Requests the generator leaves out
    are missing from the result; with ``drop_unlabeled`` texts naming no class are dropped.
    """
    ls = get_label_set(label_set)
    gen = get_generator(generator, ls, seed)
    requests = make_requests(ls, n, seed, k_range, prior, start=start, prompt_fn=prompt_fn)
    by_index = {r.index: r for r in requests}
    records = {}
    for resp in gen.generate(requests):
        req = by_index.get(resp.index)
        if req is None:
            raise ValueError(f"generator {type(gen).__name__} answered unknown request index {resp.index}")
        if not isinstance(resp.text, str):
            raise TypeError(f"generator {type(gen).__name__} returned {type(resp.text).__name__} "
                            f"text for request {resp.index}")
        text = resp.text.strip()
        ids = ls.extract(text)
        if drop_unlabeled and not ids:
            continue
        records[resp.index] = make_record(text, ids, ls, resp.source or getattr(gen, "source", "unknown"),
                                          requested=ls.names(req.label_ids), index=req.index)
    return [records[i] for i in sorted(records)]


# Our own 80 ImageNet-style single-label templates: "{a}" is the class name with its
# indefinite article ("an airplane", "snow"), "{c}" the bare name. No template names a class of
# any shipped label set (tested), so each text is a clean single-label example.
PROMPT_TEMPLATES: tuple[str, ...] = (
    "a bad photo of {a}.", "a good photo of {a}.", "a photo of many {p}.", "a photo of the {c}.",
    "a blurry photo of {a}.", "a sharp photo of the {c}.", "a cropped photo of {a}.",
    "a close-up photo of {a}.", "a bright photo of {a}.", "a dark photo of {a}.",
    "a low resolution photo of {a}.", "a high resolution photo of {a}.", "a pixelated photo of {a}.",
    "a jpeg corrupted photo of {a}.", "a black and white photo of {a}.", "a grainy photo of {a}.",
    "an overexposed photo of {a}.", "an underexposed photo of {a}.", "a tilted photo of {a}.",
    "a photo of a small {c}.", "a photo of a large {c}.", "a photo of the small {c}.",
    "a photo of the big {c}.", "a photo of my {c}.", "a photo of one {c}.",
    "a photo of a clean {c}.", "a photo of a dirty {c}.", "a photo of a weird {c}.",
    "a photo of a cool {c}.", "a photo of a nice {c}.", "a photo of an old {c}.",
    "a photo of a new {c}.", "a cropped photo of the {c}.", "a close-up of the {c}.",
    "a snapshot of {a}.", "a picture of {a}.", "an image of {a}.", "an image showing {a}.",
    "a photograph of {a}.", "a stock photo of {a}.", "a travel photo of {a}.",
    "an amateur photo of {a}.", "a professional photo of {a}.", "a vintage photo of {a}.",
    "a polaroid of {a}.", "a selfie with {a}.", "a zoomed-in photo of {a}.",
    "a wide-angle photo of {a}.", "a photo of {a} in the distance.", "a photo of {a} up close.",
    "a drawing of {a}.", "a sketch of {a}.", "a pencil sketch of the {c}.", "a painting of {a}.",
    "an oil painting of the {c}.", "a watercolor of {a}.", "a cartoon {c}.", "a cartoon of {a}.",
    "a doodle of {a}.", "graffiti of {a}.", "an illustration of {a}.", "a rendering of {a}.",
    "a 3d render of {a}.", "an embroidered {c}.", "an origami {c}.", "a plastic {c}.",
    "a {c} made of clay.", "a {c} in a video game.", "a pixel art {c}.", "a clip art {c}.",
    "a poster of {a}.", "a postcard with {a}.", "an icon of {a}.", "a logo with {a}.",
    "a photo of hard to see {p}.", "a photo that shows {a}.", "there is {a} in the photo.",
    "itap of {a}.", "art of the {c}.", "a depiction of {a}.",
)


def _template_text(template: str, name: str) -> str:
    if with_article(name) == name:  # mass noun: "a photo of a small {c}" -> "a photo of small snow"
        template = re.sub(r"\b(?:a|an) ((?:[\w-]+ ){0,2})\{c\}", r"\1{c}", template)
        template = template.replace("many {p}", "a lot of {p}")
    return template.format(a=with_article(name), c=name, p=pluralize(name))


def prompt_augmentation(label_set: LabelSetLike, copies: int = 9,
                        templates: Sequence[str] = PROMPT_TEMPLATES) -> list[dict]:
    """Return the paper's single-label texts: per class, ``copies`` x "a photo of a {class}." then one per template.

    Templates use ``{a}`` (name with indefinite article), ``{c}`` (bare name) and ``{p}``
    (plural); records have source ``"prompt"`` and the one class as label, C*(copies+len(templates)) in all.
    """
    ls = get_label_set(label_set)
    copies = int(copies)
    if copies < 0:
        raise ValueError(f"prompt_augmentation: copies must be >= 0, got {copies}")
    templates = list(templates)
    for t in templates:
        try:
            _template_text(t, "dog")
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"prompt_augmentation: template {t!r} must use only {{a}}, {{c}} "
                             f"or {{p}} placeholders ({e})") from None
    records = []
    for i, name in enumerate(ls.prompt_names):
        base = _template_text("a photo of {a}.", name)
        for _ in range(copies):
            records.append(make_record(base, [i], ls, "prompt"))
        for t in templates:
            records.append(make_record(_template_text(t, name), [i], ls, "prompt"))
    return records


# --------------------------------------------------------------------------------------------
# 4. Storage and statistics
# --------------------------------------------------------------------------------------------

@dataclass
class Corpus:
    """Texts with an N x C int8 multi-hot target matrix, their sources, and the label set."""

    texts: list[str]
    targets: np.ndarray
    sources: list[str]
    label_set: LabelSet
    requested: list[list[str] | None] = field(default_factory=list)
    origin: str = "<records>"

    def __post_init__(self):
        n = len(self.texts)
        if self.targets.shape != (n, len(self.label_set)) or len(self.sources) != n:
            raise ValueError(f"corpus {self.origin}: {n} texts, {len(self.sources)} sources and "
                             f"targets of shape {self.targets.shape} (expected ({n}, {len(self.label_set)}))")
        if not self.requested:
            self.requested = [None] * n

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, mask_or_indices) -> "Corpus":
        """Return the sub-corpus of the given boolean mask or row indices."""
        idx = np.arange(len(self))[np.asarray(mask_or_indices)]
        return Corpus([self.texts[i] for i in idx], self.targets[idx],
                      [self.sources[i] for i in idx], self.label_set,
                      [self.requested[i] for i in idx], self.origin)

    def records(self) -> list[dict]:
        """The corpus as records (for :func:`write_corpus`)."""
        out = []
        for i in range(len(self)):
            extra = {"requested": self.requested[i]} if self.requested[i] is not None else {}
            out.append(make_record(self.texts[i], np.flatnonzero(self.targets[i]), self.label_set,
                                   self.sources[i], **extra))
        return out


def _open_text(path: Path, mode: str):
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, mode + "b"), encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def write_corpus(path: Union[str, os.PathLike], records: Iterable[dict], *, append: bool = False) -> int:
    """Write records as JSON Lines (gzip when the name ends in .gz); return the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with _open_text(path, "a" if append else "w") as f:
        for n, rec in enumerate(records, 1):
            if not isinstance(rec, dict) or not isinstance(rec.get("text"), str) or "labels" not in rec:
                raise ValueError(f"write_corpus {path}: record {n} must be a dict with 'text' (str) "
                                 f"and 'labels', got {rec!r:.200}")
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return n


def _parse_record(rec, ls: LabelSet, where: str):
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    text = rec.get("text")
    if not isinstance(text, str):
        raise ValueError(f"{where}: 'text' must be a string, got {text!r:.80}")
    names = rec.get("labels")
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise ValueError(f"{where}: 'labels' must be a list of class names, got {names!r:.80}")
    unknown = [x for x in names if x not in ls.classnames]
    if unknown:
        raise ValueError(f"{where}: unknown labels {unknown} for label set {ls.name!r} "
                         f"(expected official class names such as {list(ls.classnames[:3])})")
    ids = sorted({ls.classnames.index(x) for x in names})
    if "label_ids" in rec:
        given = rec["label_ids"]
        if (not isinstance(given, list) or not all(isinstance(x, int) for x in given)
                or sorted(set(given)) != ids):
            raise ValueError(f"{where}: 'label_ids' {given!r:.80} do not match 'labels' {names} "
                             f"(ids {ids} in label set {ls.name!r})")
    source = rec.get("source", "unknown")
    if not isinstance(source, str):
        raise ValueError(f"{where}: 'source' must be a string, got {source!r:.80}")
    requested = rec.get("requested")
    if requested is not None and (not isinstance(requested, list)
                                  or not all(isinstance(x, str) for x in requested)):
        raise ValueError(f"{where}: 'requested' must be a list of class names, got {requested!r:.80}")
    return text, ids, source, requested


def corpus_from_records(records: Iterable[dict], label_set: LabelSetLike,
                        origin: str = "<records>") -> Corpus:
    """Return a :class:`Corpus` from in-memory records (validated like :func:`read_corpus`)."""
    return _corpus_from_numbered(((f"{origin}: record {n}", rec) for n, rec in enumerate(records, 1)),
                                 label_set, origin)


def _corpus_from_numbered(items: Iterable[tuple[str, dict]], label_set: LabelSetLike, origin: str) -> Corpus:
    """Validate (where, record) pairs into a Corpus; ``where`` names the record in errors."""
    ls = get_label_set(label_set)
    texts, rows, sources, requested = [], [], [], []
    for where, rec in items:
        text, ids, source, req = _parse_record(rec, ls, where)
        texts.append(text)
        rows.append(ids)
        sources.append(source)
        requested.append(req)
    targets = np.zeros((len(texts), len(ls)), dtype=np.int8)
    for r, ids in enumerate(rows):
        targets[r, ids] = 1
    return Corpus(texts, targets, sources, ls, requested, origin)


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {path} does not exist")
    with _open_text(path, "r") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: invalid JSON ({e.msg} at column {e.colno})") from None


def read_corpus(path: Union[str, os.PathLike], label_set: LabelSetLike) -> Corpus:
    """Read a JSON Lines corpus; errors name the file and line (bad JSON, unknown labels, bad fields)."""
    path = Path(path)
    return _corpus_from_numbered(((f"{path}:{lineno}", rec) for lineno, rec in _iter_jsonl(path)),
                                 label_set, str(path))


def completed_indices(path: Union[str, os.PathLike]) -> set[int]:
    """Plan indices already stored in a corpus file (records with an ``index``), for resuming; empty if no file."""
    path = Path(path)
    if not path.exists():
        return set()
    return {int(rec["index"]) for _, rec in _iter_jsonl(path)
            if isinstance(rec, dict) and isinstance(rec.get("index"), int)}


def label_statistics(corpus: Corpus) -> pd.DataFrame:
    """Per-class table (index: class names): ``count`` of texts naming it and ``frequency`` (count / N)."""
    counts = corpus.targets.sum(axis=0).astype(np.int64)
    n = max(len(corpus), 1)
    return pd.DataFrame({"count": counts, "frequency": counts / n},
                        index=pd.Index(corpus.label_set.classnames, name="class"))


def labels_per_text(corpus: Corpus) -> pd.Series:
    """Histogram of the number of labels per text (index: 0..max, values: number of texts)."""
    k = corpus.targets.sum(axis=1).astype(np.int64)
    hist = np.bincount(k, minlength=1) if len(k) else np.zeros(1, dtype=np.int64)
    return pd.Series(hist, index=pd.RangeIndex(len(hist), name="labels"), name="texts")


def cooccurrence_counts(corpus: Corpus) -> pd.DataFrame:
    """C x C counts of texts naming both classes (diagonal: texts naming the class); usable as a ``prior``."""
    t = corpus.targets.astype(np.int64)
    names = pd.Index(corpus.label_set.classnames, name="class")
    return pd.DataFrame(t.T @ t, index=names, columns=names.rename(None))
