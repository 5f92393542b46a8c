"""LLM endpoints that misbehave: a server that never answers, a refused connection, Ctrl-C mid-job.

Each case must end quickly with one clear line (not minutes of silence), show retries while they
happen, and leave the corpus files and summary consistent.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lcmc_core.text.corpus import make_requests
from lcmc_core.text.generation import generate_corpus, sidecar_paths
from lcmc_core.text.generators import LLMError
from lcmc_core.text.generators.openai import OpenAIGenerator

from chat_server import ChatServer

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sigint_as_in_a_terminal() -> None:
    """Run in the child before exec: SIGINT back to its default, so the child's Python turns it into KeyboardInterrupt.

    A process started with SIGINT ignored (a background job of a non-interactive shell, e.g. ``make test &``)
    passes the ignore on to its children, and Python keeps an inherited SIG_IGN; the child would then never
    see the Ctrl-C this test sends.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_server_that_never_answers_fails_in_seconds_showing_retries():
    events = []
    with ChatServer(lambda p, a: "slow", slow_s=20) as server:
        gen = OpenAIGenerator("fake-model", base_url=server.url, api_key_env=None, read_timeout_s=0.3,
                              max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05, concurrency=2,
                              on_event=events.append)
        t0 = time.monotonic()
        with pytest.raises(LLMError, match=r"accepted connections but answered none of 3 attempts .* "
                                           r"read_timeout_s=0.3 s"):
            list(gen.generate(make_requests("voc2007", 10, 0)))
        elapsed = time.monotonic() - t0
    assert elapsed < 5, elapsed
    assert any("timeout on attempt 1/3, retrying" in e for e in events)


def test_the_job_prints_retries_while_they_happen(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    with ChatServer(lambda p, a: "503" if a == 0 else None) as server:
        s = generate_corpus(tmp_path / "c.jsonl", "voc2007", 4, seed=0, generator="openai", model="fake-model",
                            base_url=server.url, backoff_base_s=0.01, backoff_max_s=0.02, progress=True)
    assert s.complete
    err = capsys.readouterr().err
    assert err.count("server_error on attempt 1/5, retrying") == 4 and "sk-test" not in err


def test_a_refused_connection_fails_within_seconds_with_default_timeouts():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    gen = OpenAIGenerator("fake-model", base_url=url, api_key_env=None)   # 10 s connect, 30 s read, 5 attempts
    t0 = time.monotonic()
    with pytest.raises(LLMError, match=r"refused"):
        list(gen.generate(make_requests("voc2007", 20, 0)))
    assert time.monotonic() - t0 < 5


def test_ctrl_c_stops_the_job_within_seconds_and_writes_the_summary(tmp_path):
    path = tmp_path / "c.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), LCMC_TEST_KEY="k")
    with ChatServer(gate_after=6) as server:   # requests after the 6th hang until the gate opens
        child = subprocess.Popen(
            [sys.executable, "-m", "lcmc_core", "generate-corpus", "--label-set", "voc2007", "--n", "40",
             "--generator", "openai", "--model", "fake-model", "--base-url", server.url, "--api-key-env",
             "LCMC_TEST_KEY", "--concurrency", "4", "--out", str(path)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=_sigint_as_in_a_terminal)
        try:
            t_end = time.monotonic() + 30
            while time.monotonic() < t_end and server.requests < 10 and child.poll() is None:
                time.sleep(0.02)
            assert child.poll() is None and server.requests == 10   # 6 answered, 4 hanging at the gate
            time.sleep(0.3)
            t0 = time.monotonic()
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=10)
            stopped_in = time.monotonic() - t0
        finally:
            if child.poll() is None:
                child.kill()
            server.open_gate()
    assert child.returncode == 130 and stopped_in < 5, (child.returncode, stopped_in)
    assert err.decode().strip().splitlines()[-1] == "interrupted"
    summary = json.loads(sidecar_paths(path)["summary"].read_text())
    assert summary["status"] == "interrupted" and summary["accepted"] + summary["rejected"] == 6
    assert summary["pending"] == 34
    assert len(path.read_text().splitlines()) == summary["accepted"]


# --- a server that sends a few bytes a second ---------------------------------------------------
# The HTTP client's read timeout bounds each read, not the answer: before, a server trickling one
# byte every 50 ms kept each attempt alive for the whole ~20 s reply, whatever read_timeout_s and
# the time budget said. Each attempt now ends read_timeout_s after it started.

def _call_threads() -> int:
    import threading
    return sum(t.name == "lcmc-openai-call" for t in threading.enumerate())


def test_a_trickling_server_cannot_outlast_the_read_timeout(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    events = []
    with ChatServer(lambda p, a: "trickle", trickle_s=0.05) as server:   # a reply takes ~20 s
        gen = OpenAIGenerator("fake-model", base_url=server.url, api_key_env=None, read_timeout_s=0.5,
                              max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02, concurrency=2,
                              on_event=events.append)
        t0 = time.monotonic()
        with pytest.raises(LLMError, match=r"answered none of 3 attempts .* read_timeout_s=0.5 s"):
            list(gen.generate(make_requests("voc2007", 4, 0)))
        elapsed = time.monotonic() - t0
        starts = sorted(t for t, prompt, _ in server.arrivals if prompt == server.arrivals[0][1])
    # three attempts of 0.5 s (plus tiny backoffs), not three ~20 s replies
    assert elapsed < 3.0, elapsed
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert len(starts) == 3 and all(0.45 < g < 1.0 for g in gaps), gaps
    assert sum("timeout on attempt" in e for e in events) >= 2


def test_the_time_budget_holds_against_a_trickling_server_and_keeps_every_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    reqs = make_requests("voc2007", 12, 3)
    slow = {r.prompt for r in reqs[::2]}   # half the prompts trickle, the others answer at once
    path = tmp_path / "c.jsonl"
    with ChatServer(lambda p, a: "trickle" if p in slow else None, trickle_s=0.05) as server:
        t0 = time.monotonic()
        s = generate_corpus(path, "voc2007", 12, seed=3, generator="openai", model="fake-model",
                            base_url=server.url, api_key_env=None, read_timeout_s=3.0, concurrency=4,
                            time_budget_s=1.5, progress=False)
        elapsed = time.monotonic() - t0
    assert elapsed < 1.5 + 1.0, elapsed                     # returns within about a second of the budget
    assert s.status == "time_budget"
    answered = server.kinds["ok"]                           # the fast prompts the workers got to
    assert answered >= 2 and s.accepted + s.rejected == answered    # every answer that arrived is kept
    kept = [json.loads(x)["index"] for x in path.read_text().splitlines()]
    assert all(reqs[i].prompt not in slow for i in kept) and s.pending == 12 - answered
    assert s.run["failed_by_reason"].get("time_budget", 0) >= 1


def test_abandoned_attempts_end_and_threads_do_not_grow_with_requests(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    import threading
    peak = [0]
    sampling = threading.Event()

    def sample():
        while not sampling.is_set():
            peak[0] = max(peak[0], _call_threads())
            time.sleep(0.01)

    # every request trickles on its first attempt (abandoned after 0.3 s), then answers at once
    with ChatServer(lambda p, a: "trickle" if a == 0 else None, trickle_s=0.05) as server:
        gen = OpenAIGenerator("fake-model", base_url=server.url, api_key_env=None, read_timeout_s=0.3,
                              backoff_base_s=0.01, backoff_max_s=0.02, concurrency=3)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out = list(gen.generate(make_requests("voc2007", 24, 1)))
        sampling.set()
        sampler.join()
        t_end = time.monotonic() + 3
        while _call_threads() and time.monotonic() < t_end:
            time.sleep(0.05)
        left = _call_threads()
    prompts = {r.prompt for r in make_requests("voc2007", 24, 1)}   # a prompt asked twice trickles only once
    assert len({r.index for r in out}) == 24 and gen.stats.retries["timeout"] == len(prompts) >= 20
    # at most one live and one abandoned (still waiting for the server's next byte) call per worker
    assert peak[0] <= 2 * 3, peak[0]
    assert left == 0, left


def test_ctrl_c_against_a_trickling_server_returns_within_seconds(tmp_path):
    path = tmp_path / "c.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), LCMC_TEST_KEY="k",
               NO_PROXY="127.0.0.1")
    with ChatServer(lambda p, a: "trickle", trickle_s=0.2) as server:   # every reply takes ~80 s
        child = subprocess.Popen(
            [sys.executable, "-m", "lcmc_core", "generate-corpus", "--label-set", "voc2007", "--n", "8",
             "--generator", "openai", "--model", "fake-model", "--base-url", server.url, "--api-key-env",
             "LCMC_TEST_KEY", "--concurrency", "4", "--read-timeout-s", "60", "--out", str(path)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_sigint_as_in_a_terminal)
        try:
            t_end = time.monotonic() + 30
            while time.monotonic() < t_end and server.requests < 4 and child.poll() is None:
                time.sleep(0.02)
            assert child.poll() is None and server.requests == 4
            time.sleep(0.5)
            t0 = time.monotonic()
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=15)
            stopped_in = time.monotonic() - t0
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == 130 and stopped_in < 5, (child.returncode, stopped_in, err.decode()[-500:])
    assert json.loads(sidecar_paths(path)["summary"].read_text())["status"] == "interrupted"
