"""A small client for OpenAI-compatible chat completion endpoints.

Works with vLLM, Ollama, llama.cpp's server and hosted APIs: ``POST
{base_url}/chat/completions`` with ``{"model","messages","stream"}``. Streaming
reads server-sent events (``data: {...}`` lines, ``data: [DONE]``). Only the
standard library is used, so the optional LLM needs no extra package.

Every failure (connection refused, timeout, HTTP error, a reply that is not the
expected JSON) raises :class:`rag.errors.LLMError` whose message names the URL;
connection errors and 429/5xx answers are retried ``retries`` times, timeouts
are not (a slow server would only be slower the second time). This module knows
nothing about passages, prompts or citations (see ``rag.answer.compose``).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rag.config import Settings
from rag.errors import LLMError

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
BACKOFF_S = 0.3  # first retry waits this long, then doubles


@dataclass(frozen=True)
class LLMClient:
    """One configured endpoint; stateless, safe to share between threads."""

    base_url: str
    model: str
    api_key: str = ""
    timeout: float = 30.0  # seconds to wait for any reply; a stream must also finish within it
    retries: int = 1
    temperature: float = 0.0  # grounded answers: no creativity wanted
    max_tokens: int = 512

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMClient | None:
        """The client for ``RAG_LLM_*``, or None when no endpoint is configured."""
        if not settings.llm_base_url.strip():
            return None
        return cls(
            base_url=settings.llm_base_url.strip(),
            model=settings.llm_model.strip() or "default",
            api_key=settings.llm_api_key,
            timeout=max(0.1, settings.llm_timeout),
            retries=max(0, settings.llm_retries),
        )

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"

    # ------------------------------------------------------------ public
    def chat(self, messages: Sequence[dict[str, str]]) -> str:
        """The whole reply text of one non-streaming completion."""
        body = self._with_retries(lambda: self._read_all(self._open(messages, stream=False)))
        try:
            data = json.loads(body)
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise LLMError(
                f"{self.url} sent a reply that is not a chat completion ({_short(e)}): {body[:200]!r}"
            ) from None
        if not isinstance(content, str):
            raise LLMError(f"{self.url} sent a chat completion without text content")
        return content

    def stream(self, messages: Sequence[dict[str, str]]) -> Iterator[str]:
        """Text pieces of one streaming completion as they arrive.

        Retries happen only before the first piece; a failure after it raises.
        """
        deadline = time.monotonic() + self.timeout
        resp = self._with_retries(lambda: self._open(messages, stream=True))
        try:
            for raw in resp:
                if time.monotonic() > deadline:
                    raise LLMError(self._late("did not finish"))
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue  # blank separators, ": keep-alive" comments, "event:" lines
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                piece = _delta_text(payload, self.url)
                if piece:
                    yield piece
        except TimeoutError:
            raise LLMError(self._late("stopped sending")) from None
        except (OSError, urllib.error.URLError) as e:
            raise LLMError(f"{self.url}: the connection broke while streaming ({_short(e)})") from None
        finally:
            resp.close()

    # ----------------------------------------------------------- internal
    def _open(self, messages: Sequence[dict[str, str]], stream: bool) -> Any:
        payload = {
            "model": self.model,
            "messages": list(messages),
            "stream": stream,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        accept = "text/event-stream" if stream else "application/json"
        headers = {"Content-Type": "application/json", "Accept": accept}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            detail = _read_error(e)
            raise _HTTPStatusError(e.code, f"{self.url} answered HTTP {e.code}{detail}") from None
        except TimeoutError:
            raise LLMError(self._late("did not answer")) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise LLMError(self._late("did not answer")) from None
            raise _ConnectError(
                f"cannot reach {self.url} ({_short(e.reason)}); check RAG_LLM_BASE_URL"
            ) from None
        except OSError as e:
            raise _ConnectError(f"cannot reach {self.url} ({_short(e)}); check RAG_LLM_BASE_URL") from None

    def _late(self, what: str) -> str:
        return f"{self.url} {what} within {self.timeout:g} s (RAG_LLM_TIMEOUT)"

    def _read_all(self, resp: Any) -> str:
        try:
            with resp:
                return bytes(resp.read()).decode("utf-8", "replace")
        except TimeoutError:
            raise LLMError(self._late("stopped sending")) from None
        except OSError as e:
            raise _ConnectError(f"{self.url}: the connection broke while reading ({_short(e)})") from None

    def _with_retries(self, call: Any) -> Any:
        attempt = 0
        while True:
            try:
                return call()
            except (_ConnectError, _HTTPStatusError) as e:
                retryable = isinstance(e, _ConnectError) or e.status in RETRY_STATUS
                if not retryable or attempt >= self.retries:
                    raise LLMError(str(e)) from None
                time.sleep(BACKOFF_S * (2**attempt))
                attempt += 1


class _ConnectError(LLMError):
    """Could not connect, or the connection dropped: worth one more try."""


class _HTTPStatusError(LLMError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _delta_text(payload: str, url: str) -> str:
    try:
        data = json.loads(payload)
    except ValueError:
        raise LLMError(f"{url} sent a stream event that is not JSON: {payload[:200]!r}") from None
    if isinstance(data, dict) and "error" in data:
        raise LLMError(f"{url} reported an error while streaming: {str(data['error'])[:200]}")
    try:
        choices = data["choices"]
        if not choices:
            return ""  # e.g. a final usage-only event
        delta = choices[0].get("delta") or {}
        content = delta.get("content") or ""
    except (KeyError, TypeError, AttributeError):
        msg = f"{url} sent a stream event that is not a completion chunk: {payload[:200]!r}"
        raise LLMError(msg) from None
    if not isinstance(content, str):
        raise LLMError(f"{url} sent a stream event whose content is not text")
    return content


def _read_error(e: urllib.error.HTTPError) -> str:
    try:
        text = e.read(300).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return f": {text}" if text else ""


def _short(e: object) -> str:
    s = str(e).strip() or type(e).__name__
    return s.splitlines()[0][:200]
