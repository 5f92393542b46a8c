"""SPARC's compound prompts on the text side: where they come from, which classes each names, and how many each class gets.

A *compound prompt* names several classes together ("a dog and a cat on a sofa"). SPARC
(Miller et al., CVPR 2025) scores every image against a list of them and fuses, per class, the
scores of the prompts that name it (:func:`lcmc_core.method.peers.sparc_scores`). This module
makes and checks that list:

* **Assignment** (:func:`assign_compound_prompts`): prompt ``p`` belongs to every class it names,
  found by :meth:`~lcmc_core.text.labels.LabelSet.extract` (singular and plural forms, irregular
  plurals, synonyms, the longest form first so "teddy bear" is not a bear, joined forms such as
  VOC's "pottedplant"). :func:`compound_report` counts the prompts of each class and lists the
  classes with fewer than 4 (the official code prints the same warning) and the prompts that name
  fewer than two classes.
* **Generation by an LLM** (:func:`compound_requests`, :func:`generate_compound_prompts`,
  :func:`read_compound_prompts`): requests for any
  :class:`~lcmc_core.text.generators.base.SentenceGenerator` (e.g. ``OpenAIGenerator`` with
  ``max_tokens`` of a few hundred), answers parsed into one prompt per line
  (:func:`parse_compound_answer`), stored as resumable JSON Lines.
* **SPARC's own recipe** for the LLM's input (:func:`cooccurring_groups`,
  :func:`conjunction_prompts`): class pairs and triplets that co-occur in a *training* label
  matrix, written as "dog and cat" / "dog, cat, and sofa" prompts and given to the LLM, which
  wrote natural sentences from them. Without training labels, :func:`compound_requests` asks the
  LLM for the co-occurring classes itself (one request per class).

What the official code does (GitHub kjmillerCURIS/SPARC ``run_SPARC.py``, and the prompt-making
scripts of kjmillerCURIS/dualcoopstarstar ``cooccurrence_correction_experiments/``):
``generate_simple_single_and_compound_prompts_and_claude_inputs.py`` keeps pairs ``i < j`` with
``P(j | i) > 0.05`` on the training labels and, for each pair, the third class ``k`` with the
largest ``P(k | i, j) > 0.025``; classes in no pair or triplet are listed alone. Those lines were
given to Claude 3.5 Sonnet on its website with a short request for natural sentences with broad
coverage of categories and combinations (``how_to_use_claude.txt``); the final list is the
"A and B" / "A, B, and C" prompts plus Claude's sentences. ``stringmatch_to_compoundprompt``
matches class *names* only (no synonyms), after lower-casing, turning every non-letter into a
space, and (VOC) joining "potted plant", "dining table", "tv monitor"; longer names first, a
matched name is blanked out; forms: the name, the name without a final "s", name + "s", name +
"es", and a fixed list of irregular plurals. A prompt naming one class is assigned to it (the
lone classes given to the LLM produce such sentences on purpose); one naming none is unused.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cache import held_exclusively
from ..checks import check_int, check_real
from ..errors import ConfigError, CorpusError, MissingFileError
from .generators.base import Request, SentenceGenerator
from .label_sets import get_label_set
from .labels import LabelSet, join_names, with_article

__all__ = ["assign_compound_prompts", "CompoundReport", "compound_report", "cooccurring_groups",
           "conjunction_prompts", "compound_requests", "parse_compound_answer", "CompoundGeneration",
           "generate_compound_prompts", "read_compound_prompts", "DATASET_NAMES", "FEW_PROMPTS"]

#: The official code warns about classes with fewer compound prompts than this.
FEW_PROMPTS = 4

#: How the instruction names each benchmark.
DATASET_NAMES = {"voc2007": "PASCAL VOC 2007", "coco2014": "MS-COCO 2014", "nuswide": "NUS-WIDE",
                 "emoji-voc": "EmojiVOC (emoji scenes of the PASCAL VOC classes)"}

# An answer needs room for several sentences; the corpus default of 40 tokens holds one.
_MIN_MAX_TOKENS = 100


# --------------------------------------------------------------------------------------------
# Which classes a prompt names
# --------------------------------------------------------------------------------------------

def _names_only(ls: LabelSet) -> LabelSet:
    """``ls`` with each class named only by its official and prompt names (SPARC's rule: no synonyms)."""
    synonyms = tuple(tuple(dict.fromkeys((p, o))) for o, p in zip(ls.classnames, ls.prompt_names))
    return LabelSet(f"{ls.name}-names-only", ls.classnames, ls.prompt_names, synonyms, ls.stop_phrases)


def _check_prompts(prompts) -> list[str]:
    if isinstance(prompts, str) or not isinstance(prompts, Iterable):
        raise ConfigError(f"prompts: expected a list of strings, got {type(prompts).__name__}")
    prompts = list(prompts)
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise ConfigError(f"prompts[{i}]: expected a non-empty string, got {p!r}")
    return prompts


def _named_classes(label_set, prompts, synonyms: bool) -> tuple[LabelSet, list[str], list[list[int]]]:
    ls = get_label_set(label_set)
    prompts = _check_prompts(prompts)
    matcher = ls if synonyms else _names_only(ls)
    return ls, prompts, [sorted(matcher.extract(p)) for p in prompts]


def assign_compound_prompts(label_set, prompts, *, min_classes: int = 1, synonyms: bool = True) -> list[list[int]]:
    """``class_compound`` for :func:`~lcmc_core.method.peers.sparc_scores`: for each class, the prompts that name it.

    ``label_set`` is a :class:`LabelSet` or its name. A prompt belongs to every class that
    :meth:`LabelSet.extract` finds in it. ``min_classes`` (1 or 2): prompts naming fewer classes
    are assigned to none; 1 (default) is the official code's rule, under which a prompt naming a
    single class still counts for that class (SPARC's LLM wrote such sentences on purpose for
    classes with no frequent partner); 2 keeps strictly compound prompts. ``synonyms=False``
    matches official and prompt names only, as the official code (which knows no synonyms:
    "a man on a horse" names no person there).
    """
    check_int("min_classes", min_classes, 1, 2)
    _, _, named = _named_classes(label_set, prompts, synonyms)
    out: list[list[int]] = [[] for _ in range(len(get_label_set(label_set)))]
    for p, classes in enumerate(named):
        if len(classes) >= min_classes:
            for c in classes:
                out[c].append(p)
    return out


@dataclass(frozen=True)
class CompoundReport:
    """How a list of compound prompts covers a label set: prompts per class, thin classes, prompts naming < 2 classes."""

    label_set: str
    n_prompts: int
    per_class: dict[str, int]            # official class name -> number of prompts assigned to it
    few: dict[str, int]                  # the classes with fewer than `threshold` prompts
    naming_none: list[int]               # indices of prompts that name no class (unused)
    naming_one: list[int]                # indices of prompts that name exactly one class
    threshold: int = FEW_PROMPTS
    min_classes: int = 1

    def summary(self) -> str:
        """A few lines for a log: totals, the thin classes, the prompts that are not compound."""
        counts = np.array(list(self.per_class.values()))
        lines = [f"{self.n_prompts} prompts for {len(self.per_class)} classes of {self.label_set}: "
                 f"{counts.min()}-{counts.max()} per class (median {np.median(counts):g}); "
                 f"{len(self.naming_none)} name no class, {len(self.naming_one)} name one "
                 f"({'kept' if self.min_classes == 1 else 'dropped'})"]
        if self.few:
            lines.append(f"fewer than {self.threshold} prompts: "
                         + ", ".join(f"{name} ({n})" for name, n in self.few.items()))
        return "\n".join(lines)


def compound_report(label_set, prompts, *, min_classes: int = 1, synonyms: bool = True,
                    threshold: int = FEW_PROMPTS) -> CompoundReport:
    """Count the prompts :func:`assign_compound_prompts` gives each class; list classes with fewer than ``threshold``."""
    check_int("threshold", threshold, 1)
    check_int("min_classes", min_classes, 1, 2)
    ls, prompts, named = _named_classes(label_set, prompts, synonyms)
    counts = [0] * len(ls)
    for classes in named:
        if len(classes) >= min_classes:
            for c in classes:
                counts[c] += 1
    per_class = dict(zip(ls.classnames, counts))
    return CompoundReport(ls.name, len(prompts), per_class,
                          {name: n for name, n in per_class.items() if n < threshold},
                          [p for p, c in enumerate(named) if not c], [p for p, c in enumerate(named) if len(c) == 1],
                          threshold, min_classes)


# --------------------------------------------------------------------------------------------
# SPARC's recipe for the LLM's input: co-occurring pairs and triplets of training labels
# --------------------------------------------------------------------------------------------

def cooccurring_groups(labels, pair_threshold: float = 0.05, triplet_threshold: float = 0.025,
                       chunk: int = 256) -> list[tuple[int, ...]]:
    """SPARC's class groups from a *training* label matrix (N, C): frequent pairs, one triplet per pair, then lone classes.

    Pairs ``(i, j)``, ``i < j``, with ``P(j | i) > pair_threshold`` (the official code tests this
    one direction only, so the result depends on the class order; kept); for each pair the class
    ``k`` with the largest ``P(k | i, j) > triplet_threshold`` (the lowest index on ties) gives a
    triplet ``(i, j, k)``; triplets that are the same set are kept once (the official code checks
    only the order ``(i, k, j)`` and compares with a stale probability); classes in no pair or
    triplet follow as 1-tuples. Never pass test labels: this is knowledge of the training split.
    """
    y = np.asarray(labels)
    if y.ndim != 2 or y.shape[0] < 1 or y.shape[1] < 2:
        raise ConfigError(f"labels: expected an (N, C) 0/1 matrix with C >= 2, got shape {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ConfigError("labels: expected 0/1 entries (present / absent); map VOC's -1 and 0 (difficult) first")
    check_real("pair_threshold", pair_threshold, 0, 1)
    check_real("triplet_threshold", triplet_threshold, 0, 1)
    check_int("chunk", chunk, 1)
    y = y.astype(np.float64)
    n, c = y.shape
    joint = y.T @ y / n                                   # P(i, j); the diagonal is P(i)
    marginal = np.diag(joint).copy()
    cond = np.divide(joint, marginal[:, None], out=np.zeros_like(joint), where=marginal[:, None] > 0)  # P(j | i)
    ii, jj = np.triu_indices(c, k=1)
    keep = cond[ii, jj] > pair_threshold
    pairs = list(zip(ii[keep].tolist(), jj[keep].tolist()))
    triplets: list[tuple[int, int, int]] = []
    seen: set[frozenset] = set()
    for start in range(0, len(pairs), chunk):
        block = pairs[start:start + chunk]
        pi, pj = np.array([p[0] for p in block]), np.array([p[1] for p in block])
        both = y[:, pi] * y[:, pj]                          # N x pairs: i and j present
        p_ijk = both.T @ y / n                              # P(i, j, k)
        p_k_given = p_ijk / joint[pi, pj][:, None]          # P(k | i, j); P(i, j) > 0 for a kept pair
        p_k_given[np.arange(len(block)), pi] = -np.inf
        p_k_given[np.arange(len(block)), pj] = -np.inf
        best = p_k_given.argmax(axis=1)
        for (i, j), k, p in zip(block, best.tolist(), p_k_given[np.arange(len(block)), best].tolist()):
            if p > triplet_threshold and frozenset((i, j, k)) not in seen:
                seen.add(frozenset((i, j, k)))
                triplets.append((i, j, k))
    covered = {x for g in (*pairs, *triplets) for x in g}
    return [*pairs, *triplets, *((i,) for i in range(c) if i not in covered)]


def _check_groups(groups, n_classes: int) -> list[tuple[int, ...]]:
    if isinstance(groups, (str, bytes)) or not isinstance(groups, Iterable):
        raise ConfigError(f"groups: expected a list of tuples of class indices, got {type(groups).__name__}")
    out = []
    for g, group in enumerate(groups):
        try:
            ids = tuple(check_int(f"groups[{g}] entry", i, 0, n_classes - 1) for i in group)
        except TypeError:
            raise ConfigError(f"groups[{g}]: expected a tuple of class indices, got {group!r}") from None
        if not ids or len(set(ids)) != len(ids):
            raise ConfigError(f"groups[{g}]: expected distinct class indices, at least one, got {group!r}")
        out.append(ids)
    return out


def conjunction_prompts(label_set, groups) -> list[str]:
    """The groups of two or more classes as SPARC's plain prompts: "dog and cat", "dog, cat, and sofa" (prompt names)."""
    ls = get_label_set(label_set)
    return [join_names([ls.prompt_names[i] for i in g], serial_comma=True)
            for g in _check_groups(groups, len(ls)) if len(g) >= 2]


# --------------------------------------------------------------------------------------------
# Asking an LLM
# --------------------------------------------------------------------------------------------

_INTRO = ("I am probing the CLIP vision-language model on {dataset}, a multi-label photo dataset, with text "
          "prompts that name several of its categories together.")
_GROUP_ASK = ("Write {m} short, natural sentences, each describing a photo that contains {objects}. Every "
              "sentence must name all of them. They need not be fancy.")
_CLASS_ASK = ("Write {m} short, natural sentences, each describing a photo that contains {object} together with "
              "one or two other objects from the dataset's categories that often appear with it in real photos. "
              "Name every object by its category name. Cover different combinations; the sentences need not be "
              "fancy. The categories are: {categories}.")
_FORMAT = "Write one sentence per line, with no numbering, quotes or other text."


def compound_requests(label_set, groups=None, *, sentences: int | None = None,
                      dataset: str | None = None) -> list[Request]:
    """Requests (for a SentenceGenerator) that ask an LLM for compound prompts of ``label_set``.

    ``groups=None`` (training-free): one request per class, asking for ``sentences`` (default 8)
    sentences that pair the class with one or two categories of the list that often appear with
    it, chosen by the LLM. ``groups`` (e.g. :func:`cooccurring_groups` of training labels, as
    SPARC): one request per group, asking for ``sentences`` (default 2) sentences naming all its
    classes; a 1-tuple gets the per-class request. ``dataset`` names the benchmark in the
    instruction (default from :data:`DATASET_NAMES`). Request ``index`` is the position in the list.
    """
    ls = get_label_set(label_set)
    per_class = groups is None
    groups = [(i,) for i in range(len(ls))] if per_class else _check_groups(groups, len(ls))
    if sentences is None:
        sentences = 8 if per_class else 2
    m = check_int("sentences", sentences, 1, 100)
    if dataset is not None and (not isinstance(dataset, str) or not dataset.strip()):
        raise ConfigError(f"dataset: expected a non-empty name for the instruction, got {dataset!r}")
    intro = _INTRO.format(dataset=dataset or DATASET_NAMES.get(ls.name, ls.name))
    categories = ", ".join(ls.prompt_names)
    requests = []
    for index, ids in enumerate(groups):
        names = tuple(ls.prompt_names[i] for i in ids)
        if len(ids) == 1:
            ask = _CLASS_ASK.format(m=m, object=with_article(names[0]), categories=categories)
        else:
            ask = _GROUP_ASK.format(m=m, objects=join_names([with_article(n) for n in names]))
        requests.append(Request(index, ids, names, f"{intro} {ask} {_FORMAT}"))
    return requests


_LIST_MARK = re.compile(r"^\s*(?:[-*\u2022\u00b7\u2013]+\s*|\(?\d{1,3}\s*[.):\]]\s*|(?:sentence|prompt)\s*\d{1,3}\s*[:.]\s*)",
                        re.IGNORECASE)
_QUOTES = "\"'\u201c\u201d\u2018\u2019`"


def parse_compound_answer(text: str) -> list[str]:
    """An LLM answer as a list of prompts: one per line; numbering, bullets, quotes, markdown and empty lines stripped.

    A line that ends with a colon ("Here are 8 sentences:") is a heading, not a prompt.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_compound_answer: expected the answer as str, got {type(text).__name__}")
    out = []
    for line in text.splitlines():
        line = line.strip().replace("**", "").replace("__", "")
        line = _LIST_MARK.sub("", line, count=1).strip()
        line = line.strip(_QUOTES).strip()
        line = " ".join(line.split())
        if line and not line.endswith(":"):
            out.append(line)
    return out


@dataclass
class CompoundGeneration:
    """What :func:`generate_compound_prompts` did: requests answered before and now, still missing, prompts in the file."""

    path: Path
    requests: int
    answered_before: int
    answered_now: int
    missing: list[int] = field(default_factory=list)   # request indices still without a usable answer
    prompts: int = 0                                   # distinct prompts in the file now

    @property
    def complete(self) -> bool:
        """True when every request has an answer with at least one prompt."""
        return not self.missing


def _read_records(path: Path, *, repair: bool = False) -> list[tuple[int, dict]]:
    """(line number, record) of a compound-prompt file; a torn last line is cut (``repair``) or skipped, other damage fails."""
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    torn = lines[-1] != b""           # the last line has no newline: a write was cut by a kill
    out = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line.decode("utf-8"))
            ok = (isinstance(rec, dict) and isinstance(rec.get("index"), int) and isinstance(rec.get("request"), str)
                  and isinstance(rec.get("prompts"), list) and all(isinstance(p, str) for p in rec["prompts"]))
        except (UnicodeDecodeError, ValueError):
            ok = False
        if ok:
            out.append((lineno, rec))
            if torn and lineno == len(lines) and repair:   # a whole record whose newline was not written
                with open(path, "ab") as f:
                    f.write(b"\n")
            continue
        if torn and lineno == len(lines):
            warnings.warn(f"{path}:{lineno}: an incomplete last line (left by a killed run) was "
                          f"{'cut; its request will be asked again' if repair else 'skipped'}", RuntimeWarning,
                          stacklevel=3)
            if repair:
                with open(path, "rb+") as f:
                    f.truncate(len(raw) - len(line))
            break
        raise CorpusError(f"{path}:{lineno}: expected a JSON object with 'index' (int), 'request' (str) and "
                          f"'prompts' (list of str), as written by generate_compound_prompts; got {line[:100]!r}")
    return out


def generate_compound_prompts(path, label_set, generator: SentenceGenerator, requests: Sequence[Request] | None = None,
                              *, deadline: float | None = None) -> CompoundGeneration:
    """Ask ``generator`` for compound prompts and append every answer to the JSON Lines file ``path`` at once; resumable.

    ``requests`` default to :func:`compound_requests` ``(label_set)``. Each answer becomes one
    line ``{"index", "labels", "label_ids", "request", "text", "prompts", "source",
    "finish_reason"}``; ``prompts`` is :func:`parse_compound_answer` of ``text`` (without the last
    line when the answer was cut by the token limit). A rerun asks only for the requests without
    an answer that gave a prompt; a file written for other requests is refused. Failed requests
    are left for the next run (the generator's contract), so a crash or Ctrl-C loses nothing
    already answered. ``deadline`` (``time.monotonic()``) is passed to LLM generators.
    """
    ls = get_label_set(label_set)
    requests = compound_requests(ls) if requests is None else list(requests)
    if not requests or not all(isinstance(r, Request) for r in requests):
        raise ConfigError("requests: expected a non-empty list of Request objects (see compound_requests)")
    by_index = {r.index: r for r in requests}
    if len(by_index) != len(requests):
        raise ConfigError("requests: two requests share an index")
    if not callable(getattr(generator, "generate", None)):
        raise ConfigError(f"generator: expected a SentenceGenerator (with generate(requests)), got {type(generator).__name__}")
    max_tokens = getattr(generator, "max_tokens", None)
    if isinstance(max_tokens, int) and max_tokens < _MIN_MAX_TOKENS:
        raise ConfigError(f"generator: max_tokens={max_tokens} cannot hold a list of sentences; make the generator "
                          f"with max_tokens=400 or more (about 30 tokens per sentence asked for)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    busy = (f"{path} is being written by another generate_compound_prompts job (lock {path}.lock is held); wait for "
            f"it or write to another path")
    with held_exclusively(path, busy):
        done: set[int] = set()
        if path.exists():
            for lineno, rec in _read_records(path, repair=True):
                req = by_index.get(rec["index"])
                if req is None or rec["request"] != req.prompt:
                    raise CorpusError(f"{path}:{lineno}: record {rec['index']} was asked with another request than "
                                      f"this job's; the file belongs to another label set or settings: use another path")
                if rec["prompts"]:
                    done.add(rec["index"])
        before = len(done)
        todo = [r for r in requests if r.index not in done]
        kwargs = {"deadline": deadline} if deadline is not None else {}
        source = getattr(generator, "source", "unknown")
        with open(path, "a", encoding="utf-8") as f:
            for resp in generator.generate(todo, **kwargs) if todo else ():
                req = by_index.get(resp.index)
                if req is None or resp.index in done:
                    continue
                finish = (resp.meta or {}).get("finish_reason")
                prompts = parse_compound_answer(resp.text)
                if finish == "length" and prompts:
                    prompts = prompts[:-1]          # the last line was cut by the token limit
                rec = {"index": req.index, "labels": ls.names(req.label_ids), "label_ids": list(req.label_ids),
                       "request": req.prompt, "text": resp.text, "prompts": prompts,
                       "source": resp.source or source, "finish_reason": finish}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()
                if prompts:
                    done.add(req.index)
            os.fsync(f.fileno())
    return CompoundGeneration(path, len(requests), before, len(done) - before,
                              sorted(set(by_index) - done), len(read_compound_prompts(path)))


def read_compound_prompts(path) -> list[str]:
    """The prompts of a :func:`generate_compound_prompts` file: request order, each request's latest answer, duplicates once.

    Duplicates (the same text up to case and spacing) are kept at their first position: a prompt
    listed twice would count twice in a class's fusion.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"compound-prompt file {path} does not exist")
    latest: dict[int, list[str]] = {}
    for _, rec in _read_records(path):
        if rec["prompts"]:
            latest[rec["index"]] = rec["prompts"]
    out, seen = [], set()
    for index in sorted(latest):
        for p in latest[index]:
            key = " ".join(p.lower().split())
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out
