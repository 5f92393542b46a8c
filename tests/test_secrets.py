"""Secrets in URLs: every endpoint URL that carries or can carry a key is refused, and what is written is scrubbed.

The reporter found ``?auth=``, ``?code=`` (Azure Functions keys), ``?X-Amz-Signature=`` and a key in
a path segment (``/key=.../``) written verbatim into the manifest, notebooks and HTML, because the
check knew a few query names only. The rule is now blunt: user info, any query string, a fragment,
a ``name=value`` (or ``;``) path segment or a key-shaped path segment is refused wherever a URL
enters (OpenAIGenerator's base_url or OPENAI_BASE_URL, the runner's llm.base_url check), never
echoed; :func:`redact` scrubs such values from anything written.
"""
import pytest

from lcmc_core.errors import ConfigError
from lcmc_core.secrets import (
    REDACTED,
    is_secret_parameter,
    redact,
    redact_tree,
    safe_url,
    url_credentials_message,
)

SECRET = "S3CRETvalue0123456789"
REFUSED = [
    (f"https://fn.azurewebsites.net/api/llm/v1?code={SECRET}", "the query parameter 'code'"),
    (f"https://host/v1?auth={SECRET}", "the query parameter 'auth'"),
    (f"https://bucket.s3.amazonaws.com/v1?X-Amz-Algorithm=AWS4&X-Amz-Signature={SECRET}",
     "the query parameter 'X-Amz-Signature'"),
    (f"https://host/v1?api-version=2024-01&sig={SECRET}", "the query parameter 'sig'"),
    (f"https://host/v1?x={SECRET}", "a query string"),
    (f"https://host/key={SECRET}/v1", "the path segment 'key=...'"),
    (f"https://host/v1;token={SECRET}", "the path segment 'v1;token=...'"),
    (f"https://host/sk-{SECRET}/v1", "the path segment '...'"),
    (f"https://user:{SECRET}@host/v1", "a user name or password"),
    (f"https://{SECRET}@host/v1", "a user name or password"),
    (f"https://host/v1#{SECRET}", "a fragment"),
    ("https://host/v1?", "a query string"),
]


@pytest.mark.parametrize("url, where", REFUSED)
def test_every_url_that_can_carry_a_key_is_refused_without_echoing_it(url, where):
    message = url_credentials_message(url, "llm.base_url")
    assert message is not None and message.startswith("llm.base_url: the URL carries credentials")
    assert where in message and SECRET not in message and "\n" not in message


@pytest.mark.parametrize("url", ["http://localhost:8000/v1", "https://api.openai.com/v1", "http://127.0.0.1:9/v1",
                                 "https://host/openai/deployments/gpt-4o"])
def test_plain_endpoints_pass(url):
    assert url_credentials_message(url, "base_url") is None
    assert safe_url(url) == url


def test_a_malformed_url_is_refused_without_a_traceback():
    assert "not a valid URL" in url_credentials_message("http://[::1/v1", "base_url")
    assert url_credentials_message("http://host:notaport/v1", "base_url") is not None


@pytest.mark.parametrize("url, where", REFUSED)
def test_safe_url_shows_no_credential(url, where):
    shown = safe_url(url)
    assert SECRET not in shown and shown.startswith("https://")


def test_safe_url_keeps_what_is_safe():
    assert safe_url("https://u:p@example.org:8443/v1?api-key=x#f") == "https://example.org:8443/v1"
    assert safe_url(f"https://host/key={SECRET}/v1") == f"https://host/key={REDACTED}/v1"
    assert safe_url(None) is None


@pytest.mark.parametrize("url, where", REFUSED[:4] + REFUSED[5:8] + REFUSED[8:10])
def test_redact_scrubs_the_same_urls_wherever_they_are_written(url, where):
    text = f'"base_url": "{url}", and in HTML <a href="{url}">link</a>'
    clean = redact(text, [])
    assert SECRET not in clean and REDACTED in clean
    assert SECRET not in str(redact_tree({"nested": [url]}, []))


def test_redact_leaves_ordinary_names_and_urls_alone():
    text = ("f(max_tokens=40, temperature=1.0) https://cdn.example.org/MathJax.js?config=TeX-AMS_HTML-full "
            "https://host/v1?tokens=3&page=2 results/2024-01=ok")
    assert redact(text, []) == text


@pytest.mark.parametrize("name, secret", [("auth", True), ("Authorization", True), ("code", True),
                                          ("X-Amz-Signature", True), ("X-Amz-Credential", True),
                                          ("X-Amz-Security-Token", True), ("api-key", True), ("key", True),
                                          ("sig", True), ("access_token", True), ("client_secret", True),
                                          ("max_tokens", False), ("config", False), ("page", False),
                                          ("api-version", False), ("tokens", False)])
def test_which_url_parameters_count_as_credentials(name, secret):
    assert is_secret_parameter(name) is secret


def test_the_generator_and_the_runner_refuse_such_urls(monkeypatch):
    from lcmc_core.experiments import params as P
    from lcmc_core.text.generators import LLMError
    from lcmc_core.text.generators.openai import OpenAIGenerator

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    for url, _ in REFUSED:
        with pytest.raises(LLMError, match="carries credentials") as info:
            OpenAIGenerator("m", base_url=url, api_key_env=None)
        assert SECRET not in str(info.value)
        with pytest.raises(ConfigError, match="carries credentials") as info:
            P.params_from_tree({"llm": {"base_url": url}})
        assert SECRET not in str(info.value)
