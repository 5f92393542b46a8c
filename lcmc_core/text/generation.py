"""The corpus-generation job: plan, ask a generator, validate, append durably, resume exactly.

:func:`generate_corpus` writes the CoMC training corpus (one sentence per plan entry, see
:mod:`lcmc_core.text.corpus`) with any generator: ``"template"`` (offline, the default),
``"openai"`` or ``"transformers"`` (:mod:`lcmc_core.text.generators.openai`, options passed through), or a
:class:`~lcmc_core.text.corpus.SentenceGenerator` instance. For a corpus ``NAME.jsonl`` it writes::

    NAME.jsonl            accepted sentences, corpus records (readable by corpus.read_corpus)
    NAME.rejected.jsonl   rejected answers: index, reason, issues, requested, text, raw answer
    NAME.summary.json     counts by reason, tokens, cost, elapsed time, status (GenerationSummary)

**Plan.** The requests come from :func:`~lcmc_core.text.corpus.make_requests` ``(label_set, n, seed,
k_range, prior)``; entry ``i`` depends on ``(seed, i)`` only. Every record stores its plan
``index`` and ``requested`` labels; a rerun checks them against the plan and refuses a file made
by another plan (other seed, label set or k_range) or holding indices ``>= n``.

**Durability and resume.** Each answer is appended as one line (a single ``write`` of the
whole line) to the corpus or to the rejected file before the next one is handled, so a killed
process (SIGKILL, Ctrl-C, an error) loses nothing; the files are ``fsync``-ed in batches (every
256 records or 2 seconds, and at the end), which bounds what only an operating-system crash
could lose. A rerun with the same arguments skips every index found in either file (so
rejected answers are not asked again) and asks only for the rest: after a crash, a kill or a
time budget nothing is lost and nothing duplicated. A kill can leave a *torn* last line (a
line without its newline): on resume it is completed if it is a whole JSON record, otherwise
cut off with a ``RuntimeWarning`` (its request is asked again). A torn line can only be the
last one; invalid JSON elsewhere is an error naming the file and line. An index found twice is
kept once (the first; corpus before rejected), with a warning.

**Identity and lock.** ``NAME.identity.json`` records what decides the sentences (plan, prompt,
generator settings such as the model and temperature, validation policy; not ``n``, endpoint
address, timeouts or prices). Resuming with other settings is refused with the differences
named, instead of mixing two corpora. A lock (``NAME.jsonl.lock``, ``filelock``, held for the
whole job) makes a second job on the same corpus fail at once.

**Order.** Concurrent generators answer out of order, so lines are appended in completion order.
When the job ends (complete, out of time, or failed) both files are rewritten sorted by
``index`` (atomically: temporary file, fsync, rename; the lines' bytes are kept as written). So
the final files of an interrupted-and-resumed run are byte-identical to those of an
uninterrupted run that got the same answers; after a kill, before the rerun, the file may be
unsorted (``read_corpus`` reads it fine).

**Validation** (:mod:`lcmc_core.text.validation`). Each answer is cleaned and judged; dropped
answers go to the rejected file with the first dropping reason, kept ones with issues list them
in ``issues``; ``policy={"missing_labels": "drop"}`` changes the defaults. Records carry ``usage``
(prompt and completion tokens) when the generator reports it.

**Time budget.** ``time_budget_s`` bounds the job: LLM generators start no request after the
deadline and cut attempt timeouts and retry waits to it; the answers that arrived are kept and
the summary says ``status="time_budget"``. Rerun to continue.

**Outcome.** ``status="complete"`` with at least one accepted sentence is success. A job that
answered every request but accepted none (every answer refused, empty, overlong...) ends with
``status="no_sentences"`` in the summary and raises :class:`~lcmc_core.errors.EmptyCorpusError`
(the command line prints one ``error:`` line, exit 2); the rejected file keeps every answer. A
complete corpus with fewer than :data:`SMALL_CORPUS_FRACTION` (half) of the requested sentences
accepted warns (``RuntimeWarning``) with the counts, and the summary lists that warning. The
models that actually answered (``model`` of each answer, stored in its record) are counted in
``served_models``; answers from another model than the one asked for are warned about.

**Faults.** Bad arguments (a negative seed, an empty or folder path, a non-finite time budget,
...) are one :class:`~lcmc_core.errors.ConfigError` line before anything is asked. A write that
fails (disk full, read-only file system, no permission) is one :class:`~lcmc_core.errors.WriteError`
line saying which and naming the file; a partly written line is taken back, every line already
written is kept, and rerunning the same command resumes. Unreadable lines in the files
(invalid JSON, numbers Python cannot read, absurd nesting) name the file and line; token counts
that are not non-negative numbers count as unknown.

**Secrets.** The job never sees an API key: LLM generators read it from the environment
variable they are told the name of, scrub it from every answer and error, and describe
themselves without it; the job also passes error messages through the generator's ``redact``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import atomic_write, held_exclusively, write_error
from ..checks import check_int, check_real
from ..errors import ConfigError, CorpusError, EmptyCorpusError, WriteError
from .corpus import LabelSetLike, Prior, make_record, make_requests, paper_prompt, parse_json_line
from .generators import LLMGenerator, Request, Response, SentenceGenerator, make_generator
from .generators.base import token_count
from .label_sets import get_label_set
from .labels import LabelSet
from .validation import check_policy, validate_answer

__all__ = ["GenerationSummary", "sidecar_paths", "generate_corpus", "read_summary", "read_rejected",
           "corpus_identity", "SMALL_CORPUS_FRACTION"]

#: A complete corpus with fewer accepted sentences than this fraction of the requests is warned about.
SMALL_CORPUS_FRACTION = 0.5

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

def sidecar_paths(path: str | os.PathLike) -> dict[str, Path]:
    """The job's files for ``path``: ``corpus``, ``rejected``, ``summary``, ``identity`` (what made it) and ``lock``."""
    p = Path(path)
    base = p.name[:-len(".jsonl")] if p.name.endswith(".jsonl") else p.name
    return {"corpus": p, "rejected": p.with_name(base + ".rejected.jsonl"),
            "summary": p.with_name(base + ".summary.json"), "identity": p.with_name(base + ".identity.json"),
            "lock": p.with_name(p.name + ".lock")}


def read_summary(path: str | os.PathLike) -> dict:
    """The summary JSON written next to corpus ``path`` (or the summary file itself) as a dict."""
    p = Path(path)
    if not p.name.endswith(".summary.json"):
        p = sidecar_paths(p)["summary"]
    if not p.is_file():
        raise FileNotFoundError(f"no generation summary at {p}; run generate_corpus for this corpus first")
    return json.loads(p.read_text(encoding="utf-8"))


def read_rejected(path: str | os.PathLike) -> list[dict]:
    """The rejected answers recorded next to corpus ``path`` (empty list if none)."""
    p = sidecar_paths(path)["rejected"]
    return [rec for _, rec, _ in _read_lines(p)] if p.exists() else []


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _repair_tail(path: Path) -> int:
    """Complete or cut a last line without newline (left by a kill); return bytes removed (0 if none)."""
    if not path.exists():
        return 0
    try:
        return _repair_tail_of(path)
    except OSError as exc:
        raise write_error(path, exc) from None


def _repair_tail_of(path: Path) -> int:
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        pos, last_nl = size, -1
        while pos > 0 and last_nl < 0:
            start = max(0, pos - 65536)
            f.seek(start)
            chunk = f.read(pos - start)
            i = chunk.rfind(b"\n")
            if i >= 0:
                last_nl = start + i
            pos = start
        keep = last_nl + 1
        f.seek(keep)
        tail = f.read()
        try:
            whole = isinstance(json.loads(tail), dict)
        except ValueError:
            whole = False
        if whole:
            f.seek(size)
            f.write(b"\n")
            removed = 0
        else:
            f.truncate(keep)
            removed = size - keep
        f.flush()
        os.fsync(f.fileno())
    if removed:
        warnings.warn(f"{path}: cut an incomplete last line ({removed} bytes, left by a killed run); "
                      f"its request will be asked again", RuntimeWarning, stacklevel=5)
    return removed


def _read_lines(path: Path, torn_tail_ok: bool = False) -> list[tuple[int, dict, bytes]]:
    """(line number, record, raw line bytes) of every non-blank line; errors name file and line.

    With ``torn_tail_ok`` a last line without its newline (a write cut short) is left out instead
    of being an error: it is repaired (completed or cut) when the job runs again.
    """
    out = []
    hand = ("; only a last line can be torn by a kill, so this file was changed by hand: fix or delete that line")
    try:
        with open(path, "rb") as f:
            lines = list(enumerate(f, 1))
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    for lineno, line in lines:
        if not line.strip():
            continue
        if torn_tail_ok and lineno == len(lines) and not line.endswith(b"\n"):
            continue
        rec = parse_json_line(line, f"{path}:{lineno}", hand)
        index = rec.get("index") if isinstance(rec, dict) else None
        if not isinstance(index, int) or isinstance(index, bool):
            raise CorpusError(f"{path}:{lineno}: expected a JSON object with an integer 'index' (a record "
                              f"written by generate_corpus), got {line[:120]!r}")
        out.append((lineno, rec, line if line.endswith(b"\n") else line + b"\n"))
    return out


class _AppendLog:
    """An append-only JSON Lines file: each record is one ``write`` of one whole line; synced in batches.

    A record is in the operating system's hands as soon as :meth:`append` returns, so a killed
    process (SIGKILL, Ctrl-C, an exception) loses nothing; ``fsync`` runs every ``sync_every``
    records, every ``sync_seconds`` and on :meth:`close`, which bounds what an operating-system
    crash or power cut could lose (those requests are then asked again on resume). A write that
    fails (disk full, ...) takes back what it wrote of its line and raises one :class:`WriteError`
    line saying what happened; the lines before it stay.
    """

    def __init__(self, path: Path, lines: int = 0, sync_every: int = 256, sync_seconds: float = 2.0):
        self.path = path
        self.lines = lines
        created = not path.exists()
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self.size = os.fstat(self.fd).st_size
            if created:
                _fsync_dir(path.parent)
        except OSError as exc:
            raise write_error(path, exc) from None
        self.sync_every, self.sync_seconds = sync_every, sync_seconds
        self.unsynced, self.last_sync = 0, time.monotonic()
        self.syncs = 0

    def _failed(self, exc: OSError) -> WriteError:
        return write_error(self.path, exc, advice=f"the {self.lines} lines already in {self.path.name} are kept: fix "
                                                  f"that and rerun the same command to resume")

    def append(self, record: dict) -> None:
        """Write ``record`` as one line (a single ``write``); sync when the batch is full or old."""
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        view = memoryview(data)
        try:
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except OSError as exc:
            with contextlib.suppress(OSError):  # take back a partly written line (shrinking needs no space)
                os.ftruncate(self.fd, self.size)
            raise self._failed(exc) from None
        self.size += len(data)
        self.lines += 1
        self.unsynced += 1
        if self.unsynced >= self.sync_every or time.monotonic() - self.last_sync >= self.sync_seconds:
            self.sync()

    def sync(self) -> None:
        """``fsync`` what was appended since the last sync."""
        if self.fd is not None and self.unsynced:
            try:
                os.fsync(self.fd)
            except OSError as exc:
                raise self._failed(exc) from None
            self.syncs += 1
        self.unsynced, self.last_sync = 0, time.monotonic()

    def close(self) -> None:
        """Sync and close the file (idempotent; the file is closed even when the sync fails)."""
        if self.fd is not None:
            try:
                self.sync()
            finally:
                os.close(self.fd)
                self.fd = None


def _rewrite_sorted(path: Path, lines: list[tuple[int, dict, bytes]]) -> list[dict]:
    """Sort by index, keep the first line of each index; rewrite atomically if anything changed."""
    seen: set[int] = set()
    kept = []
    for item in sorted(lines, key=lambda x: (x[1]["index"], x[0])):
        if item[1]["index"] in seen:
            continue
        seen.add(item[1]["index"])
        kept.append(item)
    if [x[0] for x in kept] != [x[0] for x in lines]:
        try:
            atomic_write(path, b"".join(raw for _, _, raw in kept))
        except WriteError as exc:
            raise write_error(path, exc, advice=f"no line is lost: {path.name} still holds every answer (unsorted): fix "
                                                f"that and rerun the same command to finish") from None
        _fsync_dir(path.parent)
    return [rec for _, rec, _ in kept]


# --------------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------------

@dataclass
class GenerationSummary:
    """What a :func:`generate_corpus` call left on disk (totals over all runs) and what this run did (``run``).

    ``status``: ``complete`` (every plan index is accepted or rejected), ``no_sentences`` (every
    index answered, none accepted: an error), ``time_budget`` (stopped by the deadline; rerun to
    continue), ``incomplete`` (some requests failed; rerun to retry them), ``error`` or
    ``interrupted`` (an exception stopped the run; files are consistent). ``cost`` is in the
    currency of the generator's prices, ``None`` without prices. ``served_models`` counts the
    records by the model that answered them (as the endpoint reported it); ``warnings`` lists
    what the job warned about (a small corpus, another model than asked for).
    """

    status: str
    path: str
    rejected_path: str
    summary_path: str
    label_set: str
    n: int
    seed: int
    k_range: list
    generator: dict
    policy: dict
    max_words: int
    max_chars: int
    accepted: int
    rejected: int
    pending: int
    rejected_by_reason: dict
    kept_with_issues: dict
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    run: dict = field(default_factory=dict)
    served_models: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every plan entry has an accepted or rejected answer."""
        return self.pending == 0

    def to_dict(self) -> dict:
        """The summary as plain JSON-ready values (what ``*.summary.json`` holds)."""
        return dataclasses.asdict(self)


def _usage(meta) -> tuple[dict | None, bool]:
    """(the readable token counts of an answer or None, whether a count was given but unreadable).

    A count is readable when it is a non-negative whole number (numeric strings included, see
    :func:`~lcmc_core.text.generators.base.token_count`); others count as unknown.
    """
    if not isinstance(meta, dict):
        return None, False
    usage, unreadable = {}, False
    for key in ("prompt_tokens", "completion_tokens"):
        value = meta.get(key)
        if value is None:
            continue
        count = token_count(value)
        if count is None:
            unreadable = True
        else:
            usage[key] = count
    return (usage or None), unreadable


def _short(value, digits: int = 20) -> str:
    """``value`` for a message: a huge number is cut to its first digits."""
    text = str(value)
    return text if len(text) <= digits else f"{text[:digits]}... ({len(text)} digits)"


def _check_existing(lines, plan: dict, n: int, ls: LabelSet, path: Path) -> None:
    for lineno, rec, _ in lines:
        i = rec["index"]
        if not 0 <= i < n:
            advice = (f"rerun with n > {i} (and the same seed, label set and k_range) or write to another path"
                      if i >= 0 and len(str(i)) < 10 else "this line was changed by hand: fix or delete it")
            raise CorpusError(f"{path}:{lineno}: holds plan index {_short(i)} but n={n} (indices run 0..{n - 1}); "
                              f"{advice}")
        want = ls.names(plan[i].label_ids)
        if rec.get("requested") != want:
            raise CorpusError(f"{path}:{lineno}: index {i} was requested as {rec.get('requested')} but this "
                             f"plan (label set {ls.name!r}, the given seed and k_range) asks for {want}; the file "
                             f"comes from another plan: use the same arguments or another path")


# Generator settings that change how answers are fetched or priced, not what they say.
OPERATIONAL_SETTINGS = frozenset({
    "concurrency", "connect_timeout_s", "read_timeout_s", "max_attempts", "backoff_base_s", "backoff_max_s",
    "price_prompt_per_1k", "price_completion_per_1k", "base_url", "api_key_env", "device", "batch_size"})


def corpus_identity(ls: LabelSet, seed: int, k_range, gen, pol: dict, max_words: int, max_chars: int,
                    requests: Sequence[Request]) -> dict:
    """What decides a corpus's sentences: plan (label set, seed, k_range), prompt, generator settings, validation.

    ``n`` is left out (a corpus may be extended); so are settings that only change how answers
    are fetched (endpoint address, timeouts, concurrency, prices).
    """
    import hashlib

    describe = getattr(gen, "describe", None)
    settings = describe() if callable(describe) else {"source": getattr(gen, "source", type(gen).__name__)}
    prompts = "\n".join(r.prompt for r in requests[:3])
    return {"label_set": ls.name, "seed": seed, "k_range": list(k_range),
            "generator": {k: v for k, v in sorted(settings.items()) if k not in OPERATIONAL_SETTINGS},
            "prompt_sha256": hashlib.sha256(prompts.encode("utf-8")).hexdigest()[:16],
            "policy": dict(sorted(pol.items())), "max_words": max_words, "max_chars": max_chars}


def _differences(old, new, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix[:-1]}: {old!r} in the file, {new!r} now"]


def _check_identity(files: dict, identity: dict, existing: list, gen_source: str) -> None:
    """Refuse to resume a corpus that other settings made; record the identity of a new one."""
    path = files["corpus"]
    advice = (f"write to another path (the notebooks' corpus path carries these settings), or delete {path} "
              f"and its sidecar files (.rejected.jsonl, .summary.json, .identity.json) to start anew")
    stored = None
    if files["identity"].exists():
        try:
            stored = json.loads(files["identity"].read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            raise CorpusError(f"{files['identity']} is damaged (not JSON); it records which settings made {path}: "
                              f"delete it only if you know the corpus matches this run") from None
    if stored is not None:
        diffs = _differences(stored, json.loads(json.dumps(identity, default=str)))
        if diffs:
            raise CorpusError(f"{path} was generated with other settings ({'; '.join(diffs[:6])}); resuming would "
                              f"mix two corpora: {advice}")
        return
    sources = sorted({rec.get("source") for _, rec, _ in existing if rec.get("source")} - {gen_source})
    if sources:  # a corpus written before identities were recorded
        raise CorpusError(f"{path} holds sentences from {', '.join(map(str, sources[:3]))}, not from {gen_source}; "
                          f"resuming would mix two corpora: {advice}")
    atomic_write(files["identity"], json.dumps(identity, indent=2, ensure_ascii=False, default=str) + "\n")


def _check_path(path) -> dict[str, Path]:
    """The job's files for ``path`` after checking it names a plain .jsonl file in a usable folder."""
    if not isinstance(path, (str, os.PathLike)) or not str(os.fspath(path)).strip():
        raise ConfigError(f"generate_corpus: path must name the corpus file (e.g. 'corpus.jsonl'), got {path!r}")
    files = sidecar_paths(path)
    corpus = files["corpus"]
    if corpus.suffix == ".gz":
        raise ConfigError(f"generate_corpus: path {corpus} is gzip; the job appends line by line and must be "
                          f"able to repair a torn last line, so write plain .jsonl (compress it afterwards)")
    if str(corpus).endswith((".rejected.jsonl", ".summary.json", ".identity.json")):
        raise ConfigError(f"generate_corpus: path {corpus} looks like a sidecar file; give the corpus file itself")
    for what, p in (("the corpus", corpus), ("the rejected answers", files["rejected"])):
        if p.is_dir():
            raise ConfigError(f"generate_corpus: path {p} ({what}) is a folder; expected a file name such as "
                              f"{p / 'corpus.jsonl'}")
    folder = corpus.parent
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"generate_corpus: cannot put {corpus.name} in {folder}: {parent} is a file, not "
                                  f"a folder")
            break
    return files


def _make_folder(folder: Path) -> None:
    """Create the corpus's folder; a failure is one WriteError line (read-only, permission, ...)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(folder, exc, "the folder") from None


def _check_arguments(n, seed, max_words, max_chars, time_budget_s) -> None:
    """One ConfigError line per bad job argument, before any generator is built."""
    check_int("generate_corpus: n", n, 0)
    check_int("generate_corpus: seed", seed, 0)
    for name, value in (("max_words", max_words), ("max_chars", max_chars)):
        check_int(f"generate_corpus: {name}", value, 1)
    if time_budget_s is not None:
        check_real("generate_corpus: time_budget_s (seconds, or None for no limit)", time_budget_s, 0)


def generate_corpus(path: str | os.PathLike, label_set: LabelSetLike, n: int, seed: int,
                    generator: str | SentenceGenerator = "template", *, k_range=(1, 5),
                    prior: Prior | None = None,
                    prompt_fn: Callable[[Sequence[str]], str] = paper_prompt,
                    policy: dict | None = None, max_words: int = 50, max_chars: int = 300,
                    time_budget_s: float | None = None, progress: bool = True,
                    **generator_options) -> GenerationSummary:
    """Generate (or resume) the corpus at ``path`` for plan ``(label_set, n, seed, k_range)``; return the summary.

    Raises :class:`~lcmc_core.errors.EmptyCorpusError` when every request was answered but no
    sentence was accepted (the summary and the rejected file are written first).
    """
    t0 = time.monotonic()
    _check_arguments(n, seed, max_words, max_chars, time_budget_s)
    ls = get_label_set(label_set)
    n, seed = int(n), int(seed)
    pol = check_policy(policy)
    requests = make_requests(ls, n, seed, k_range, prior, prompt_fn=prompt_fn)
    files = _check_path(path)
    gen = make_generator(generator, ls, seed, **generator_options)
    _make_folder(files["corpus"].parent)
    job = _Job(files, ls, n, seed, tuple(k_range), gen, pol, max_words, max_chars,
               None if time_budget_s is None else t0 + float(time_budget_s), t0, requests)
    with held_exclusively(files["corpus"], f"{files['corpus']} is being written by another generate_corpus job (lock "
                                           f"{files['lock']} is held); wait for it to finish or write to another path"):
        job.load_existing()
        return job.run(progress, time_budget_s)


class _Job:
    """One generate_corpus run: the plan, the files, the generator, and what this run did (``run``)."""

    def __init__(self, files: dict, ls: LabelSet, n: int, seed: int, k_range, gen, pol: dict, max_words: int,
                 max_chars: int, deadline: float | None, t0: float, requests: list[Request]):
        self.files, self.path = files, files["corpus"]
        self.ls, self.n, self.seed, self.k_range = ls, n, seed, k_range
        self.gen, self.pol, self.max_words, self.max_chars = gen, pol, max_words, max_chars
        self.deadline, self.t0 = deadline, t0
        self.requests = requests
        self.plan = {r.index: r for r in requests}
        self.redact = getattr(gen, "redact", None) or (lambda text: text)
        self.gen_source = getattr(gen, "source", None) or "unknown"
        self.done: set[int] = set()
        self.line_counts = {"corpus": 0, "rejected": 0}
        self.repaired: dict = {}
        self.tokens = [0, 0]
        self.status: str | None = None

    def load_existing(self) -> None:
        """Repair torn tails, read both files, check them against the plan and the identity."""
        self.repaired = {"corpus_bytes_cut": _repair_tail(self.path),
                         "rejected_bytes_cut": _repair_tail(self.files["rejected"])}
        duplicates = 0
        existing = []
        for kind in ("corpus", "rejected"):
            p = self.files[kind]
            if p.exists():
                lines = _read_lines(p)
                _check_existing(lines, self.plan, self.n, self.ls, p)
                existing += lines
                self.line_counts[kind] = len(lines)
                for _, rec, _ in lines:
                    duplicates += rec["index"] in self.done
                    self.done.add(rec["index"])
        identity = corpus_identity(self.ls, self.seed, self.k_range, self.gen, self.pol, self.max_words,
                                   self.max_chars, self.requests)
        _check_identity(self.files, identity, existing, self.gen_source)
        if duplicates:
            warnings.warn(f"{self.path}: {duplicates} plan indices were recorded twice; the first record of each "
                          f"is kept", RuntimeWarning, stacklevel=3)

    def run(self, progress: bool, time_budget_s) -> GenerationSummary:
        """Ask for every missing index, append each answer, then finish (sort, total, summary) whatever happened."""
        todo = [r for r in self.requests if r.index not in self.done]
        self.run_info = {"started_with": len(self.done), "asked": len(todo), "answered": 0, "accepted": 0,
                         "rejected": 0, "rejected_by_reason": Counter(), "kept_with_issues": Counter(),
                         "ignored_duplicates": 0, "usage_unreadable": 0, "served_models": Counter(),
                         "elapsed_s": None, "time_budget_s": time_budget_s, "repaired": self.repaired, "error": None}
        error: BaseException | None = None
        logs: list[_AppendLog] = []
        try:
            logs.append(_AppendLog(self.path, self.line_counts["corpus"]))
            logs.append(_AppendLog(self.files["rejected"], self.line_counts["rejected"]))
            self._stream(todo, logs[0], logs[1], progress)
        except BaseException as exc:
            error = exc
        for log_file in logs:
            try:
                log_file.close()
            except WriteError as exc:
                error = error or exc
        if error is not None:
            self.status = "interrupted" if isinstance(error, KeyboardInterrupt) else "error"
            self.run_info["error"] = self.redact(f"{type(error).__name__}: {error}")[:1000]
        try:
            summary = self.finish()
        except Exception as exc:
            if error is None:
                raise
            log.info("generate_corpus %s: could not finish after the error (%s)", self.path, exc)  # the error says what to do
        if error is not None:
            raise error
        self._judge(summary)
        return summary

    def _stream(self, todo: list[Request], corpus_log: _AppendLog, rejected_log: _AppendLog, progress: bool) -> None:
        """Ask the generator for ``todo`` and handle each answer as it comes, with a progress bar."""
        from tqdm.auto import tqdm

        gen, deadline = self.gen, self.deadline
        bar = tqdm(total=self.n, initial=len(self.done), disable=not progress, desc=f"generate {self.path.name}",
                   unit="text", dynamic_ncols=True)
        if progress and getattr(gen, "on_event", False) is None:  # retries show as they happen
            gen.on_event = lambda message: tqdm.write(f"generate {self.path.name}: {self.redact(message)}",
                                                      file=sys.stderr)
        try:
            if not todo or (deadline is not None and time.monotonic() >= deadline):
                return
            llm = isinstance(gen, LLMGenerator)
            stream = gen.generate(todo, deadline=deadline) if llm else gen.generate(todo)
            try:
                for resp in stream:
                    self._handle(resp, corpus_log, rejected_log)
                    bar.update(1)
                    if progress:
                        retries = sum(getattr(getattr(gen, "stats", None), "retries", {}).values())
                        bar.set_postfix(accepted=self.run_info["accepted"], rejected=self.run_info["rejected"],
                                        tokens=self.tokens[0] + self.tokens[1], retries=retries, refresh=False)
                    if deadline is not None and not llm and time.monotonic() >= deadline:
                        break
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        finally:
            bar.close()

    def _handle(self, resp: Response, corpus_log: _AppendLog, rejected_log: _AppendLog) -> None:
        """Validate one answer and append it to the corpus or the rejected file."""
        run, ls, name = self.run_info, self.ls, type(self.gen).__name__
        if not isinstance(resp, Response) and not hasattr(resp, "index"):
            raise TypeError(f"generator {name} yielded {type(resp).__name__}, expected corpus.Response")
        req: Request | None = self.plan.get(resp.index)
        if req is None:
            raise ValueError(f"generator {name} answered request index {resp.index!r}, which is not in the plan "
                             f"(0..{len(self.plan) - 1})")
        if resp.index in self.done:
            run["ignored_duplicates"] += 1
            log.warning("generator %s answered request %d twice (or one already recorded); ignoring the "
                        "second answer", name, resp.index)
            return
        if not isinstance(resp.text, str):
            raise TypeError(f"generator {name} returned {type(resp.text).__name__} text for request "
                            f"{resp.index}, expected str")
        meta = resp.meta if isinstance(resp.meta, dict) else {}
        verdict = validate_answer(resp.text, req.label_ids, ls, policy=self.pol, max_words=self.max_words,
                                  max_chars=self.max_chars, finish_reason=meta.get("finish_reason"))
        source = resp.source if resp.source and resp.source != "unknown" else self.gen_source
        usage, unreadable = _usage(meta)
        run["usage_unreadable"] += bool(unreadable or meta.get("usage_unreadable"))
        if usage:
            self.tokens[0] += usage.get("prompt_tokens", 0)
            self.tokens[1] += usage.get("completion_tokens", 0)
        extra = {"usage": usage} if usage else {}
        served = meta.get("model")
        if isinstance(served, str) and served:
            extra["model"] = served
            run["served_models"][served] += 1
        requested = ls.names(req.label_ids)
        if verdict.kept:
            if verdict.issues:
                extra = {"issues": verdict.issues, **extra}
                run["kept_with_issues"].update(verdict.issues)
            corpus_log.append(make_record(verdict.text, verdict.label_ids, ls, source, requested=requested,
                                          index=req.index, **extra))
            run["accepted"] += 1
        else:
            rejected_log.append({"index": req.index, "reason": verdict.reason, "issues": verdict.issues,
                                 "requested": requested, "text": verdict.text, "raw": resp.text[:2000],
                                 "source": source, **extra})
            run["rejected"] += 1
            run["rejected_by_reason"][verdict.reason] += 1
        run["answered"] += 1
        self.done.add(req.index)

    def finish(self) -> GenerationSummary:
        """Sort both files by index, total them, write the summary JSON (atomically), return it."""
        files, gen = self.files, self.gen
        accepted = (_rewrite_sorted(files["corpus"], _read_lines(files["corpus"], torn_tail_ok=True))
                    if files["corpus"].exists() else [])
        rejected = (_rewrite_sorted(files["rejected"], _read_lines(files["rejected"], torn_tail_ok=True))
                    if files["rejected"].exists() else [])
        accepted_ids = {r["index"] for r in accepted}
        rejected = [r for r in rejected if r["index"] not in accepted_ids]
        usages = [(r.get("usage") if isinstance(r.get("usage"), dict) else {}) for r in accepted + rejected]
        prompt_tokens = sum(token_count(u.get("prompt_tokens")) or 0 for u in usages)
        completion_tokens = sum(token_count(u.get("completion_tokens")) or 0 for u in usages)
        served = Counter(r["model"] for r in accepted + rejected if isinstance(r.get("model"), str))
        pending = self.n - len(accepted) - len(rejected)
        if self.status is None:
            if pending == 0:
                self.status = "complete" if accepted or self.n == 0 else "no_sentences"
            elif self.deadline is not None and time.monotonic() >= self.deadline:
                self.status = "time_budget"
            else:
                self.status = "incomplete"
        run = dict(self.run_info)
        for key in ("rejected_by_reason", "kept_with_issues", "served_models"):
            run[key] = dict(sorted(run[key].items()))
        stats = getattr(gen, "stats", None)
        if stats is not None and hasattr(stats, "as_dict"):
            run.update(stats.as_dict())
            run["cost"] = _round(run.get("cost"))
        run["elapsed_s"] = round(time.monotonic() - self.t0, 3)
        describe = getattr(gen, "describe", None)
        cost_of = getattr(gen, "cost", None)
        summary = GenerationSummary(
            status=self.status, path=str(files["corpus"]), rejected_path=str(files["rejected"]),
            summary_path=str(files["summary"]), label_set=self.ls.name, n=self.n, seed=self.seed,
            k_range=list(self.k_range),
            generator=describe() if callable(describe) else {"source": getattr(gen, "source", type(gen).__name__)},
            policy=self.pol, max_words=self.max_words, max_chars=self.max_chars, accepted=len(accepted),
            rejected=len(rejected), pending=pending,
            rejected_by_reason=dict(sorted(Counter(r.get("reason", "unknown") for r in rejected).items())),
            kept_with_issues=dict(sorted(Counter(i for r in accepted for i in r.get("issues", [])).items())),
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            cost=_round(cost_of(prompt_tokens, completion_tokens)) if callable(cost_of) else None, run=run,
            served_models=dict(sorted(served.items())), warnings=self._warnings(len(accepted), pending, served))
        redact = getattr(gen, "redact", None)
        text = json.dumps(_redact_tree(summary.to_dict(), redact if callable(redact) else None), indent=2,
                          ensure_ascii=False, default=str)
        atomic_write(files["summary"], text + "\n")
        log.info("generate_corpus %s: %s, %d accepted, %d rejected, %d pending", files["corpus"], summary.status,
                 summary.accepted, summary.rejected, summary.pending)
        return summary

    def _warnings(self, accepted: int, pending: int, served: Counter) -> list[str]:
        """What the finished files call for a warning about: a small corpus, answers from another model."""
        out = []
        if pending == 0 and 0 < accepted < SMALL_CORPUS_FRACTION * self.n:
            out.append(f"{self.path}: only {accepted} of {self.n} requested sentences were accepted "
                       f"({100 * accepted / self.n:.0f}%, under {SMALL_CORPUS_FRACTION:.0%}); the other "
                       f"{self.n - accepted} answers are in {self.files['rejected'].name} with their reasons")
        asked = getattr(self.gen, "model", None)
        others = {m: c for m, c in served.items() if isinstance(asked, str) and m != asked}
        if others:
            listed = ", ".join(f"{m!r} ({c})" for m, c in sorted(others.items()))
            out.append(f"{self.path}: model {asked!r} was asked for, but answers came from {listed}; the summary "
                       f"counts them under served_models")
        return out

    def _judge(self, summary: GenerationSummary) -> None:
        """Warn about what the summary lists; raise when every request was answered and none accepted."""
        for message in summary.warnings:
            warnings.warn(message, RuntimeWarning, stacklevel=4)
        if summary.status == "no_sentences":
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary.rejected_by_reason.items(),
                                                                key=lambda kv: -kv[1])[:4])
            raise EmptyCorpusError(
                f"{self.path}: no sentence was accepted: all {summary.rejected} answers were rejected ({reasons}); "
                f"every answer is kept in {self.files['rejected']}: check the model and prompt, then delete the "
                f"corpus files to generate again", summary)


def _round(cost: float | None) -> float | None:
    return None if cost is None else round(float(cost), 8)


def _redact_tree(obj, redact):
    """``obj`` with ``redact`` applied to every string in it (dict keys and values, lists)."""
    if redact is None:
        return obj
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {_redact_tree(k, redact): _redact_tree(v, redact) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_redact_tree(v, redact) for v in obj]
    return obj
