"""The corpus-generation job: cleaning, validation policy, durable appends, exact resume (also after SIGKILL), secrets."""
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from lcmc_core.errors import CorpusError
from lcmc_core.text.corpus import build_corpus, make_requests, read_corpus
from lcmc_core.text.generation import generate_corpus, read_rejected, read_summary, sidecar_paths
from lcmc_core.text.generators import LLMError, Response, SentenceGenerator
from lcmc_core.text.label_sets import get_label_set
from lcmc_core.text.validation import DEFAULT_POLICY, clean_text, is_refusal, validate_answer

from chat_server import ChatServer, sentence_for

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-test-FAKE-generation-9f8e7d6c5b4aSECRET"
VOC = get_label_set("voc2007")


@pytest.fixture(autouse=True)
def _no_proxy_for_localhost(monkeypatch):
    """Requests to the local fake server never go through a proxy set in the environment."""
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")


# --- cleaning and validation -----------------------------------------------------------------

@pytest.mark.parametrize("raw,clean", [
    ("  A dog on a sofa.  ", "A dog on a sofa."),
    ('"A dog on a sofa."', "A dog on a sofa."),
    ("\u201cA dog on a sofa.\u201d", "A dog on a sofa."),
    ("'A dog on a sofa.'", "A dog on a sofa."),
    ("A dog on a sofa. It looks happy.", "A dog on a sofa."),
    ('"A dog on a sofa." It looks happy.', "A dog on a sofa."),
    ("Sure! Here is a sentence:\n\n\"A dog on a sofa.\"", "A dog on a sofa."),
    ("Here's a brief sentence:\nA dog on a sofa.\nHope this helps!", "A dog on a sofa."),
    ("Sentence: A dog on a sofa.", "A dog on a sofa."),
    ("1. A dog on a sofa.\n2. A cat.", "A dog on a sofa."),
    ("**A dog on a sofa.**", "A dog on a sofa."),
    ("Mr. Smith walks a dog. Next one.", "Mr. Smith walks a dog."),
    ("A   dog\ton a sofa", "A dog on a sofa"),
    ('"A dog on a sofa. The light', "A dog on a sofa."),
    ("", ""), ("   \n ", ""), ('""', ""),
])
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean


@pytest.mark.parametrize("text,refused", [
    ("I'm sorry, but I can't help with that.", True), ("I\u2019m sorry, I cannot do this.", True),
    ("I cannot create that sentence.", True), ("As an AI language model, I describe: a dog.", True),
    ("Sorry, that is not possible.", True), ("Unfortunately, I am unable to comply.", True),
    ("A sorry-looking dog sits in the rain.", False), ("A dog that can't stop barking.", False),
])
def test_is_refusal(text, refused):
    assert is_refusal(text) is refused


def _ids(*names):
    return [VOC.classnames.index(n) for n in names]


def test_validate_answer_reasons_and_policy():
    v = validate_answer('  "A dog beside a cat."  ', _ids("dog", "cat"), VOC)
    assert v.kept and v.text == "A dog beside a cat." and v.label_ids == sorted(_ids("cat", "dog"))
    assert v.issues == []
    assert validate_answer("  ", _ids("dog"), VOC).reason == "empty"
    assert validate_answer("I'm sorry, I can't.", _ids("dog"), VOC).reason == "refused"
    assert validate_answer("A dog.", _ids("dog"), VOC, finish_reason="content_filter").reason == "refused"
    assert validate_answer("A photo of a dog and", _ids("dog"), VOC, finish_reason="length").reason == "truncated"
    assert validate_answer("A photo of a dog.", _ids("dog"), VOC, finish_reason="length").kept
    long = "A dog " + "and more " * 30 + "."
    assert validate_answer(long, _ids("dog"), VOC).reason == "overlong"
    assert validate_answer("A dog " + "x" * 300, _ids("dog"), VOC).reason == "overlong"
    assert validate_answer(long, _ids("dog"), VOC, max_words=100, max_chars=1000).kept
    assert validate_answer(long, _ids("dog"), VOC, policy={"overlong": "keep"}).kept
    assert validate_answer("A sunny meadow.", _ids("dog"), VOC).reason == "no_labels"
    # Missing labels: kept by default (labels = what the text names, as in the paper), or dropped.
    v = validate_answer("A dog on the grass.", _ids("dog", "cat"), VOC)
    assert v.kept and v.issues == ["missing_labels"] and v.label_ids == _ids("dog")
    v = validate_answer("A dog on the grass.", _ids("dog", "cat"), VOC, policy={"missing_labels": "drop"})
    assert v.reason == "missing_labels"
    v = validate_answer("A dog and a horse.", _ids("dog"), VOC)
    assert v.kept and v.issues == ["extra_labels"]
    assert validate_answer("A dog and a horse.", _ids("dog"), VOC,
                           policy={"extra_labels": "drop"}).reason == "extra_labels"
    assert DEFAULT_POLICY["missing_labels"] == "keep"


@pytest.mark.parametrize("policy,match", [({"missing": "drop"}, "unknown policy key"),
                                          ({"missing_labels": "maybe"}, "'drop' or 'keep'"),
                                          ({"empty": "keep"}, "always dropped"), ("drop", "dict")])
def test_policy_errors(policy, match):
    with pytest.raises((ValueError, TypeError), match=match):
        validate_answer("A dog.", _ids("dog"), VOC, policy=policy)


# --- the job with offline generators ---------------------------------------------------------

def _lines(path):
    return Path(path).read_bytes().splitlines(keepends=True) if Path(path).exists() else []


def test_template_job_matches_build_corpus_and_reruns_as_noop(tmp_path):
    path = tmp_path / "c.jsonl"
    s = generate_corpus(path, "voc2007", 120, seed=0, progress=False)
    assert s.status == "complete" and s.complete and s.accepted == 120 and s.rejected == 0 and s.pending == 0
    recs = [json.loads(x) for x in _lines(path)]
    ref = build_corpus("voc2007", 120, seed=0)
    assert [r["text"] for r in recs] == [r["text"] for r in ref]
    assert [r["labels"] for r in recs] == [r["labels"] for r in ref]
    assert [r["index"] for r in recs] == list(range(120))
    assert len(read_corpus(path, "voc2007")) == 120
    files = sidecar_paths(path)
    summary = read_summary(path)
    assert summary == json.loads(files["summary"].read_text()) and summary["status"] == "complete"
    assert summary["generator"]["source"] == "template" and summary["run"]["asked"] == 120
    before = path.read_bytes()
    s2 = generate_corpus(path, "voc2007", 120, seed=0, progress=False)
    assert s2.run["asked"] == 0 and s2.run["started_with"] == 120 and path.read_bytes() == before
    assert files["identity"].exists()
    # Growing n extends the plan; the first 120 lines are untouched.
    s3 = generate_corpus(path, "voc2007", 150, seed=0, progress=False)
    assert s3.run["asked"] == 30 and path.read_bytes().startswith(before)


class _Scripted(SentenceGenerator):
    """Answers from a function of the request; can crash after some answers, shuffle, or be slow."""

    source = "scripted"

    def __init__(self, answer, crash_after=None, order=None, delay=0.0):
        self.answer, self.crash_after, self.order, self.delay = answer, crash_after, order, delay
        self.asked = []

    def generate(self, requests):
        requests = list(requests)
        self.asked += [r.index for r in requests]
        if self.order == "reverse":
            requests = requests[::-1]
        for k, req in enumerate(requests):
            if self.crash_after is not None and k == self.crash_after:
                raise RuntimeError("simulated crash")
            time.sleep(self.delay)
            yield Response(req.index, self.answer(req), meta={"prompt_tokens": 10, "completion_tokens": 5})


def _answer(req):
    """Deterministic answers: every 5th refused, every 7th names only its first label."""
    if req.index % 5 == 3:
        return "I'm sorry, I can't do that."
    names = list(req.label_names[:1]) if req.index % 7 == 2 else list(req.label_names)
    return " " + sentence_for("contains " + ", ".join(names) + ".") + " "


def test_crash_then_resume_equals_uninterrupted_and_rejected_not_reasked(tmp_path):
    ref = tmp_path / "ref.jsonl"
    gen_ref = _Scripted(_answer)
    s_ref = generate_corpus(ref, "voc2007", 60, seed=3, generator=gen_ref, progress=False,
                            policy={"missing_labels": "drop"})
    assert s_ref.status == "complete" and s_ref.accepted + s_ref.rejected == 60
    assert s_ref.rejected_by_reason == {"refused": 12, "missing_labels": s_ref.rejected - 12}
    assert s_ref.prompt_tokens == 600 and s_ref.completion_tokens == 300 and s_ref.cost is None

    path = tmp_path / "c.jsonl"
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate_corpus(path, "voc2007", 60, seed=3, generator=_Scripted(_answer, crash_after=25),
                        progress=False, policy={"missing_labels": "drop"})
    partial = read_summary(path)
    assert partial["status"] == "error" and "simulated crash" in partial["run"]["error"]
    assert partial["accepted"] + partial["rejected"] == 25
    again = _Scripted(_answer, order="reverse")
    s = generate_corpus(path, "voc2007", 60, seed=3, generator=again, progress=False,
                        policy={"missing_labels": "drop"})
    assert again.asked == list(range(25, 60))  # neither accepted nor rejected ones asked again
    assert s.status == "complete" and s.run["started_with"] == 25
    assert path.read_bytes() == ref.read_bytes()
    assert sidecar_paths(path)["rejected"].read_bytes() == sidecar_paths(ref)["rejected"].read_bytes()
    rej = read_rejected(path)
    assert {r["reason"] for r in rej} == {"refused", "missing_labels"}
    assert all(set(r) >= {"index", "reason", "issues", "requested", "text", "raw", "source"} for r in rej)


def test_out_of_order_answers_are_sorted_at_the_end(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    generate_corpus(a, "voc2007", 30, seed=1, generator=_Scripted(_answer), progress=False)
    generate_corpus(b, "voc2007", 30, seed=1, generator=_Scripted(_answer, order="reverse"), progress=False)
    assert a.read_bytes() == b.read_bytes()
    assert [json.loads(x)["index"] for x in _lines(b)] == sorted(json.loads(x)["index"] for x in _lines(b))


def test_torn_last_line_is_cut_with_warning_and_refilled(tmp_path):
    ref = tmp_path / "ref.jsonl"
    generate_corpus(ref, "voc2007", 40, seed=2, progress=False)
    path = tmp_path / "c.jsonl"
    lines = _lines(ref)
    path.write_bytes(b"".join(lines[:17]) + lines[17][:25])  # killed while writing line 18
    with pytest.warns(RuntimeWarning, match="incomplete last line"):
        s = generate_corpus(path, "voc2007", 40, seed=2, progress=False)
    assert s.run["repaired"]["corpus_bytes_cut"] == 25 and s.run["asked"] == 23
    assert path.read_bytes() == ref.read_bytes()
    # A whole record missing only its newline is completed, not dropped.
    path.write_bytes(b"".join(lines[:10]) + lines[10].rstrip(b"\n"))
    s = generate_corpus(path, "voc2007", 40, seed=2, progress=False)
    assert s.run["repaired"]["corpus_bytes_cut"] == 0 and s.run["asked"] == 29
    assert path.read_bytes() == ref.read_bytes()
    # Invalid JSON anywhere else is not a torn line: an error naming file and line.
    path.write_bytes(lines[0] + b"{not json\n" + lines[2])
    with pytest.raises(ValueError, match=r"c\.jsonl:2: invalid JSON"):
        generate_corpus(path, "voc2007", 40, seed=2, progress=False)


def test_duplicate_indices_are_kept_once(tmp_path):
    ref = tmp_path / "ref.jsonl"
    generate_corpus(ref, "voc2007", 20, seed=2, progress=False)
    path = tmp_path / "c.jsonl"
    lines = _lines(ref)
    path.write_bytes(b"".join(lines[:8]) + lines[3])
    with pytest.warns(RuntimeWarning, match="recorded twice"):
        generate_corpus(path, "voc2007", 20, seed=2, progress=False)
    assert path.read_bytes() == ref.read_bytes()


def test_other_plan_or_smaller_n_is_refused(tmp_path):
    path = tmp_path / "c.jsonl"
    generate_corpus(path, "voc2007", 20, seed=0, progress=False)
    with pytest.raises(ValueError, match="another plan"):
        generate_corpus(path, "voc2007", 20, seed=1, progress=False)
    with pytest.raises(ValueError, match="n=10"):
        generate_corpus(path, "voc2007", 10, seed=0, progress=False)
    with pytest.raises(ValueError, match="gzip"):
        generate_corpus(tmp_path / "c.jsonl.gz", "voc2007", 10, seed=0, progress=False)


def test_lock_stops_a_second_writer_and_never_races(tmp_path):
    import threading
    path = tmp_path / "c.jsonl"
    lock_file = sidecar_paths(path)["lock"]
    slow = _Scripted(_answer, delay=0.02)
    first = threading.Thread(target=generate_corpus, args=(path, "voc2007", 40, 0, slow), kwargs={"progress": False})
    first.start()
    while not slow.asked:
        time.sleep(0.005)
    inode = lock_file.stat().st_ino
    with pytest.raises(CorpusError, match="being written by another generate_corpus job"):
        generate_corpus(path, "voc2007", 40, seed=0, generator=_Scripted(_answer), progress=False)
    first.join()
    # The lock file is never deleted: every job locks the same file, so no third job can hold a
    # fresh lock file while a second holds the old one.
    assert lock_file.stat().st_ino == inode
    assert generate_corpus(path, "voc2007", 40, seed=0, generator=_Scripted(_answer), progress=False).complete


def test_files_are_synced_in_batches_not_per_line(tmp_path, monkeypatch):
    import lcmc_core.text.generation as generation
    calls = []
    real = os.fsync
    monkeypatch.setattr(generation.os, "fsync", lambda fd: calls.append(fd) or real(fd))
    s = generate_corpus(tmp_path / "c.jsonl", "voc2007", 2000, seed=0, progress=False)
    assert s.complete and s.accepted == 2000
    assert len(calls) <= 2000 // 256 + 12, len(calls)   # batches, the final sync, the sorted rewrite, directory


def test_resume_refuses_a_corpus_made_with_other_settings(tmp_path):
    path = tmp_path / "c.jsonl"
    assert generate_corpus(path, "voc2007", 20, seed=0, progress=False).complete
    identity = json.loads(sidecar_paths(path)["identity"].read_text())
    assert identity["generator"] == {"source": "template"} and identity["seed"] == 0
    before = path.read_bytes()
    with pytest.raises(CorpusError, match=r"generated with other settings \(generator.source: 'template' in the "
                                          r"file, 'scripted' now\).*another path"):
        generate_corpus(path, "voc2007", 20, seed=0, generator=_Scripted(_answer), progress=False)
    with pytest.raises(CorpusError, match=r"max_words: 50 in the file, 20 now"):
        generate_corpus(path, "voc2007", 20, seed=0, max_words=20, progress=False)
    assert path.read_bytes() == before
    assert generate_corpus(path, "voc2007", 30, seed=0, progress=False).complete   # growing n is fine
    sidecar_paths(path)["identity"].unlink()           # a corpus from before identities were recorded
    with pytest.raises(CorpusError, match=r"holds sentences from template, not from scripted"):
        generate_corpus(path, "voc2007", 30, seed=0, generator=_Scripted(_answer), progress=False)


def test_identity_leaves_out_how_answers_are_fetched():
    from lcmc_core.text.generation import corpus_identity
    from lcmc_core.text.generators.openai import OpenAIGenerator
    ls = get_label_set("voc2007")
    reqs = make_requests(ls, 3, 0, (1, 3), None)

    def ident(**kw):
        opts = dict(model="m", base_url="http://127.0.0.1:9/v1", api_key_env=None) | kw
        return corpus_identity(ls, 0, (1, 3), OpenAIGenerator(**opts), DEFAULT_POLICY, 50, 300, reqs)

    assert ident() == ident(concurrency=2, read_timeout_s=5.0, max_attempts=2, base_url="http://127.0.0.1:8/v1")
    assert ident() != ident(model="other") and ident() != ident(temperature=0.2)


def test_time_budget_with_plain_generator_keeps_partial_results(tmp_path):
    path = tmp_path / "c.jsonl"
    s = generate_corpus(path, "voc2007", 40, seed=0, generator=_Scripted(_answer, delay=0.02),
                        time_budget_s=0.2, progress=False)
    assert s.status == "time_budget" and 0 < s.accepted + s.rejected < 40
    assert s.pending == 40 - s.accepted - s.rejected
    s = generate_corpus(path, "voc2007", 40, seed=0, generator=_Scripted(_answer), progress=False)
    assert s.status == "complete"


def test_generator_answering_unknown_index_is_an_error(tmp_path):
    class Wrong(SentenceGenerator):
        def generate(self, requests):
            yield Response(999, "A dog.")
    with pytest.raises(ValueError, match="999"):
        generate_corpus(tmp_path / "c.jsonl", "voc2007", 5, seed=0, generator=Wrong(), progress=False)


# --- the job against a fake OpenAI-compatible server -----------------------------------------

def _faults(prompt, attempt):
    """Deterministic per prompt: content faults on every attempt, transport faults on the first two."""
    h = sum(map(ord, prompt))
    content = {0: "refuse", 1: "empty", 2: "long", 3: "missing"}.get(h % 13)
    if content:
        return content
    if attempt < 2:
        return {4: "429", 5: "500", 6: "slow", 7: "malformed", 8: "drop"}.get(h % 13)
    return None


def _openai_opts(server, **kw):
    opts = dict(generator="openai", model="fake-model", base_url=server.url, concurrency=4,
                timeout_s=0.4, backoff_base_s=0.01, backoff_max_s=0.05, progress=False,
                price_prompt_per_1k=0.1, price_completion_per_1k=0.2)
    opts.update(kw)
    return opts


def _expected_kind(prompt):
    return _faults(prompt, 99)


@pytest.mark.slow
def test_openai_job_with_faults_is_complete_and_correct(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = tmp_path / "c.jsonl"
    n = 60
    reqs = make_requests("voc2007", n, 4)
    with ChatServer(_faults, slow_s=1.0, retry_after="0.05", api_key=KEY) as server:
        s = generate_corpus(path, "voc2007", n, seed=4, **_openai_opts(server))
    assert s.status == "complete" and s.pending == 0
    expected_reasons = {"refuse": "refused", "empty": "empty", "long": "overlong"}
    want_rejected = {}
    for r in reqs:
        kind = _expected_kind(r.prompt)
        if kind in expected_reasons:
            want_rejected[r.index] = expected_reasons[kind]
    rejected = {r["index"]: r["reason"] for r in read_rejected(path)}
    assert rejected == want_rejected
    recs = [json.loads(x) for x in _lines(path)]
    assert [r["index"] for r in recs] == sorted(set(range(n)) - set(want_rejected))
    for rec in recs:
        req = reqs[rec["index"]]
        assert rec["requested"] == VOC.names(req.label_ids) and rec["source"] == "openai:fake-model"
        if _expected_kind(req.prompt) == "missing":
            assert rec["labels"] == VOC.names([req.label_ids[0]]) or len(req.label_ids) == 1
        else:
            assert rec["text"] == clean_text(sentence_for(req.prompt))
            assert rec["labels"] == sorted(VOC.names(req.label_ids), key=VOC.classnames.index)
    # Every transport fault was retried (twice each) and counted.
    retried = {"429": "rate_limited", "500": "server_error", "slow": "timeout", "malformed": "malformed",
               "drop": "connection"}
    assert all(server.kinds[k] >= 2 for k in retried), server.kinds
    assert s.run["retries_by_reason"] == {retried[k]: server.kinds[k] for k in retried}
    assert not s.run["failed_by_reason"]
    # Prompts asked twice in the plan share the server's fault schedule: at most 2 faults each.
    assert sum(server.kinds[k] for k in retried) == 2 * len({r.prompt for r in reqs
                                                            if _faults(r.prompt, 0) in retried})
    assert s.prompt_tokens == sum(r["usage"]["prompt_tokens"] for r in recs + read_rejected(path))
    assert s.cost == pytest.approx(s.prompt_tokens * 0.1 / 1000 + s.completion_tokens * 0.2 / 1000)
    assert s.run["prompt_tokens"] == s.prompt_tokens
    missing = sum(_expected_kind(r.prompt) == "missing" and len(r.label_ids) > 1 for r in reqs)
    assert s.kept_with_issues.get("missing_labels", 0) == missing
    assert read_summary(path)["rejected_by_reason"] == s.rejected_by_reason


@pytest.mark.slow
def test_openai_job_time_budget_then_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path, ref = tmp_path / "c.jsonl", tmp_path / "ref.jsonl"
    with ChatServer(delay_s=0.05) as server:
        t0 = time.monotonic()
        s = generate_corpus(path, "voc2007", 80, seed=5, time_budget_s=0.4, **_openai_opts(server))
        assert time.monotonic() - t0 < 2.5  # budget 0.4 s plus start-up and slack for slow CI
        assert s.status == "time_budget" and 0 < s.accepted < 80 and s.pending == 80 - s.accepted - s.rejected
        assert read_summary(path)["status"] == "time_budget"
        s = generate_corpus(path, "voc2007", 80, seed=5, **_openai_opts(server, concurrency=8))
        assert s.status == "complete"
        generate_corpus(ref, "voc2007", 80, seed=5, **_openai_opts(server, concurrency=8))
    assert path.read_bytes() == ref.read_bytes()


def test_openai_job_failures_leave_requests_pending(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = tmp_path / "c.jsonl"
    reqs = make_requests("voc2007", 10, 6)
    bad = {r.prompt for r in reqs[::3]}
    with ChatServer(lambda p, a: "500" if p in bad else None) as server:
        s = generate_corpus(path, "voc2007", 10, seed=6, max_attempts=2, **_openai_opts(server))
    n_bad = sum(r.prompt in bad for r in reqs)
    assert s.status == "incomplete" and s.pending == n_bad
    assert s.run["failed_by_reason"] == {"server_error": n_bad} and s.accepted == 10 - n_bad
    with ChatServer() as server:
        s = generate_corpus(path, "voc2007", 10, seed=6, **_openai_opts(server))
    assert s.status == "complete" and s.run["asked"] == n_bad


_CHILD = textwrap.dedent("""
    import sys
    from lcmc_core.text.generation import generate_corpus
    generate_corpus(sys.argv[1], "voc2007", 90, seed=7, generator="openai", model="fake-model",
                    base_url=sys.argv[2], concurrency=4, timeout_s=5, backoff_base_s=0.01,
                    progress=False)
""")


@pytest.mark.slow
def test_kill_and_resume_equals_uninterrupted_run(tmp_path, monkeypatch):
    """SIGKILL a job mid-way (frozen by the server's gate), rerun it: no loss, no duplicate, same files."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    faults = lambda p, a: None if _faults(p, a) == "slow" else _faults(p, a)
    ref = tmp_path / "ref" / "c.jsonl"
    with ChatServer(faults) as server:
        generate_corpus(ref, "voc2007", 90, seed=7, **_openai_opts(server, timeout_s=5))
    path = tmp_path / "run" / "c.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    gate = 50
    with ChatServer(faults, gate_after=gate) as server:
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), server.url], cwd=REPO, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            t_end = time.monotonic() + 25
            # All 4 workers stuck at the gate: the job cannot move on; let it write what it has.
            while time.monotonic() < t_end and child.poll() is None and server.requests < gate + 4:
                time.sleep(0.01)
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            assert server.requests == gate + 4
            time.sleep(0.3)
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
            child.stderr.close()
        assert child.returncode == -signal.SIGKILL
        killed_lines = _lines(path) + _lines(sidecar_paths(path)["rejected"])
        assert 20 <= len(killed_lines) < 90
        assert not sidecar_paths(path)["summary"].exists()  # it never got to finish
        server.open_gate()
        s = generate_corpus(path, "voc2007", 90, seed=7, **_openai_opts(server, timeout_s=5))
    assert s.status == "complete" and s.run["started_with"] == len(killed_lines)
    assert s.run["asked"] == 90 - len(killed_lines)
    final_lines = _lines(path) + _lines(sidecar_paths(path)["rejected"])
    assert set(killed_lines) <= set(final_lines)                    # nothing lost
    idx = [json.loads(x)["index"] for x in final_lines]
    assert sorted(idx) == list(range(90))                           # nothing duplicated, nothing missing
    assert path.read_bytes() == ref.read_bytes()                    # same corpus as uninterrupted
    assert sidecar_paths(path)["rejected"].read_bytes() == sidecar_paths(ref)["rejected"].read_bytes()


# --- secrets ---------------------------------------------------------------------------------

def test_key_never_reaches_any_file_log_or_error(tmp_path, monkeypatch, caplog):
    import logging
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = tmp_path / "c.jsonl"
    echo = lambda p, a: "echo_key" if sum(map(ord, p)) % 3 == 0 else ("500" if a == 0 else None)
    with ChatServer(echo, api_key=KEY) as server:
        s = generate_corpus(path, "voc2007", 30, seed=8, **_openai_opts(server))
    assert s.status == "complete"
    with ChatServer(api_key="another-key") as server:  # 401 that echoes our key back
        with pytest.raises(LLMError) as info:
            generate_corpus(tmp_path / "d.jsonl", "voc2007", 10, seed=8, **_openai_opts(server))
    err = info.value
    assert read_summary(tmp_path / "d.jsonl")["status"] == "error"
    texts = [str(err), repr(err), repr(err.args), str(err.__context__), str(err.__cause__), caplog.text,
             json.dumps(s.to_dict()), repr(s)]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"c.jsonl", "c.rejected.jsonl", "c.summary.json", "d.summary.json"}
    for p in files:
        assert KEY.encode() not in p.read_bytes(), f"key leaked into {p}"
    for t in texts:
        assert KEY not in t
    assert any("***" in json.loads(x)["text"] for x in _lines(path) + _lines(sidecar_paths(path)["rejected"]))


# --- a demanding user's bad inputs and faults -------------------------------------------------

def _cli_error(capsys, argv) -> str:
    """Run the command line; assert exit 2 with exactly one 'error:' line and no traceback; return that line."""
    from lcmc_core.__main__ import main
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    return errors[0]


@pytest.mark.parametrize("kwargs, words", [
    ({"seed": -1}, "seed: expected an integer >= 0, got -1"),
    ({"n": -3}, "n: expected an integer >= 0, got -3"),
    ({"seed": 1.5}, "seed: expected an integer >= 0, got 1.5"),
    ({"time_budget_s": float("nan")}, "time_budget_s"),
    ({"time_budget_s": float("inf")}, "time_budget_s"),
    ({"time_budget_s": -1}, "time_budget_s"),
    ({"k_range": (0, 9)}, "k_range must satisfy 1 <= low <= high"),
    ({"k_range": "ab"}, "k_range must be a pair of integers"),
])
def test_bad_job_arguments_are_one_config_error_before_anything_is_written(tmp_path, kwargs, words):
    from lcmc_core.errors import ConfigError
    args = dict(n=5, seed=0)
    args.update(kwargs)
    n, seed = args.pop("n"), args.pop("seed")
    with pytest.raises(ConfigError, match=re.escape(words)):
        generate_corpus(tmp_path / "c.jsonl", "voc2007", n, seed, progress=False, **args)
    assert list(tmp_path.iterdir()) == []


def test_a_path_that_is_empty_a_folder_or_under_a_file_is_refused(tmp_path, capsys):
    from lcmc_core.errors import ConfigError
    (tmp_path / "adir.jsonl").mkdir()
    (tmp_path / "afile").write_text("x")
    for path, words in [("", "path must name the corpus file"), ("   ", "path must name the corpus file"),
                        (tmp_path / "adir.jsonl", "is a folder"), (tmp_path, "is a folder"),
                        (tmp_path / "afile" / "c.jsonl", "afile is a file, not a folder"),
                        (tmp_path / "afile" / "sub" / "c.jsonl", "afile is a file, not a folder")]:
        with pytest.raises(ConfigError, match=words):
            generate_corpus(path, "voc2007", 3, 0, progress=False)
    # the command line says the same in one line
    base = ["generate-corpus", "--label-set", "voc2007", "--n", "3"]
    assert "path must name the corpus file" in _cli_error(capsys, base + ["--out", ""])
    assert "seed: expected an integer >= 0, got -1" in _cli_error(capsys, base + ["--seed", "-1", "--out",
                                                                                  str(tmp_path / "s.jsonl")])
    assert "is a folder" in _cli_error(capsys, base + ["--out", str(tmp_path / "adir.jsonl")])
    assert "time_budget_s" in _cli_error(capsys, base + ["--time-budget-s", "inf", "--out", str(tmp_path / "t.jsonl")])


@pytest.mark.parametrize("field, value", [("index", "9" * 5000), ("index", "[" * 100000 + "]" * 100000),
                                          ("label_ids", "[" + "7" * 5000 + "]"), ("index", "1" * 4000)])
def test_an_absurd_number_in_a_corpus_line_names_file_and_line(tmp_path, capsys, field, value):
    path = tmp_path / "c.jsonl"
    generate_corpus(path, "voc2007", 4, seed=0, progress=False)
    lines = path.read_text().splitlines()
    rec = json.loads(lines[2])
    rec[field] = "PLACEHOLDER"
    lines[2] = json.dumps(rec).replace('"PLACEHOLDER"', value)
    path.write_text("\n".join(lines) + "\n")
    if field == "index":   # the job reads every index; read_corpus checks label_ids
        with pytest.raises(CorpusError, match=r"c\.jsonl:3: ") as info:
            generate_corpus(path, "voc2007", 4, seed=0, progress=False)
        assert len(str(info.value)) < 400 and "\n" not in str(info.value)
        line = _cli_error(capsys, ["generate-corpus", "--label-set", "voc2007", "--n", "4", "--out", str(path)])
        assert "c.jsonl:3: " in line and len(line) < 400
    if value == "1" * 4000:   # a readable (if absurd) plan position: read_corpus needs no plan
        assert len(read_corpus(path, "voc2007")) == 4
        return
    with pytest.raises(CorpusError, match=r"c\.jsonl:3: ") as info:
        read_corpus(path, "voc2007")
    assert len(str(info.value)) < 400


def test_unreadable_token_counts_in_the_files_count_as_unknown(tmp_path):
    path = tmp_path / "c.jsonl"
    generate_corpus(path, "voc2007", 3, seed=0, progress=False)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    lines[0]["usage"] = {"prompt_tokens": 10, "completion_tokens": 4}
    lines[1]["usage"] = {"prompt_tokens": "12", "completion_tokens": -3}
    lines[2]["usage"] = {"prompt_tokens": "lots", "completion_tokens": 1e300}
    path.write_text("".join(json.dumps(r) + "\n" for r in lines).replace("1e+300", "1e999"))  # 1e999 reads as inf
    s = generate_corpus(path, "voc2007", 3, seed=0, progress=False)
    assert s.status == "complete" and (s.prompt_tokens, s.completion_tokens) == (10 + 12, 4)


# --- usage and the model that answered ---------------------------------------------------------

def test_odd_usage_keeps_every_answer_and_counts_it(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    reqs = make_requests("voc2007", 8, 2)
    kinds = ["usage_str", "usage_garbage", "usage_negative", "usage_nan"]
    kind_of = {r.prompt: kinds[i % 4] for i, r in enumerate(reqs)}
    with ChatServer(lambda p, a: kind_of[p]) as server:
        s = generate_corpus(tmp_path / "c.jsonl", "voc2007", 8, seed=2, max_attempts=1, **_openai_opts(server))
    assert s.status == "complete" and s.accepted + s.rejected == 8 and not s.run["failed_by_reason"]
    from chat_server import token_counts
    as_strings = [r for r in reqs if kind_of[r.prompt] == "usage_str"]
    want = [token_counts(r.prompt, sentence_for(r.prompt)) for r in as_strings]
    assert s.prompt_tokens == sum(p for p, _ in want) and s.completion_tokens == sum(c for _, c in want)
    odd = sum(kind_of[r.prompt] != "usage_str" for r in reqs)
    assert s.run["notes"] == {"usage_unreadable": odd} and s.run["usage_unreadable"] == odd
    assert s.prompt_tokens >= 0 and s.completion_tokens >= 0


def test_the_model_that_answered_is_recorded_and_warned_about(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = tmp_path / "c.jsonl"
    with ChatServer(served_model="other-model") as server:
        with pytest.warns(RuntimeWarning, match=r"model 'fake-model' was asked for, but answers came from "
                                                r"'other-model' \(6\)"):
            s = generate_corpus(path, "voc2007", 6, seed=1, **_openai_opts(server))
    assert s.served_models == {"other-model": 6} and s.run["served_models"] == {"other-model": 6}
    assert read_summary(path)["served_models"] == {"other-model": 6}
    assert all(json.loads(x)["model"] == "other-model" for x in _lines(path))
    assert any("other-model" in w for w in read_summary(path)["warnings"])


# --- a corpus with no sentence, or far fewer than asked ----------------------------------------

def test_a_job_that_accepts_no_sentence_is_an_error_and_keeps_every_answer(tmp_path, monkeypatch, capsys):
    from lcmc_core.errors import EmptyCorpusError
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = tmp_path / "c.jsonl"
    with ChatServer(lambda p, a: "refuse") as server:
        with pytest.raises(EmptyCorpusError, match=r"no sentence was accepted: all 7 answers were rejected "
                                                   r"\(refused 7\)") as info:
            generate_corpus(path, "voc2007", 7, seed=0, **_openai_opts(server))
        assert info.value.summary.status == "no_sentences"
        assert read_summary(path)["status"] == "no_sentences"
        assert len(_lines(sidecar_paths(path)["rejected"])) == 7 and _lines(path) == []
        # a rerun asks nothing again and says the same; so does the command line (exit 2, one line)
        with pytest.raises(EmptyCorpusError):
            generate_corpus(path, "voc2007", 7, seed=0, **_openai_opts(server))
        line = _cli_error(capsys, ["generate-corpus", "--label-set", "voc2007", "--n", "7", "--generator", "openai",
                                   "--model", "fake-model", "--base-url", server.url, "--read-timeout-s", "0.4",
                                   "--out", str(path)])
    assert "no sentence was accepted" in line and "c.rejected.jsonl" in line
    assert server.requests == 7
    # an empty plan is no error
    assert generate_corpus(tmp_path / "e.jsonl", "voc2007", 0, seed=0, progress=False).status == "complete"


def test_a_corpus_far_smaller_than_requested_warns_with_the_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    reqs = make_requests("voc2007", 10, 5)
    refused = {r.prompt for r in reqs[:7]}
    with ChatServer(lambda p, a: "refuse" if p in refused else None) as server:
        with pytest.warns(RuntimeWarning, match=r"only (\d) of 10 requested sentences were accepted") as record:
            s = generate_corpus(tmp_path / "c.jsonl", "voc2007", 10, seed=5, **_openai_opts(server))
    kept = sum(r.prompt not in refused for r in reqs)
    assert s.status == "complete" and s.accepted == kept < 5
    assert any(f"only {kept} of 10" in str(w.message) for w in record)
    assert s.warnings and f"only {kept} of 10" in s.warnings[0]
    # half or more accepted: no warning
    with ChatServer() as server, warnings.catch_warnings():
        warnings.simplefilter("error")
        assert generate_corpus(tmp_path / "d.jsonl", "voc2007", 10, seed=5, **_openai_opts(server)).warnings == []


# --- file-system faults ---------------------------------------------------------------------
# Disk full and read-only are simulated two ways: by making os.write / os.open fail as the kernel
# would (ENOSPC after a partial write, EACCES), which always runs; and for real, on a small tmpfs
# mounted in a private mount namespace (``unshare -rm``), skipped where that is not allowed.

def _private_tmpfs(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run bash ``script`` with ``$MNT`` a fresh 64 KiB tmpfs in a private mount namespace (skip if not allowed)."""
    import shutil
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("unshare -rm (a private mount namespace) is not allowed here")
    body = 'set -u; MNT="$1"; shift; mount -t tmpfs -o size=64k tmpfs "$MNT" || exit 97\n' + script
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), PY=sys.executable)
    out = subprocess.run(["unshare", "-rm", "bash", "-c", body, "bash", *args], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=timeout)
    if out.returncode == 97:
        pytest.skip("cannot mount a tmpfs in a private mount namespace here")
    return out


def test_disk_full_while_appending_says_so_keeps_every_line_and_a_rerun_resumes(tmp_path, monkeypatch):
    from lcmc_core.errors import WriteError
    path, ref = tmp_path / "c.jsonl", tmp_path / "ref" / "c.jsonl"
    generate_corpus(ref, "voc2007", 40, seed=3, progress=False)
    real_write = os.write
    calls = {"n": 0}

    def full_disk(fd, data):
        """The kernel's behaviour on a full disk: the 6th line is half written, then ENOSPC."""
        try:
            target = os.readlink(f"/proc/self/fd/{fd}").endswith("c.jsonl") and str(tmp_path) in os.readlink(
                f"/proc/self/fd/{fd}") and "ref" not in os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = False
        if not target:
            return real_write(fd, data)
        calls["n"] += 1
        if calls["n"] == 6:
            return real_write(fd, bytes(data)[: len(data) // 2])
        if calls["n"] > 6:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(WriteError, match=r"cannot write .*c\.jsonl: the disk is full \(No space left on device\); "
                                         r"the 5 lines already in c\.jsonl are kept: fix that and rerun") as info:
        generate_corpus(path, "voc2007", 40, seed=3, progress=False)
    assert "changed by hand" not in str(info.value) and info.value.errno == 28
    assert [json.loads(x)["index"] for x in _lines(path)] == [0, 1, 2, 3, 4]   # the half line was taken back
    assert read_summary(path)["status"] == "error"
    monkeypatch.setattr(os, "write", real_write)
    s = generate_corpus(path, "voc2007", 40, seed=3, progress=False)            # the disk has room again
    assert s.status == "complete" and s.run["started_with"] == 5 and path.read_bytes() == ref.read_bytes()


def test_a_folder_without_write_permission_is_one_line_before_anything_is_asked(tmp_path, monkeypatch, capsys):
    from lcmc_core.errors import WriteError
    folder = tmp_path / "locked"
    folder.mkdir()
    real_open = os.open

    def no_permission(p, flags, *args, **kwargs):   # what a folder of another user gives a non-root user
        if str(p).startswith(str(folder)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(p, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_permission)
    with pytest.raises(WriteError, match=r"cannot write the lock file .*locked/c\.jsonl\.lock: permission denied"):
        generate_corpus(folder / "c.jsonl", "voc2007", 3, seed=0, progress=False)
    line = _cli_error(capsys, ["generate-corpus", "--label-set", "voc2007", "--n", "3", "--out", str(folder / "c.jsonl")])
    assert "permission denied" in line and "c.jsonl.lock" in line
    assert list(folder.iterdir()) == []


def test_real_disk_full_and_read_only_folder_on_a_small_tmpfs(tmp_path):
    """A real 64 KiB tmpfs: the job fills it (one line, lines kept), resumes once it grows; a read-only folder: one line."""
    script = r'''
        run() { "$PY" -m lcmc_core generate-corpus --label-set voc2007 --n 1500 --seed 2 --out "$MNT/c.jsonl" "$@"; }
        run > "$OUT/out1" 2> "$OUT/err1"; echo $? > "$OUT/rc1"
        cp "$MNT/c.jsonl" "$OUT/after_full.jsonl"
        mount -o remount,size=4m "$MNT"
        run > "$OUT/out2" 2> "$OUT/err2"; echo $? > "$OUT/rc2"
        cp "$MNT/c.jsonl" "$OUT/final.jsonl"
        mkdir "$MNT/ro"; mount -o remount,ro "$MNT"
        "$PY" -m lcmc_core generate-corpus --label-set voc2007 --n 3 --out "$MNT/ro/c.jsonl" > /dev/null 2> "$OUT/err3"
        echo $? > "$OUT/rc3"
    '''
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = _private_tmpfs(f'OUT="{out_dir}"\n' + script, str(mnt))
    assert proc.returncode == 0, proc.stderr[-2000:]
    read = lambda name: (out_dir / name).read_text()
    assert read("rc1").strip() == "2"
    err1 = [line for line in read("err1").splitlines() if line.startswith("error: ")]
    assert len(err1) == 1 and "the disk is full" in err1[0] and "c.jsonl" in err1[0] and "Traceback" not in read("err1")
    kept = (out_dir / "after_full.jsonl").read_bytes().splitlines(keepends=True)
    assert 50 < len(kept) < 1500 and all(x.endswith(b"\n") for x in kept)
    assert [json.loads(x)["index"] for x in kept] == list(range(len(kept)))   # every line whole, none lost
    assert read("rc2").strip() == "0"
    ref = tmp_path / "ref.jsonl"
    generate_corpus(ref, "voc2007", 1500, seed=2, progress=False)
    assert (out_dir / "final.jsonl").read_bytes() == ref.read_bytes()
    assert read("rc3").strip() == "2"
    err3 = read("err3").strip().splitlines()
    assert len(err3) == 1 and err3[0].startswith("error: ") and "read-only" in err3[0] and "c.jsonl" in err3[0]
