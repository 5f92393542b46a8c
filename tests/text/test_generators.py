"""LLM generators: the OpenAI-compatible client against a local fake server (retries, limits, secrets), transformers."""
import json
import logging
import os
import pickle
import sys
import time

import pytest

from lcmc_core.errors import ConfigError
from lcmc_core.secrets import safe_url
from lcmc_core.text.corpus import make_requests
from lcmc_core.text.generators import LLMError, make_generator
from lcmc_core.text.generators.base import backoff_delay, parse_retry_after
from lcmc_core.text.generators.hf import TRANSFORMERS_HINT
from lcmc_core.text.generators.openai import OpenAIGenerator

from chat_server import ChatServer, sentence_for, token_counts

KEY = "sk-test-FAKE-0123456789abcdefSECRET"


@pytest.fixture(autouse=True)
def _no_proxy_for_localhost(monkeypatch):
    """Requests to the local fake server never go through a proxy set in the environment."""
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


@pytest.mark.skipif(not os.environ.get("LCMC_EXPECT_OPENAI"), reason="only under make test-openai-oldest")
def test_the_oldest_allowed_openai_is_the_one_under_test():
    """make test-openai-oldest really imports the oldest openai pyproject allows, not the locked one."""
    import openai

    assert f"openai=={openai.__version__}" == os.environ["LCMC_EXPECT_OPENAI"]


def _gen(server, **kw):
    opts = dict(model="fake-model", base_url=server.url, timeout_s=5.0, backoff_base_s=0.01,
                backoff_max_s=0.05, concurrency=4, jitter_seed=0)
    opts.update(kw)
    return OpenAIGenerator(**opts)


def _reqs(n, seed=0, label_set="voc2007"):
    return make_requests(label_set, n, seed)


def test_answers_every_request_with_usage(api_key):
    reqs = _reqs(12)
    with ChatServer(api_key=KEY) as server:
        gen = _gen(server)
        out = list(gen.generate(reqs))
    assert sorted(r.index for r in out) == list(range(12))
    by = {r.index: r for r in out}
    for req in reqs:
        r = by[req.index]
        assert r.text == sentence_for(req.prompt)
        assert r.source == "openai:fake-model"
        p, c = token_counts(req.prompt, r.text)
        assert (r.meta["prompt_tokens"], r.meta["completion_tokens"]) == (p, c)
        assert r.meta["finish_reason"] == "stop" and r.meta["attempts"] == 1
    assert gen.stats.responses == 12 and gen.stats.attempts == 12
    assert gen.stats.prompt_tokens == sum(r.meta["prompt_tokens"] for r in out)
    assert gen.stats.cost is None
    assert server.kinds == {"ok": 12}


def test_legacy_completions_api_and_optional_fields(api_key):
    reqs = _reqs(4, seed=11)
    with ChatServer(lambda p, a: "500" if a == 0 else None) as server:
        gen = _gen(server, api="completions", temperature=None, max_tokens=None,
                   extra_body={"max_completion_tokens": 30})
        out = list(gen.generate(reqs))
        body = server.last_payload
    assert body["max_completion_tokens"] == 30 and "temperature" not in body and "max_tokens" not in body
    assert body["prompt"] in {r.prompt for r in reqs}
    assert sorted(r.index for r in out) == list(range(4))
    assert all(r.text == sentence_for(reqs[r.index].prompt) for r in out)
    assert gen.stats.retries == {"server_error": 4}
    assert "api='completions'" in repr(gen)
    with pytest.raises(ValueError, match="api must be"):
        OpenAIGenerator("m", base_url="http://127.0.0.1:9/v1", api="responses")


@pytest.mark.parametrize("kind,reason", [("429", "rate_limited"), ("500", "server_error"),
                                         ("503", "server_error"), ("slow", "timeout"),
                                         ("malformed", "malformed"), ("drop", "connection")])
def test_retries_each_transient_fault(api_key, kind, reason):
    reqs = _reqs(6, seed=1)
    faults = lambda prompt, attempt: kind if attempt < 2 else None
    with ChatServer(faults, slow_s=1.0, retry_after="0.01") as server:
        gen = _gen(server, timeout_s=0.25, concurrency=6)
        out = list(gen.generate(reqs))
    assert sorted(r.index for r in out) == list(range(6))
    assert all(r.text == sentence_for(reqs[r.index].prompt) for r in out)
    assert all(r.meta["attempts"] == 3 for r in out)
    assert server.kinds[kind] == 12 and server.kinds["ok"] == 6
    assert gen.stats.retries == {reason: 12}
    assert gen.stats.attempts == 18 and not gen.stats.failures


def test_retry_after_is_honoured(api_key):
    reqs = _reqs(3, seed=2)
    faults = lambda prompt, attempt: "429" if attempt == 0 else None
    with ChatServer(faults, retry_after="0.6") as server:
        gen = _gen(server, backoff_base_s=0.001)
        t0 = time.monotonic()
        out = list(gen.generate(reqs))
        elapsed = time.monotonic() - t0
    assert len(out) == 3
    first, second = {}, {}
    for t, prompt, _kind in server.arrivals:
        (second if prompt in first else first)[prompt] = t
    assert all(second[p] - first[p] >= 0.59 for p in first), "retried before Retry-After"
    assert elapsed < 3


def test_parse_retry_after_and_backoff():
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "150", "retry-after": "9"}) == 0.15
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None
    import random
    rng = random.Random(0)
    for attempt, d in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = [backoff_delay(attempt, 0.1, 1.0, rng) for _ in range(200)]
        assert d / 2 <= min(delays) and max(delays) <= d
        assert max(delays) - min(delays) > d / 4  # jittered


def test_gives_up_after_max_attempts_and_counts(api_key):
    reqs = _reqs(4, seed=3)
    with ChatServer(lambda p, a: "500") as server:
        gen = _gen(server, max_attempts=3)
        out = list(gen.generate(reqs))
    assert out == []
    assert server.requests == 12
    assert gen.stats.failures == {"server_error": 4}
    assert gen.stats.retries == {"server_error": 8}


def test_other_4xx_fails_only_that_request(api_key):
    reqs = _reqs(5, seed=4)
    bad = reqs[2].prompt
    with ChatServer() as server:
        gen = _gen(server, concurrency=1)
        # A body without a user message gets a 400 from the server: only that request fails.
        orig = gen._messages
        gen._messages = lambda prompt: ([] if prompt == bad else orig(prompt))
        out = list(gen.generate(reqs))
    assert sorted(r.index for r in out) == [0, 1, 3, 4]
    assert gen.stats.failures == {"http_400": 1} and not gen.stats.retries


def test_concurrency_limit_is_respected(api_key):
    reqs = _reqs(24, seed=5)
    with ChatServer(delay_s=0.05) as server:
        out = list(_gen(server, concurrency=3).generate(reqs))
    assert len(out) == 24
    assert server.max_in_flight == 3


def test_deadline_stops_cleanly_keeping_answers(api_key):
    reqs = _reqs(60, seed=6)
    with ChatServer(delay_s=0.1) as server:
        gen = _gen(server, concurrency=2)
        t0 = time.monotonic()
        out = list(gen.generate(reqs, deadline=t0 + 0.55))
        elapsed = time.monotonic() - t0
    assert 4 <= len(out) < 60
    assert elapsed < 1.5  # the deadline plus at most one in-flight answer, with slack for slow CI
    assert gen.stats.failures["time_budget_not_started"] == 60 - len(out) - sum(
        v for k, v in gen.stats.failures.items() if k != "time_budget_not_started")


def test_cost_accounting(api_key):
    reqs = _reqs(5, seed=7)
    with ChatServer() as server:
        gen = _gen(server, price_prompt_per_1k=0.5, price_completion_per_1k=1.5)
        out = list(gen.generate(reqs))
    p = sum(r.meta["prompt_tokens"] for r in out)
    c = sum(r.meta["completion_tokens"] for r in out)
    assert gen.stats.cost == pytest.approx(p * 0.5 / 1000 + c * 1.5 / 1000)
    assert gen.cost(1000, 2000) == pytest.approx(3.5)
    with pytest.raises(ValueError, match="price_prompt_per_1k"):
        OpenAIGenerator("m", base_url="http://127.0.0.1:9/v1", price_prompt_per_1k=-1)


# --- secrets ---------------------------------------------------------------------------------

def _assert_no_key(*texts):
    for t in texts:
        assert KEY not in str(t), f"key leaked into {str(t)[:200]!r}"


def test_auth_error_is_fatal_and_never_shows_the_key(api_key, caplog):
    caplog.set_level(logging.DEBUG)
    reqs = _reqs(6, seed=8)
    with ChatServer(api_key="the-right-key") as server:  # server echoes the wrong key in its 401
        gen = _gen(server)
        with pytest.raises(LLMError, match="http_401") as info:
            list(gen.generate(reqs))
    err = info.value
    _assert_no_key(err, repr(err), err.args, err.__cause__, err.__context__, caplog.text)
    assert err.__cause__ is None and err.__context__ is None
    assert "***" in str(err)


def test_quota_exhausted_is_fatal(api_key):
    with ChatServer(lambda p, a: "quota") as server:
        with pytest.raises(LLMError, match="insufficient_quota"):
            list(_gen(server).generate(_reqs(3)))
        assert server.requests <= 4  # not retried


def test_repr_describe_and_pickle_hide_the_key(api_key):
    with ChatServer() as server:
        gen = _gen(server)
        _assert_no_key(repr(gen), str(gen), json.dumps(gen.describe()), vars(gen).get("base_url"))
        assert "OPENAI_API_KEY" in repr(gen)
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(gen)


@pytest.mark.parametrize("url", ["http://user:sk-in-the-url-0123456789abcdef@127.0.0.1:9/v1",
                                 "http://127.0.0.1:9/v1?api_key=sk-in-the-url-0123456789abcdef",
                                 "https://host/v1?key=abc123"])
def test_a_url_with_credentials_is_refused_without_echoing_them(api_key, url):
    with pytest.raises(LLMError, match="carries credentials") as info:
        OpenAIGenerator("m", base_url=url)
    assert "sk-in-the-url" not in str(info.value) and "abc123" not in str(info.value)


def test_echoed_key_is_scrubbed_from_answers(api_key):
    reqs = _reqs(3, seed=9)
    with ChatServer(lambda p, a: "echo_key") as server:
        out = list(_gen(server).generate(reqs))
    assert len(out) == 3
    assert all("***" in r.text for r in out)
    _assert_no_key(*[r.text for r in out], *[r.meta for r in out])


def test_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("MY_LLM_KEY", raising=False)
    with pytest.raises(LLMError, match="MY_LLM_KEY is not set") as info:
        OpenAIGenerator("m", base_url="http://127.0.0.1:9/v1", api_key_env="MY_LLM_KEY")
    assert "export MY_LLM_KEY=" in str(info.value)
    # A key passed where the variable's name belongs is refused without echoing it.
    with pytest.raises(ValueError, match="name") as info:
        OpenAIGenerator("m", base_url="http://127.0.0.1:9/v1", api_key_env=KEY)
    _assert_no_key(info.value, repr(info.value))
    # Local servers without keys.
    gen = OpenAIGenerator("m", base_url="http://127.0.0.1:9/v1", api_key_env=None)
    assert gen.api_key_env is None


def test_constructor_checks_parameters(api_key):
    for kw, word in [({"concurrency": 0}, "concurrency"), ({"max_attempts": 0}, "max_attempts"),
                     ({"timeout_s": 0}, "timeout_s"), ({"temperature": -1}, "temperature"),
                     ({"model": ""}, "model")]:
        opts = dict(model="m", base_url="http://127.0.0.1:9/v1")
        opts.update(kw)
        with pytest.raises(ValueError, match=word):
            OpenAIGenerator(**opts)


def test_safe_url():
    assert safe_url("https://u:p@example.org:8443/v1?api-key=x#f") == "https://example.org:8443/v1"
    assert safe_url(None) is None


# --- construction by name --------------------------------------------------------------------

def test_make_generator_by_name(api_key):
    gen = make_generator("openai", "voc2007", model="m", base_url="http://127.0.0.1:9/v1")
    assert isinstance(gen, OpenAIGenerator)
    assert type(make_generator("template", "voc2007")).__name__ == "TemplateGenerator"
    with pytest.raises(ConfigError, match="model="):
        make_generator("openai", "voc2007")
    with pytest.raises(ValueError, match="unknown generator 'gpt'"):
        make_generator("gpt", "voc2007")
    with pytest.raises(TypeError, match="options"):
        make_generator(gen, "voc2007", model="x")
    with pytest.raises(ConfigError, match="no options"):
        make_generator("template", "voc2007", model="x")


def test_transformers_missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"pip install -e \.\[transformers\]"):
        make_generator("transformers", "voc2007", model="any")
    assert "pip install -e .[transformers]" in TRANSFORMERS_HINT


# --- transformers (only with the optional extra) ---------------------------------------------

def _tiny_chat_model():
    """A tiny random GPT-2 with a word-level tokenizer and a chat template, built offline."""
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    words = ["<pad>", "<eos>", "<unk>", "user:", "assistant:", "a", "photo", "of", "dog", "cat",
             "please", "make", "brief", "sentence", "to", "describe", "that", "contains", "."]
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(words)},
                                                           unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>",
                                                eos_token="<eos>", unk_token="<unk>")
    fast.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }} {% endfor %}"
                          "{% if add_generation_prompt %}assistant: {% endif %}")
    config = transformers.GPT2Config(vocab_size=len(words), n_positions=64, n_embd=16, n_layer=1,
                                     n_head=2, eos_token_id=1, bos_token_id=1, pad_token_id=0)
    import torch
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    return model, fast


def test_transformers_generator_batches_and_reports(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never look anything up online
    model, tokenizer = _tiny_chat_model()
    from lcmc_core.text.generators.hf import TransformersGenerator
    gen = TransformersGenerator(model, tokenizer=tokenizer, device="cpu", batch_size=3, max_new_tokens=6,
                                seed=1)
    reqs = [r.__class__(r.index, r.label_ids, r.label_names, "please make a photo of dog .")
            for r in _reqs(7)]
    out = list(gen.generate(reqs))
    assert [r.index for r in out] == list(range(7))
    assert all(isinstance(r.text, str) and r.meta["finish_reason"] in ("stop", "length") for r in out)
    assert all(1 <= r.meta["completion_tokens"] <= 6 and r.meta["prompt_tokens"] > 0 for r in out)
    assert gen.stats.responses == 7 and gen.source.startswith("transformers:")
    assert "assistant:" in gen.render("a photo")
    again = list(TransformersGenerator(model, tokenizer=tokenizer, device="cpu", batch_size=3,
                                       max_new_tokens=6, seed=1).generate(reqs))
    assert [r.text for r in again] == [r.text for r in out]  # seeded per batch
    # The deadline stops before the next batch.
    assert list(gen.generate(reqs, deadline=time.monotonic() - 1)) == []
    assert gen.stats.failures["time_budget_not_started"] == 7


def test_transformers_generator_from_a_folder_via_the_job(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tokenizer = _tiny_chat_model()
    folder = tmp_path / "tiny-chat"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    from lcmc_core.text.generation import generate_corpus
    s = generate_corpus(tmp_path / "c.jsonl", "voc2007", 5, seed=0, generator="transformers",
                        model=str(folder), device="cpu", batch_size=2, max_new_tokens=4, progress=False)
    assert s.accepted + s.rejected == 5 and s.status == "complete"  # random words: mostly rejected
    assert s.generator["source"] == f"transformers:{folder}" and s.run["responses"] == 5
    empty = tmp_path / "empty"  # an existing folder: loaded locally, never looked up online
    empty.mkdir()
    with pytest.raises(OSError, match="could not load model"):
        make_generator("transformers", "voc2007", model=str(empty))


def test_bad_settings_stop_the_run_instead_of_failing_every_request(api_key):
    with ChatServer() as server:
        gen = _gen(server, extra_body={"stream_options": object()})  # cannot be sent as JSON
        with pytest.raises(LLMError, match="TypeError"):
            list(gen.generate(_reqs(3)))


def test_a_200_without_choices_is_malformed_and_retried(api_key):
    reqs = _reqs(2, seed=12)
    with ChatServer() as server:
        gen = _gen(server)
        real = gen._parse
        calls = []

        def parse(completion):
            calls.append(1)
            if len(calls) <= 2:
                completion.choices = []
            return real(completion)
        gen._parse = parse
        out = list(gen.generate(reqs))
    assert len(out) == 2 and gen.stats.retries == {"malformed": 2}


def test_a_dead_endpoint_stops_the_run(api_key):
    with ChatServer(lambda p, a: "drop") as server:
        gen = _gen(server, max_attempts=2, max_consecutive_failures=3, concurrency=1)
        with pytest.raises(LLMError, match="3 requests in a row failed.*connection"):
            list(gen.generate(_reqs(20)))
    assert server.requests == 6 and gen.stats.failures == {"connection": 3}
    with pytest.raises(ValueError, match="max_consecutive_failures"):
        OpenAIGenerator("m", base_url="http://127.0.0.1:9/v1", max_consecutive_failures=0)


# --- numbers that are not numbers, odd usage, the model that answered ---------------------------

@pytest.mark.parametrize("name", ["read_timeout_s", "connect_timeout_s", "timeout_s", "backoff_base_s",
                                  "backoff_max_s", "retry_after_max_s", "temperature", "price_prompt_per_1k"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_naming_the_setting(api_key, name, value):
    with pytest.raises(ConfigError, match=rf"OpenAIGenerator: (read_)?{name} must be a finite") as info:
        OpenAIGenerator("m", base_url="http://127.0.0.1:9/v1", **{name: value})
    assert "\n" not in str(info.value)


def test_non_finite_timeouts_on_the_command_line_are_one_line(capsys, tmp_path, monkeypatch):
    from lcmc_core.__main__ import main
    monkeypatch.setenv("LCMC_K", "k")
    for flag, value in (("--read-timeout-s", "nan"), ("--read-timeout-s", "inf"), ("--connect-timeout-s", "nan")):
        rc = main(["generate-corpus", "--label-set", "voc2007", "--n", "3", "--generator", "openai", "--model", "m",
                   "--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "LCMC_K", flag, value,
                   "--out", str(tmp_path / "c.jsonl")])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and flag[2:].replace("-", "_") in err[0]
    assert not (tmp_path / "c.jsonl").exists()


@pytest.mark.parametrize("value, count", [(12, 12), ("12", 12), (" 7 ", 7), ("12.0", 12), (3.0, 3), (0, 0),
                                          (-5, None), ("-5", None), (float("nan"), None), ("NaN", None),
                                          (float("inf"), None), ("1e999", None), ("lots", None), (2.5, None),
                                          (True, None), (None, None), ([], None), ("9" * 40, None)])
def test_token_count_reads_leniently(value, count):
    from lcmc_core.text.generators.base import token_count
    assert token_count(value) == count


def test_odd_usage_is_unknown_and_counted_never_a_lost_answer(api_key):
    reqs = _reqs(8, seed=4)
    kinds = {r.prompt: k for r, k in zip(reqs, ["usage_str", "usage_garbage", "usage_negative", "usage_nan"] * 2)}
    with ChatServer(lambda p, a: kinds[p]) as server:
        gen = _gen(server, max_attempts=1)
        out = list(gen.generate(reqs))
    assert len({r.index for r in out}) == 8 and not gen.stats.failures
    by_prompt = {reqs[r.index].prompt: r for r in out}
    for prompt, kind in kinds.items():
        meta = by_prompt[prompt].meta
        if kind == "usage_str":
            assert (meta["prompt_tokens"], meta["completion_tokens"]) == token_counts(prompt, sentence_for(prompt))
        else:
            assert meta["prompt_tokens"] is None and meta["completion_tokens"] is None and meta["usage_unreadable"]
    odd = sum(k != "usage_str" for k in kinds.values())
    assert gen.stats.notes == {"usage_unreadable": odd} and gen.stats.as_dict()["notes"] == {"usage_unreadable": odd}
    assert gen.stats.prompt_tokens == sum(token_counts(p, sentence_for(p))[0] for p, k in kinds.items()
                                          if k == "usage_str")


def test_each_answer_says_which_model_served_it(api_key):
    reqs = _reqs(4, seed=2)
    with ChatServer(lambda p, a: "other_model" if p == reqs[0].prompt else None) as server:
        out = {r.index: r for r in _gen(server).generate(reqs)}
    assert out[0].meta["model"] == "other-model"
    assert {out[i].meta["model"] for i in (1, 2, 3) if reqs[i].prompt != reqs[0].prompt} == {"fake-model"}


def test_an_openai_base_url_from_the_environment_is_checked_too(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "https://fn.azurewebsites.net/api/v1?code=AZURE-FUNCTION-KEY-123")
    with pytest.raises(LLMError, match="OPENAI_BASE_URL .*carries credentials") as info:
        OpenAIGenerator("m", api_key_env=None)
    assert "AZURE-FUNCTION-KEY-123" not in str(info.value)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    OpenAIGenerator("m", api_key_env=None)


def test_the_constructor_is_split_by_job():
    """OpenAIGenerator.__init__ delegates checks, the key lookup and the client to helpers (each short)."""
    import ast
    import inspect

    from lcmc_core.text.generators import openai as module
    tree = ast.parse(inspect.getsource(module))
    lengths = {n.name: n.end_lineno - n.lineno + 1 for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert lengths["__init__"] <= 60 and {"_check_settings", "_api_key", "_make_client"} <= set(lengths)
    assert max(lengths.values()) <= 80, {k: v for k, v in lengths.items() if v > 80}


@pytest.mark.parametrize("option, value", [("temperature", float("inf")), ("temperature", float("nan")),
                                           ("top_p", float("nan")), ("top_p", 1.5), ("price_prompt_per_1k", float("inf"))])
def test_transformers_settings_are_checked_before_the_heavy_import(monkeypatch, option, value):
    monkeypatch.setitem(sys.modules, "transformers", None)   # the checks come first, even without the extra
    from lcmc_core.text.generators.hf import TransformersGenerator
    with pytest.raises(ConfigError, match=rf"TransformersGenerator: {option} must be"):
        TransformersGenerator("any", **{option: value})
