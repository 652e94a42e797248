"""The OpenAI-compatible client against a fake server on localhost."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fake_llm import FakeLLM, fake_llm

from rag.config import Settings
from rag.errors import LLMError
from rag.llm import LLMClient

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "안녕?"}]


@pytest.fixture
def server() -> Iterator[FakeLLM]:
    with fake_llm() as s:
        yield s


def _client(server: FakeLLM, **kw: object) -> LLMClient:
    settings = Settings(
        llm_base_url=server.base_url, llm_model="tiny", llm_api_key="sk-test", llm_timeout=2.0
    )
    client = LLMClient.from_settings(settings)
    assert client is not None
    return LLMClient(**{**client.__dict__, **kw})  # type: ignore[arg-type]


def test_not_configured_means_no_client() -> None:
    assert LLMClient.from_settings(Settings()) is None


def test_url_accepts_base_or_full_path() -> None:
    assert LLMClient("http://h:1/v1/", "m").url == "http://h:1/v1/chat/completions"
    assert LLMClient("http://h:1/v1/chat/completions", "m").url == "http://h:1/v1/chat/completions"


def test_non_streaming_reply_and_request(server: FakeLLM) -> None:
    server.reply = "네, 안녕하세요. [1]"
    assert _client(server).chat(MESSAGES) == "네, 안녕하세요. [1]"
    req = server.last
    assert req["model"] == "tiny" and req["stream"] is False and req["messages"] == MESSAGES
    assert server.headers[-1]["Authorization"] == "Bearer sk-test"


def test_streaming_yields_pieces_in_order(server: FakeLLM) -> None:
    server.reply = "The answer is in the passage [2]. 두 번째 문장입니다 [1]."
    pieces = list(_client(server).stream(MESSAGES))
    assert len(pieces) > 3
    assert "".join(pieces) == server.reply
    assert server.last["stream"] is True


def test_slow_server_times_out(server: FakeLLM) -> None:
    server.delay = 1.5
    client = _client(server, timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(LLMError, match="did not answer within"):
        client.chat(MESSAGES)
    with pytest.raises(LLMError):
        list(client.stream(MESSAGES))
    assert time.monotonic() - t0 < 2.5  # no retry after a timeout


def test_server_error_is_retried_then_raised(server: FakeLLM) -> None:
    server.status = 500
    with pytest.raises(LLMError, match="HTTP 500"):
        _client(server, retries=1).chat(MESSAGES)
    assert len(server.requests) == 2  # one retry


def test_transient_error_recovers(server: FakeLLM) -> None:
    server.status, server.fail_times, server.reply = 503, 1, "ok"
    assert _client(server, retries=1).chat(MESSAGES) == "ok"


def test_client_error_is_not_retried(server: FakeLLM) -> None:
    server.status = 401
    with pytest.raises(LLMError, match="401"):
        _client(server, retries=3).chat(MESSAGES)
    assert len(server.requests) == 1


def test_malformed_replies(server: FakeLLM) -> None:
    server.raw = "<html>not json</html>"
    with pytest.raises(LLMError, match="not a chat completion"):
        _client(server).chat(MESSAGES)
    server.raw = '{"choices": []}'
    with pytest.raises(LLMError):
        _client(server).chat(MESSAGES)


def test_connection_refused_names_the_url() -> None:
    client = LLMClient("http://127.0.0.1:9/v1", "m", timeout=1.0, retries=0)
    with pytest.raises(LLMError, match=r"127\.0\.0\.1:9"):
        client.chat(MESSAGES)
