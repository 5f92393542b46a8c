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
3. **Generate** with a sentence generator (:mod:`lcmc_core.text.generators`): it turns
   :class:`~lcmc_core.text.generators.base.Request` objects into ``Response`` objects (same
   ``index``); the template generator is the offline, deterministic stand-in for the LLM.
4. **Label** (:func:`extract_labels`): a sentence's labels are the classes its text actually
   names (:meth:`lcmc_core.text.labels.LabelSet.extract`); the requested labels are kept in the
   record as ``requested`` (the official code trains on those instead).

:func:`build_corpus` runs all four. :func:`prompt_augmentation` adds the single-label training
texts (:func:`lcmc_core.text.prompts.training_prompts`).

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

import gzip
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..checks import is_int
from ..errors import ConfigError, CorpusError, MissingFileError
from .generators.base import Request, SentenceGenerator
from .label_sets import get_label_set
from .labels import LabelSet
from .prompts import training_prompts

__all__ = [
    "Corpus", "PAPER_PROMPT", "LabelSetLike", "Prior", "sample_label_sets", "make_requests", "paper_prompt",
    "extract_labels", "make_record", "prompt_augmentation", "build_corpus", "write_corpus",
    "read_corpus", "corpus_from_records", "completed_indices", "label_statistics",
    "labels_per_text", "cooccurrence_counts", "cooccurrence_ratio", "parse_json_line",
]

LabelSetLike = str | LabelSet
#: A co-occurrence prior: a C x C matrix of non-negative weights, or a function
#: ``prior(chosen: tuple[int, ...]) -> weights`` (length C, non-negative); see sample_label_sets.
Prior = np.ndarray | Sequence[Sequence[float]] | Callable[[tuple], Sequence[float]]

#: The official CoMC prompt; ``{}`` receives the class names joined by ", ".
PAPER_PROMPT = "Please make a brief sentence to describe a photo that contains {}."


# --------------------------------------------------------------------------------------------
# 1. The plan
# --------------------------------------------------------------------------------------------

def _check_k_range(k_range, n_classes: int) -> tuple[int, int]:
    """``(low, high)`` of a valid ``k_range`` (high capped at the class count); a :class:`ConfigError` line otherwise."""
    try:
        items = list(k_range)
    except TypeError:
        items = []
    if len(items) != 2 or not all(is_int(k) for k in items):
        raise ConfigError(f"k_range must be a pair of integers (low, high), got {k_range!r}")
    lo, hi = (int(k) for k in items)
    if not 1 <= lo <= hi:
        raise ConfigError(f"k_range must satisfy 1 <= low <= high, got {k_range!r}")
    if lo > n_classes:
        raise ConfigError(f"k_range {k_range!r} asks for at least {lo} labels but the label set "
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
    for name, value in (("n", n), ("seed", seed), ("start", start)):
        if not is_int(value) or value < 0:
            raise ConfigError(f"sample_label_sets: {name} must be an integer >= 0, got {value!r}")
    n, seed, start = int(n), int(seed), int(start)
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
                 generator: str | SentenceGenerator = "template", *, k_range=(1, 5),
                 prior: Prior | None = None, start: int = 0,
                 prompt_fn: Callable[[Sequence[str]], str] = paper_prompt,
                 drop_unlabeled: bool = True) -> list[dict]:
    """Plan, generate and label ``n`` sentences; return records sorted by plan index.

    A record's labels are those its text names (``extract_labels``); ``requested`` holds the
    asked-for class names and ``index`` the plan position. Requests the generator leaves out
    are missing from the result; with ``drop_unlabeled`` texts naming no class are dropped.
    """
    from .generators import make_generator
    ls = get_label_set(label_set)
    gen = make_generator(generator, ls, seed)
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


def prompt_augmentation(label_set: LabelSetLike, copies: int = 9, templates="own") -> list[dict]:
    """The single-label training texts as records: per class ``copies`` x the class prompt, then one per template.

    ``templates`` is a set of :mod:`lcmc_core.text.prompts` (``"openai"``: the official composition,
    9 copies of "a photo of a {}." plus OpenAI's 80 templates; ``"own"``: this companion's templates
    after 9 x "a photo of an {class}.") or a list of templates. Records have source ``"prompt"``.
    """
    ls = get_label_set(label_set)
    return [make_record(text, [i], ls, "prompt") for text, i in training_prompts(ls.prompt_names, copies, templates)]


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

    def select(self, mask_or_indices) -> Corpus:
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


def write_corpus(path: str | os.PathLike, records: Iterable[dict], *, append: bool = False) -> int:
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
        raise CorpusError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    text = rec.get("text")
    if not isinstance(text, str):
        raise CorpusError(f"{where}: 'text' must be a string, got {text!r:.80}")
    if not text.strip():
        raise CorpusError(f"{where}: 'text' is empty; every record must hold a sentence")
    names = rec.get("labels")
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise CorpusError(f"{where}: 'labels' must be a list of class names, got {names!r:.80}")
    unknown = [x for x in names if x not in ls.classnames]
    if unknown:
        raise CorpusError(f"{where}: unknown labels {unknown} for label set {ls.name!r} "
                         f"(expected official class names such as {list(ls.classnames[:3])})")
    ids = sorted({ls.classnames.index(x) for x in names})
    if "label_ids" in rec:
        given = rec["label_ids"]
        if (not isinstance(given, list) or not all(isinstance(x, int) for x in given)
                or sorted(set(given)) != ids):
            raise CorpusError(f"{where}: 'label_ids' {given!r:.80} do not match 'labels' {names} "
                             f"(ids {ids} in label set {ls.name!r})")
    source = rec.get("source", "unknown")
    if not isinstance(source, str):
        raise CorpusError(f"{where}: 'source' must be a string, got {source!r:.80}")
    requested = rec.get("requested")
    if requested is not None and (not isinstance(requested, list)
                                  or not all(isinstance(x, str) for x in requested)):
        raise CorpusError(f"{where}: 'requested' must be a list of class names, got {requested!r:.80}")
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
    seen_index: dict[int, str] = {}
    for where, rec in items:
        text, ids, source, req = _parse_record(rec, ls, where)
        index = rec.get("index")
        if index is not None and not (is_int(index) and index >= 0):
            raise CorpusError(f"{where}: 'index' (the plan position) must be an integer >= 0, got {index!r:.40}")
        if index is not None:
            if index in seen_index:
                raise CorpusError(f"{where}: plan index {index} repeats {seen_index[index]}; each generated "
                                  f"sentence must appear once (delete one of the two lines)")
            seen_index[index] = where
        texts.append(text)
        rows.append(ids)
        sources.append(source)
        requested.append(req)
    targets = np.zeros((len(texts), len(ls)), dtype=np.int8)
    for r, ids in enumerate(rows):
        targets[r, ids] = 1
    return Corpus(texts, targets, sources, ls, requested, origin)


def parse_json_line(raw: bytes, where: str, invalid_advice: str = ""):
    """The JSON value of one line (bytes); a :class:`CorpusError` naming ``where`` (file:line) for anything unreadable.

    Besides invalid UTF-8 and invalid JSON, a line can hold what Python's reader refuses or cannot
    nest: an integer of more than 4,300 digits (``ValueError``) or arrays nested thousands deep
    (``RecursionError``); each is one line naming the place, never a traceback.
    """
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{where}: not valid UTF-8 (byte {e.start + 1} of the line); a corpus is UTF-8 "
                          f"JSON Lines") from None
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise CorpusError(f"{where}: invalid JSON ({e.msg} at column {e.colno}){invalid_advice}") from None
    except RecursionError:
        raise CorpusError(f"{where}: JSON nested too deeply to read (thousands of brackets); a corpus record is a "
                          f"flat object{invalid_advice}") from None
    except ValueError as e:  # e.g. an integer longer than Python's 4,300-digit conversion limit
        raise CorpusError(f"{where}: unreadable number in the JSON ({str(e).split(':')[0]}){invalid_advice}") from None


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, record) of every non-blank line; a repeated line, bad UTF-8 or bad JSON names file:line."""
    if not path.is_file():
        raise MissingFileError(f"corpus file {path} does not exist")
    seen: dict[bytes, int] = {}
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                record = parse_json_line(raw, f"{path}:{lineno}")
                key = raw.strip()
                if key in seen:
                    raise CorpusError(f"{path}:{lineno}: repeats line {seen[key]} exactly; each record must "
                                      f"appear once (delete one of the two)")
                seen[key] = lineno
                yield lineno, record
    except (OSError, EOFError) as e:  # a damaged .gz
        raise CorpusError(f"{path}: cannot be read ({type(e).__name__}: {e})") from None


def read_corpus(path: str | os.PathLike, label_set: LabelSetLike) -> Corpus:
    """Read a JSON Lines corpus; errors name the file and line (bad JSON, unknown labels, bad fields)."""
    path = Path(path)
    return _corpus_from_numbered(((f"{path}:{lineno}", rec) for lineno, rec in _iter_jsonl(path)),
                                 label_set, str(path))


def completed_indices(path: str | os.PathLike) -> set[int]:
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


def cooccurrence_ratio(targets, classnames: Sequence[str], log2: bool = True) -> pd.DataFrame:
    """Observed / expected co-occurrence of each class pair (expected: independent labels, ``n_i n_j / N``), log2 by default.

    ``targets``: N x C 0/1 labels (a corpus's ``targets`` or a test set's ``labels``; -1 counts as 0).
    0 (log2) means the pair co-occurs as often as independence predicts, +1 twice as often, -1 half
    as often; pairs never seen together are -inf (log2) or 0, pairs with a class never seen are NaN.
    The diagonal is NaN (a class with itself says nothing).
    """
    t = (np.asarray(targets) == 1).astype(np.int64)
    if t.ndim != 2 or t.shape[1] != len(classnames):
        raise ValueError(f"cooccurrence_ratio: targets of shape {t.shape}; expected N x {len(classnames)} "
                         f"(one column per class name)")
    n = len(t)
    counts = t.sum(axis=0).astype(float)
    observed = (t.T @ t).astype(float)
    expected = np.outer(counts, counts) / max(n, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected > 0, observed / np.where(expected > 0, expected, 1.0), np.nan)
        if log2:
            ratio = np.where(np.isnan(ratio), np.nan, np.log2(ratio))
    np.fill_diagonal(ratio, np.nan)
    names = pd.Index(list(classnames), name="class")
    return pd.DataFrame(ratio, index=names, columns=names.rename(None))
