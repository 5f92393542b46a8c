"""The corpus notebook pointed at an OpenAI-compatible endpoint with a fake key: the key leaks nowhere."""
import uuid

import pytest

from lcmc_core.harness.reproduce import reproduce

from chat_server import ChatServer


@pytest.mark.slow
def test_corpus_notebook_with_a_fake_key_writes_it_to_no_file(tmp_path, monkeypatch):
    key = f"sk-lcmc-fake-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", key)

    def faults(prompt, attempt):
        # some answers echo the key in their content, some are rate-limited once
        h = sum(map(ord, prompt))
        if h % 5 == 0:
            return "echo_key"
        if h % 7 == 0 and attempt == 0:
            return "429"
        return None

    out = tmp_path / "results"
    with ChatServer(faults, api_key=key) as server:
        reproduce("smoke", only=["01"], out=out, progress=False,
                  overrides={"corpus_generator": "openai", "llm.model": "fake-model", "llm.base_url": server.url,
                             "corpus_size": 40, "llm.concurrency": 4})
        assert server.kinds["echo_key"] > 0 and server.kinds["ok"] > 0  # the key really came back
    files = [p for p in out.rglob("*") if p.is_file()]
    corpus = [p for p in files if p.name.endswith(".jsonl") and "rejected" not in p.name]
    assert corpus and corpus[0].read_text().count("\n") >= 20  # the endpoint was really used
    assert any(p.suffix == ".html" for p in files) and any(p.name == "manifest.json" for p in files)
    for p in files:
        assert key not in p.read_bytes().decode("utf-8", errors="replace"), f"the key leaked into {p}"
