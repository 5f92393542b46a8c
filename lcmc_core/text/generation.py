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

from filelock import Timeout

from ..cache import atomic_write, entry_lock
from ..errors import ConfigError, CorpusError
from .corpus import LabelSetLike, Prior, make_record, make_requests, paper_prompt
from .generators import LLMGenerator, Request, Response, SentenceGenerator, make_generator
from .label_sets import get_label_set
from .labels import LabelSet
from .validation import check_policy, validate_answer

__all__ = ["GenerationSummary", "sidecar_paths", "generate_corpus", "read_summary", "read_rejected",
           "corpus_identity"]

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
                      f"its request will be asked again", RuntimeWarning, stacklevel=3)
    return removed


def _read_lines(path: Path) -> list[tuple[int, dict, bytes]]:
    """(line number, record, raw line bytes) of every non-blank line; errors name file and line."""
    out = []
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                raise CorpusError(f"{path}:{lineno}: invalid JSON ({e}); only a last line can be torn by a kill, "
                                 f"so this file was changed by hand: fix or delete that line") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("index"), int) or isinstance(rec.get("index"), bool):
                raise CorpusError(f"{path}:{lineno}: expected a JSON object with an integer 'index' (a record "
                                 f"written by generate_corpus), got {line[:120]!r}")
            out.append((lineno, rec, line if line.endswith(b"\n") else line + b"\n"))
    return out


class _AppendLog:
    """An append-only JSON Lines file: each record is one ``write`` of one whole line; synced in batches.

    A record is in the operating system's hands as soon as :meth:`append` returns, so a killed
    process (SIGKILL, Ctrl-C, an exception) loses nothing; ``fsync`` runs every ``sync_every``
    records, every ``sync_seconds`` and on :meth:`close`, which bounds what an operating-system
    crash or power cut could lose (those requests are then asked again on resume).
    """

    def __init__(self, path: Path, sync_every: int = 256, sync_seconds: float = 2.0):
        self.path = path
        created = not path.exists()
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if created:
            _fsync_dir(path.parent)
        self.sync_every, self.sync_seconds = sync_every, sync_seconds
        self.unsynced, self.last_sync = 0, time.monotonic()
        self.syncs = 0

    def append(self, record: dict) -> None:
        """Write ``record`` as one line (a single ``write``); sync when the batch is full or old."""
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.unsynced += 1
        if self.unsynced >= self.sync_every or time.monotonic() - self.last_sync >= self.sync_seconds:
            self.sync()

    def sync(self) -> None:
        """``fsync`` what was appended since the last sync."""
        if self.fd is not None and self.unsynced:
            os.fsync(self.fd)
            self.syncs += 1
        self.unsynced, self.last_sync = 0, time.monotonic()

    def close(self) -> None:
        """Sync and close the file (idempotent)."""
        if self.fd is not None:
            self.sync()
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
        atomic_write(path, b"".join(raw for _, _, raw in kept))
        _fsync_dir(path.parent)
    return [rec for _, rec, _ in kept]


@contextlib.contextmanager
def _locked(lock_path: Path, corpus: Path):
    """Hold the corpus's lock for the whole job; a second job on the same corpus fails at once, naming it.

    ``filelock`` never deletes the lock file while it is held, so there is no window in which a
    third job could lock a fresh file while a second still holds the old one.
    """
    lock = entry_lock(corpus)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise CorpusError(f"{corpus} is being written by another generate_corpus job (lock {lock_path} is held); "
                          f"wait for it to finish or write to another path") from None
    try:
        yield
    finally:
        lock.release()


# --------------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------------

@dataclass
class GenerationSummary:
    """What a :func:`generate_corpus` call left on disk (totals over all runs) and what this run did (``run``).

    ``status``: ``complete`` (every plan index is accepted or rejected), ``time_budget`` (stopped
    by the deadline; rerun to continue), ``incomplete`` (some requests failed; rerun to retry
    them), ``error`` or ``interrupted`` (an exception stopped the run; files are consistent).
    ``cost`` is in the currency of the generator's prices, ``None`` without prices.
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

    @property
    def complete(self) -> bool:
        """True when every plan entry has an accepted or rejected answer."""
        return self.pending == 0

    def to_dict(self) -> dict:
        """The summary as plain JSON-ready values (what ``*.summary.json`` holds)."""
        return dataclasses.asdict(self)


def _usage(meta: dict) -> dict | None:
    if not isinstance(meta, dict):
        return None
    p, c = meta.get("prompt_tokens"), meta.get("completion_tokens")
    if p is None and c is None:
        return None
    return {"prompt_tokens": int(p or 0), "completion_tokens": int(c or 0)}


def _check_existing(lines, plan: dict, n: int, ls: LabelSet, path: Path) -> None:
    for lineno, rec, _ in lines:
        i = rec["index"]
        if not 0 <= i < n:
            raise CorpusError(f"{path}:{lineno}: holds plan index {i} but n={n}; rerun with n > {i} "
                             f"(and the same seed, label set and k_range) or write to another path")
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


def generate_corpus(path: str | os.PathLike, label_set: LabelSetLike, n: int, seed: int,
                    generator: str | SentenceGenerator = "template", *, k_range=(1, 5),
                    prior: Prior | None = None,
                    prompt_fn: Callable[[Sequence[str]], str] = paper_prompt,
                    policy: dict | None = None, max_words: int = 50, max_chars: int = 300,
                    time_budget_s: float | None = None, progress: bool = True,
                    **generator_options) -> GenerationSummary:
    """Generate (or resume) the corpus at ``path`` for plan ``(label_set, n, seed, k_range)``; return the summary."""
    t0 = time.monotonic()
    files = sidecar_paths(path)
    path = files["corpus"]
    if path.suffix == ".gz":
        raise ConfigError(f"generate_corpus: path {path} is gzip; the job appends line by line and must be "
                         f"able to repair a torn last line, so write plain .jsonl (compress it afterwards)")
    if str(path).endswith((".rejected.jsonl", ".summary.json")):
        raise ConfigError(f"generate_corpus: path {path} looks like a sidecar file; give the corpus file itself")
    ls = get_label_set(label_set)
    n, seed = int(n), int(seed)
    if n < 0:
        raise ConfigError(f"generate_corpus: n must be >= 0, got {n}")
    pol = check_policy(policy)
    for name, value in (("max_words", max_words), ("max_chars", max_chars)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"generate_corpus: {name} must be an integer >= 1, got {value!r}")
    if time_budget_s is not None and not (isinstance(time_budget_s, (int, float)) and time_budget_s >= 0):
        raise ConfigError(f"generate_corpus: time_budget_s must be a number of seconds >= 0 or None, "
                         f"got {time_budget_s!r}")
    deadline = None if time_budget_s is None else t0 + float(time_budget_s)

    gen = make_generator(generator, ls, seed, **generator_options)
    redact = getattr(gen, "redact", None) or (lambda s: s)
    gen_source = getattr(gen, "source", None) or "unknown"
    requests = make_requests(ls, n, seed, k_range, prior, prompt_fn=prompt_fn)
    plan = {r.index: r for r in requests}
    path.parent.mkdir(parents=True, exist_ok=True)

    with _locked(files["lock"], path):
        repaired = {"corpus_bytes_cut": _repair_tail(path), "rejected_bytes_cut": _repair_tail(files["rejected"])}
        done: set[int] = set()
        duplicates = 0
        existing = []
        for p in (path, files["rejected"]):
            if p.exists():
                lines = _read_lines(p)
                _check_existing(lines, plan, n, ls, p)
                existing += lines
                for _, rec, _ in lines:
                    duplicates += rec["index"] in done
                    done.add(rec["index"])
        _check_identity(files, corpus_identity(ls, seed, k_range, gen, pol, max_words, max_chars, requests),
                        existing, gen_source)
        if duplicates:
            warnings.warn(f"{path}: {duplicates} plan indices were recorded twice; the first record of each "
                          f"is kept", RuntimeWarning, stacklevel=2)
        started_with = len(done)
        todo = [r for r in requests if r.index not in done]
        run = {"started_with": started_with, "asked": len(todo), "answered": 0, "accepted": 0,
               "rejected": 0, "rejected_by_reason": Counter(), "kept_with_issues": Counter(),
               "ignored_duplicates": 0, "elapsed_s": None, "time_budget_s": time_budget_s,
               "repaired": repaired, "error": None}
        state = {"status": None}
        corpus_log = _AppendLog(path)
        rejected_log = _AppendLog(files["rejected"])
        from tqdm.auto import tqdm
        bar = tqdm(total=n, initial=started_with, disable=not progress, desc=f"generate {path.name}",
                   unit="text", dynamic_ncols=True)
        if progress and getattr(gen, "on_event", False) is None:  # retries show as they happen
            gen.on_event = lambda message: tqdm.write(f"generate {path.name}: {redact(message)}", file=sys.stderr)
        tokens = [0, 0]
        try:
            if todo and (deadline is None or time.monotonic() < deadline):
                if isinstance(gen, LLMGenerator):
                    stream = gen.generate(todo, deadline=deadline)
                else:
                    stream = gen.generate(todo)
                try:
                    for resp in stream:
                        _handle(resp, plan, done, ls, gen, gen_source, pol, max_words, max_chars,
                                corpus_log, rejected_log, run, tokens)
                        bar.update(1)
                        if progress:
                            retries = sum(getattr(getattr(gen, "stats", None), "retries", {}).values())
                            bar.set_postfix(accepted=run["accepted"], rejected=run["rejected"],
                                            tokens=tokens[0] + tokens[1], retries=retries, refresh=False)
                        if (deadline is not None and not isinstance(gen, LLMGenerator)
                                and time.monotonic() >= deadline):
                            break
                finally:
                    close = getattr(stream, "close", None)
                    if close is not None:
                        close()
        except BaseException as e:
            state["status"] = "interrupted" if isinstance(e, KeyboardInterrupt) else "error"
            run["error"] = redact(f"{type(e).__name__}: {e}")[:1000]
            raise
        finally:
            bar.close()
            corpus_log.close()
            rejected_log.close()
            summary = _finish(files, ls, n, seed, k_range, gen, pol, max_words, max_chars, run, state,
                              deadline, t0)
    return summary


def _handle(resp: Response, plan: dict, done: set, ls: LabelSet, gen, gen_source: str, pol: dict,
            max_words: int, max_chars: int, corpus_log: _AppendLog, rejected_log: _AppendLog,
            run: dict, tokens: list) -> None:
    """Validate one answer and append it to the corpus or the rejected file."""
    name = type(gen).__name__
    if not isinstance(resp, Response) and not hasattr(resp, "index"):
        raise TypeError(f"generator {name} yielded {type(resp).__name__}, expected corpus.Response")
    req: Request | None = plan.get(resp.index)
    if req is None:
        raise ValueError(f"generator {name} answered request index {resp.index!r}, which is not in the plan "
                         f"(0..{len(plan) - 1})")
    if resp.index in done:
        run["ignored_duplicates"] += 1
        log.warning("generator %s answered request %d twice (or one already recorded); ignoring the "
                    "second answer", name, resp.index)
        return
    if not isinstance(resp.text, str):
        raise TypeError(f"generator {name} returned {type(resp.text).__name__} text for request "
                        f"{resp.index}, expected str")
    meta = resp.meta if isinstance(resp.meta, dict) else {}
    verdict = validate_answer(resp.text, req.label_ids, ls, policy=pol, max_words=max_words,
                              max_chars=max_chars, finish_reason=meta.get("finish_reason"))
    source = resp.source if resp.source and resp.source != "unknown" else gen_source
    usage = _usage(meta)
    if usage:
        tokens[0] += usage["prompt_tokens"]
        tokens[1] += usage["completion_tokens"]
    extra = {}
    requested = ls.names(req.label_ids)
    if verdict.kept:
        if verdict.issues:
            extra["issues"] = verdict.issues
            run["kept_with_issues"].update(verdict.issues)
        if usage:
            extra["usage"] = usage
        corpus_log.append(make_record(verdict.text, verdict.label_ids, ls, source, requested=requested,
                                      index=req.index, **extra))
        run["accepted"] += 1
    else:
        rec = {"index": req.index, "reason": verdict.reason, "issues": verdict.issues,
               "requested": requested, "text": verdict.text, "raw": resp.text[:2000], "source": source}
        if usage:
            rec["usage"] = usage
        rejected_log.append(rec)
        run["rejected"] += 1
        run["rejected_by_reason"][verdict.reason] += 1
    run["answered"] += 1
    done.add(req.index)


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


def _finish(files: dict, ls: LabelSet, n: int, seed: int, k_range, gen, pol: dict, max_words: int,
            max_chars: int, run: dict, state: dict, deadline: float | None, t0: float) -> GenerationSummary:
    """Sort both files by index, total them, write the summary JSON (atomically), return it."""
    accepted = _rewrite_sorted(files["corpus"], _read_lines(files["corpus"])) if files["corpus"].exists() else []
    rejected = (_rewrite_sorted(files["rejected"], _read_lines(files["rejected"]))
                if files["rejected"].exists() else [])
    accepted_ids = {r["index"] for r in accepted}
    rejected = [r for r in rejected if r["index"] not in accepted_ids]
    prompt_tokens = sum(int((r.get("usage") or {}).get("prompt_tokens", 0)) for r in accepted + rejected)
    completion_tokens = sum(int((r.get("usage") or {}).get("completion_tokens", 0)) for r in accepted + rejected)
    by_reason = Counter(r.get("reason", "unknown") for r in rejected)
    issues = Counter(i for r in accepted for i in r.get("issues", []))
    pending = n - len(accepted) - len(rejected)
    stats = getattr(gen, "stats", None)
    cost_of = getattr(gen, "cost", None)
    if state["status"] is None:
        if pending == 0:
            state["status"] = "complete"
        elif deadline is not None and time.monotonic() >= deadline:
            state["status"] = "time_budget"
        else:
            state["status"] = "incomplete"
    run = dict(run)
    run["rejected_by_reason"] = dict(sorted(run["rejected_by_reason"].items()))
    run["kept_with_issues"] = dict(sorted(run["kept_with_issues"].items()))
    if stats is not None and hasattr(stats, "as_dict"):
        run.update(stats.as_dict())
        run["cost"] = _round(run.get("cost"))
    run["elapsed_s"] = round(time.monotonic() - t0, 3)
    describe = getattr(gen, "describe", None)
    summary = GenerationSummary(
        status=state["status"], path=str(files["corpus"]), rejected_path=str(files["rejected"]),
        summary_path=str(files["summary"]), label_set=ls.name, n=n, seed=seed, k_range=list(k_range),
        generator=describe() if callable(describe) else {"source": getattr(gen, "source", type(gen).__name__)},
        policy=pol, max_words=max_words, max_chars=max_chars, accepted=len(accepted), rejected=len(rejected),
        pending=pending, rejected_by_reason=dict(sorted(by_reason.items())),
        kept_with_issues=dict(sorted(issues.items())), prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=_round(cost_of(prompt_tokens, completion_tokens)) if callable(cost_of) else None, run=run)
    redact = getattr(gen, "redact", None)
    text = json.dumps(_redact_tree(summary.to_dict(), redact if callable(redact) else None), indent=2,
                      ensure_ascii=False, default=str)
    atomic_write(files["summary"], text + "\n")
    log.info("generate_corpus %s: %s, %d accepted, %d rejected, %d pending", files["corpus"], summary.status,
             summary.accepted, summary.rejected, summary.pending)
    return summary
