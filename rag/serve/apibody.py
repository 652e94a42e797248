"""What every JSON request body of the HTTP API shares: valid Unicode in every string, and the
error responses the OpenAPI schema documents.

A JSON string may carry a lone surrogate (``"\\ud800"``): Python parses it, but no encoder
(tokenizer, log, response) accepts it later. :class:`Body` refuses it up front with a ``400``
naming the field. :func:`document_errors` makes ``/openapi.json`` say what the server really
sends (``400`` for a bad body, not FastAPI's ``422``; ``401``, ``403``, ``405``, ``408``,
``413``, ``429``, ``503``; server-sent events). :func:`document_rules` adds the field rules the
server checks outside pydantic (a question with a non-space character, at most
``RAG_MAX_QUESTION_CHARS`` long; a date bound empty or ``YYYY-MM-DD``; a chat with a user message)
so that schemathesis's valid requests are accepted and its invalid ones refused. Routes and models
live in ``server`` and ``openai_api``.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

INTERNAL = "internal server error; the server log has the details / 서버 내부 오류입니다"
_SURROGATE = re.compile("[\ud800-\udfff]")
BAD_UNICODE = ("contains invalid Unicode (an unpaired surrogate such as \\ud800); send valid UTF-8 text / "
               "잘못된 유니코드 문자가 있습니다")


def has_surrogate(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (dict keys and values, lists) holds a lone surrogate."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(has_surrogate(k) or has_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_surrogate(v) for v in value)
    return False


class Body(BaseModel):
    """Base of every request body: unknown keys ignored, strings checked for invalid Unicode."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="after")  # after: nested bodies have checked (and named) their own fields
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        if has_surrogate(value):
            raise ValueError(BAD_UNICODE)
        return value


_ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type", "code"], "properties": {
        "message": {"type": "string"}, "type": {"type": "string"}, "code": {"type": "integer"}}}},
}
_WHY = {
    "400": "The request is invalid (the message names the field) / 잘못된 요청",
    "401": "Authentication is required or failed",
    "403": "The request's Origin is not allowed",
    "404": "Not found",
    "405": "Method not allowed",
    "408": "The request body arrived too slowly",
    "413": "The request body is too large",
    "429": "Too many requests (see Retry-After)",
    "503": "The search index is not available yet (see Retry-After)",
}


def _event_schema(path: str) -> dict[str, Any]:
    """One server-sent event (OpenAPI 3.1: a streamed media type's ``schema`` describes each event).
    ``/api/ask``: named ``delta``/``answer``/``error``/``done`` events with a JSON object of that
    ``type``; the OpenAI route: unnamed events, each a JSON chunk or the final ``[DONE]``."""
    data: dict[str, Any] = {"type": "string"}
    if path == "/api/ask":
        kinds = ["delta", "answer", "error", "done"]
        data |= {"contentMediaType": "application/json", "contentSchema": {
            "type": "object", "required": ["type"], "properties": {"type": {"enum": kinds}}}}
        return {"type": "object", "required": ["event", "data"],
                "properties": {"event": {"enum": kinds}, "data": data}}
    return {"type": "object", "required": ["data"], "properties": {"data": data}}


def document_errors(schema: dict[str, Any], streaming: set[str]) -> dict[str, Any]:
    """Rewrite FastAPI's generated schema to the errors the server sends; ``streaming``: paths whose
    ``200`` may also be ``text/event-stream``."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
    schema["components"]["schemas"].pop("HTTPValidationError", None)
    schema["components"]["schemas"].pop("ValidationError", None)
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            codes = ["400", "401", "404", "405", "408", "413", "429", "503"]
            if method.upper() not in ("GET", "HEAD", "OPTIONS"):
                codes.append("403")
            for code in codes:
                responses[code] = {"description": _WHY[code], "content": ref}
            if path in streaming and "200" in responses:
                responses["200"].setdefault("content", {})["text/event-stream"] = {"schema": _event_schema(path)}
    return schema


DAY = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"  # the API's date bounds: a calendar day, nothing around it


def document_rules(schema: dict[str, Any], max_question_chars: int, max_body_bytes: int) -> dict[str, Any]:
    """Add to the request bodies of ``schema`` the rules the server checks itself (see the module
    docstring). What JSON Schema cannot say (``from`` not after ``to``; the last ``user`` message
    is the question; the whole body at most ``max_body_bytes``) is said in descriptions."""
    models = schema.get("components", {}).get("schemas", {})
    # a character Python's str.strip keeps: ECMA's \S also matches U+001C-U+001F and U+0085,
    # which the server strips ("question is empty")
    question = {"minLength": 1, "maxLength": max_question_chars, "pattern": r"[^\s\u001c-\u001f\u0085]",
                "description": f"at least one non-space character, at most {max_question_chars} characters"}
    day = {"anyOf": [{"type": "string", "maxLength": 0}, {"type": "string", "format": "date", "pattern": DAY}],
           "default": ""}
    for name in ("SearchRequest", "AskRequest"):
        props = models.get(name, {}).get("properties", {})
        if "question" in props:
            props["question"].update(question)
        for bound, rule in (("from", "on or after this day"), ("to", "on or before this day (not before `from`)")):
            if bound in props:
                props[bound] = {**day, "title": props[bound].get("title", bound),
                                "description": f"published {rule}: YYYY-MM-DD, or empty for no bound"}
    chat = models.get("ChatRequest", {}).get("properties", {})
    if "messages" in chat:
        chat["messages"]["contains"] = {"type": "object", "required": ["role"],
                                        "properties": {"role": {"const": "user"}}}
        chat["messages"]["description"] = ("at least one `user` message; the last one is the question "
                                           f"(a non-space character, at most {max_question_chars} characters)")
    for op in (o for ops in schema.get("paths", {}).values() for o in ops.values()):
        if "requestBody" in op:
            op["requestBody"]["description"] = f"JSON, at most {max_body_bytes} bytes (else 413)"
    return schema
