"""schemathesis hooks for tests/test_schema.py (``SCHEMATHESIS_HOOKS=tests.schema_hooks``).

/openapi.json states every per-field rule the server checks, and schemathesis holds the server to
it. Three rules relate several values, which JSON Schema cannot express; /openapi.json states them
in descriptions, and these hooks keep generated bodies within them, so a refusal of such a body
is not reported as "valid data rejected":

- ``from`` is not after ``to`` (``/api/search``, ``/api/ask``);
- the last ``user`` message of ``/v1/chat/completions`` is the question: a non-space character,
  at most ``RAG_MAX_QUESTION_CHARS`` characters;
- the encoded body is at most ``RAG_MAX_BODY_BYTES`` (else 413, tested in test_api_edges).

No check is switched off or widened: every status, content type and body is still checked.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import schemathesis

MAX_QUESTION = int(os.environ.get("RAG_MAX_QUESTION_CHARS", "2000"))
MAX_BODY = int(os.environ.get("RAG_MAX_BODY_BYTES", "65536"))
DAY = re.compile("^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _text(content: Any) -> str:
    """A chat message's text, as rag.serve.openai_api.Message.text reads it."""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content
                       if isinstance(p, dict) and p.get("type", "text") == "text")
    return content if isinstance(content, str) else ""


def _question_ok(text: str) -> bool:
    return bool(text.strip()) and len(text) <= MAX_QUESTION


def _within_rules(path: str, body: Any) -> bool:
    if isinstance(body, bytes | str):
        return len(body) <= MAX_BODY // 4  # a raw body (another media type): generously small
    if len(json.dumps(body, default=repr).encode()) > MAX_BODY:  # ASCII-escaped: never smaller than sent
        return False
    if not isinstance(body, dict):
        return True
    lo, hi = body.get("from"), body.get("to")
    if isinstance(lo, str) and isinstance(hi, str) and DAY.match(lo) and DAY.match(hi) and lo > hi:
        return False
    messages = body.get("messages")
    if path == "/v1/chat/completions" and isinstance(messages, list):
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        if users and not _question_ok(_text(users[-1].get("content"))):
            return False
    return True


@schemathesis.hook
def filter_body(context: schemathesis.HookContext, body: Any) -> bool:
    path = context.operation.path if context.operation is not None else ""
    return _within_rules(path, body)
