"""``POST /v1/chat/completions`` in the OpenAI format, so any OpenAI client can ask the bot.

The last ``user`` message is the question; earlier user/assistant messages are
the conversation (used to resolve follow-ups); system messages are ignored,
since answers come only from the articles. The grounded answer is the
assistant message; its sources travel beside it as ``citations`` (the same
objects as ``/api/ask``), in the response body and in the last streamed chunk.
``GET /v1/models`` lists the one model, ``rag``. Auth and rate limits are the
server's (the client's ``api_key`` is the Bearer key).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field

from rag.records import Answer, Turn
from rag.serve.apibody import INTERNAL, Body
from rag.serve.service import ApiError, Service

MODEL = "rag"
log = logging.getLogger("rag.serve.server")


class Message(Body):
    role: str = Field(strict=True)
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # [{"type": "text", "text": ...}, ...]
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type", "text") == "text")
        return self.content or ""


class ChatRequest(Body):
    model: str = Field(default=MODEL, strict=True)
    messages: list[Message] = Field(min_length=1, max_length=200)
    stream: bool = Field(default=False, strict=True)


def _split(req: ChatRequest) -> tuple[str, list[Turn]]:
    users = [i for i, m in enumerate(req.messages) if m.role == "user"]
    if not users:
        raise ApiError(400, "messages: at least one message with role 'user' is needed")
    last = users[-1]
    history = [Turn(m.role, m.text()) for m in req.messages[:last]
               if m.role in ("user", "assistant") and m.text()]
    return req.messages[last].text(), history


def _extra(a: Answer) -> dict[str, Any]:
    return {"citations": [c.to_json() for c in a.citations], "abstained": a.abstained, "lang": a.lang,
            "answer_id": a.id}


def completion(a: Answer, model: str) -> dict[str, Any]:
    """A ``chat.completion`` object for one answer."""
    return {
        "id": "chatcmpl-" + (a.id or uuid.uuid4().hex),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": a.answer},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        **_extra(a),
    }


def _chunk(cid: str, model: str, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    body = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def stream_chunks(events: Iterator[dict[str, Any]], model: str) -> Iterator[str]:
    """Server-sent ``chat.completion.chunk`` events; the last one carries ``citations``."""
    cid = "chatcmpl-" + uuid.uuid4().hex
    yield _chunk(cid, model, {"role": "assistant", "content": ""})
    try:
        sent = ""
        for ev in events:
            if ev.get("type") == "delta" and ev.get("text"):
                sent += ev["text"]
                yield _chunk(cid, model, {"content": ev["text"]})
            elif ev.get("type") == "answer":
                a: Answer = ev["answer"]
                if not sent:  # an answerer that does not stream still fills the message
                    yield _chunk(cid, model, {"content": a.answer})
                yield _chunk(cid, model, {}, "stop", **_extra(a))
    except ApiError as e:
        yield f"data: {json.dumps(e.body(), ensure_ascii=False)}\n\n"
    except Exception:  # the stream has started: report in-band, as OpenAI does; details go to the log only
        log.exception("streamed completion failed")
        yield f"data: {json.dumps(ApiError(500, INTERNAL, 'server_error').body(), ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"


def router(service: Service, user: Callable[..., Any]) -> APIRouter:
    """The ``/v1`` routes; ``user`` is the server's auth + rate-limit dependency."""
    r = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

    @r.get("/models", dependencies=[Depends(user)])
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "rag"}]}

    @r.post("/chat/completions", dependencies=[Depends(user)], response_model=None)
    def chat_completions(req: ChatRequest) -> JSONResponse | StreamingResponse:
        question, history = _split(req)
        question = service.check_question(question)
        service.require()  # 503 before a stream starts, not inside it
        model = req.model or MODEL
        if req.stream:
            return StreamingResponse(stream_chunks(service.stream(question, history), model),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        return JSONResponse(completion(service.answer(question, history), model))

    return r
