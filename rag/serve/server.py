"""The one FastAPI application: JSON API, OpenAI-compatible API, the Gradio chat page.

Routes (all below ``Settings.root_path`` when served behind a proxy):
``GET /healthz``, ``GET /api/info``, ``POST /api/search``, ``POST /api/ask``
(JSON, or server-sent events with ``"stream": true``), ``POST /api/feedback``,
``/v1/chat/completions`` and ``/v1/models`` (see ``openai_api``), OpenAPI docs at
``/docs``, ``/gradio.js`` for the ``<gradio-app>`` web component, and the chat
page at ``/``. Every script and font the page needs is served from here.

Embedding policy: ``RAG_ALLOWED_ORIGINS`` lists the origins that may frame the
page and call the APIs (CORS); by default none may (see ``guard``). Auth modes
and rate limits live in ``auth``; what the API does lives in ``service``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import Field, StrictInt, StrictStr, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from rag.config import Settings
from rag.errors import RagError
from rag.ingest.dates import check_range, filter_day
from rag.records import Turn
from rag.search.retrieve import Filters
from rag.serve.apibody import BAD_UNICODE, DAY, INTERNAL, Body, document_errors, document_rules
from rag.serve.auth import AuthError, User, is_loopback
from rag.serve.guard import (
    ErrorShapeMiddleware,
    GuardMiddleware,
    PageLinksMiddleware,
    allowed_hosts,
    allowed_origins,
)
from rag.serve.service import ApiError, Service

log = logging.getLogger("rag.serve.server")


# ----------------------------------------------------------------- requests
class _Body(Body):
    """Unknown keys ignored; every string checked for invalid Unicode (``apibody``)."""


class _Filtered(_Body):
    """Optional restrictions, as on the CLI: one outlet, published on/after ``from``, on/before ``to``."""

    outlet: str = Field(default="", max_length=200)
    date_from: str = Field(default="", alias="from")
    date_to: str = Field(default="", alias="to")

    @field_validator("date_from", "date_to")
    @classmethod
    def _day(cls, value: str) -> str:
        if value and not re.match(DAY, value):  # exactly what /openapi.json says: empty or YYYY-MM-DD
            raise ValueError(f"{value!r} is not a date; write YYYY-MM-DD, e.g. 2025-08-04, or leave it empty")
        return filter_day(value) if value else ""

    def filters(self) -> Filters | None:
        try:
            check_range(self.date_from, self.date_to)
        except ValueError as e:
            raise ApiError(400, str(e)) from None
        f = Filters(outlet=self.outlet.strip(), date_from=self.date_from, date_to=self.date_to)
        return f if f.active() else None


class _Numbered(_Filtered):
    """``id``: echoed back exactly as sent ("3" stays a string; ``true`` is refused)."""

    @field_validator("id", "k", mode="before", check_fields=False)
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        # JSON Schema's integer includes 4.0: read it as 4; 2.5, "4" and true are still refused
        return int(value) if isinstance(value, float) and value.is_integer() else value


class SearchRequest(_Numbered):
    question: str = Field(strict=True)
    k: int = Field(default=5, ge=1, le=50, strict=True)  # "3" and true are refused, not coerced
    question_time: bool = Field(default=True, strict=True)  # as in /api/ask: false ignores "지난주" etc.
    id: StrictStr | StrictInt | None = Field(default=None, description="echoed back as `id` (null when not given)")


class HistoryTurn(_Body):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


class AskRequest(_Numbered):
    question: str = Field(strict=True)
    history: list[HistoryTurn] = Field(default_factory=list, max_length=50)
    stream: bool = Field(default=False, strict=True)
    # false: ignore the question's time words ("지난주"), e.g. after the range was removed on the page
    question_time: bool = Field(default=True, strict=True)
    id: StrictStr | StrictInt | None = Field(default=None, description="echoed back as `id` (null when not given)")


class FeedbackRequest(_Body):
    rating: Literal["up", "down"]
    question: str = Field(max_length=20_000)
    answer: str = Field(max_length=50_000)
    citations: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    answer_id: str = ""
    comment: str = Field(default="", max_length=2000)


# ----------------------------------------------------------------- app
def _error_response(e: ApiError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status, headers=e.headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        if err.get("type") == "json_invalid":
            return "request body is not valid JSON"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")  # pydantic's wrapper of our own text
        if err.get("type") == "string_unicode":  # pydantic's own check of a length-limited string
            msg = BAD_UNICODE
        parts.append(f"{loc or 'body'}: {msg}")
    return "; ".join(parts) or "invalid request"


def _sse(events: Iterator[dict[str, Any]], rid: str | int | None = None) -> Iterator[str]:
    """``/api/ask`` streaming: ``delta`` events, one ``answer`` event, then ``done``."""
    try:
        for ev in events:
            if ev.get("type") == "answer":
                payload = {"type": "answer", "answer": {**ev["answer"].to_json(), "id": rid}}
            else:
                payload = {"type": "delta", "text": str(ev.get("text", ""))}
            yield f"event: {payload['type']}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"
    except ApiError as e:
        yield f"event: error\ndata: {json.dumps({'type': 'error', **e.body()}, ensure_ascii=False)}\n\n"
    except Exception as e:  # the stream has started; report in-band
        log.exception("streamed answer failed: %s", e)
        err = ApiError(500, INTERNAL, "server_error").body()  # the log has the details, not the client
        yield f"event: error\ndata: {json.dumps({'type': 'error', **err}, ensure_ascii=False)}\n\n"
    yield 'event: done\ndata: {"type": "done"}\n\n'


def authenticated(request: Request) -> User:
    """FastAPI dependency: the caller, or 401."""
    service: Service = request.app.state.service
    try:
        return service.auth.identify(request.headers, request.client.host if request.client else "")
    except AuthError as e:
        hdr = {"WWW-Authenticate": "Bearer"} if service.auth.mode == "api-key" else {}
        raise ApiError(401, str(e), "authentication_error", hdr) from None


def limited(request: Request, user: Annotated[User, Depends(authenticated)]) -> User:
    """FastAPI dependency: the caller, within the per-user rate limit (else 429)."""
    request.app.state.service.enforce_rate(user.id)
    return user


def create_app(settings: Settings, retriever: Any = None) -> FastAPI:
    """The whole server as one ASGI app; loads the index (and model) now, not on the first request."""
    import gradio as gr

    from rag import __version__
    from rag.serve.api_docs import mount_docs
    from rag.serve.chat_ui import CSS, build_chat, theme
    from rag.serve.openai_api import router as openai_router

    service = Service(settings, retriever)
    origins = allowed_origins(settings)
    root = settings.root_path.rstrip("/")
    app = FastAPI(title="rag: grounded news Q&A", version=__version__, docs_url=None, redoc_url=None,
                  description="Grounded Korean/English Q&A over news articles; every answer cites its "
                  "sources.\n\n근거 기반 한국어/영어 뉴스 질의응답.")
    app.state.service = service
    # Gradio adds its own permissive-for-localhost CORS unless the parent app configures CORS: this one rules.
    app.add_middleware(ErrorShapeMiddleware)  # innermost: every error below it becomes {"error": ...}
    api_methods: dict[str, set[str]] = {}
    app.add_middleware(_MethodGate, methods=api_methods)
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials="*" not in origins,
                       allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["*"],
                       expose_headers=["Retry-After"])
    app.add_middleware(PageLinksMiddleware)
    app.add_middleware(GuardMiddleware, origins=origins, max_body=settings.max_body_bytes, root_path=root,
                       hosts=allowed_hosts(settings), body_timeout=settings.body_timeout,
                       login_limit=service.check_rate)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(ApiError(400, _validation_message(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        hdrs = dict(exc.headers or {})
        return _error_response(ApiError(exc.status_code, str(exc.detail), "http_error", hdrs))

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        log.error("request failed: %s", exc)  # may name server paths: logged, not sent
        return _error_response(ApiError(500, INTERNAL, "server_error"))

    @app.head("/healthz", include_in_schema=False)
    @app.get("/healthz", tags=["service"])
    def healthz() -> JSONResponse:
        # unauthenticated: says whether the index is usable, never where it is or what broke
        ready = service.retriever() is not None
        body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "ready": ready, "version": __version__}
        if not ready:
            body["error"] = {"message": service.public_problem(), "type": "unavailable", "code": 503}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/api/info", tags=["api"], dependencies=[Depends(authenticated)])
    def info() -> dict[str, Any]:
        return service.info()

    @app.post("/api/search", tags=["api"], dependencies=[Depends(limited)])
    def search(req: SearchRequest) -> dict[str, Any]:
        # `id`, here and in /api/ask: the request's id echoed back, null when it sent none
        q = service.check_question(req.question)
        hits, ts = service.search_dated(q, req.k, req.filters(), req.question_time)
        return {"id": req.id, "question": q, "time": ts, "hits": [h.to_json() for h in hits]}

    @app.post("/api/ask", tags=["api"], dependencies=[Depends(limited)], response_model=None)
    def ask(req: AskRequest) -> dict[str, Any] | StreamingResponse:
        q = service.check_question(req.question)
        history = [Turn(t.role, t.content) for t in req.history]
        filters = req.filters()
        if req.stream:
            service.require()  # a missing index is a 503, not an error event inside a 200 stream
            events = service.stream(q, history, filters, req.question_time)
            return StreamingResponse(_sse(events, req.id), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return {**service.answer(q, history, filters, req.question_time).to_json(), "id": req.id}

    @app.post("/api/feedback", tags=["api"])
    def feedback(req: FeedbackRequest, user: Annotated[User, Depends(limited)]) -> dict[str, Any]:
        who = user.id if service.auth.mode != "none" else ""  # no client addresses in the store
        rec = service.feedback.add({**req.model_dump(), "user": who, "via": "api"})
        return {"ok": True, "time": rec["time"]}

    app.include_router(openai_router(service, limited))
    mount_docs(app)  # offline Swagger UI (rag.serve.api_docs)
    app.openapi_schema = None
    make_schema = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = document_errors(make_schema(), {"/api/ask", "/v1/chat/completions"})
            app.openapi_schema = document_rules(schema, settings.max_question_chars, settings.max_body_bytes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    api_methods.update(_route_methods(app))

    gradio_js = Path(gr.__file__).parent / "templates" / "frontend" / "gradio.js"

    @app.get("/gradio.js", include_in_schema=False)
    def web_component() -> FileResponse:
        # the <gradio-app> loader; it imports ./assets/index-*.js, which Gradio serves below
        return FileResponse(gradio_js, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    blocks = build_chat(service)
    extra: dict[str, Any] = {}
    if settings.auth == "api-key":
        extra["auth"] = lambda _user, key: service.auth.key_ok(key)
        extra["auth_message"] = ("API key: any user name, the key as password / "
                                 "API 키: 사용자 이름은 자유, 비밀번호 칸에 키")
    elif settings.auth == "trusted-header":
        def page_user(request: Request) -> str | None:
            # runs inside Gradio's sub-app, so it uses this service directly, not request.app.state
            try:
                peer = request.client.host if request.client else ""
                return service.auth.identify(request.headers, peer).name
            except AuthError:
                return None
        extra["auth_dependency"] = page_user
    gr.mount_gradio_app(app, blocks, path="/", root_path=root or None, footer_links=[], ssr_mode=False,
                        pwa=False, mcp_server=False, show_error=False, theme=theme(), css=CSS,
                        run_history=False, **extra)
    return app


class _MethodGate:
    """405 naming the allowed methods (``Allow``) for any method an API path does not serve, TRACE
    and QUERY included; without it the Gradio mount at ``/`` would answer 404. Inside CORS, so a
    preflight ``OPTIONS`` is answered there first."""

    def __init__(self, app: ASGIApp, methods: dict[str, set[str]]) -> None:
        self.app, self.methods = app, methods  # path -> methods; filled once every route is defined

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root, path = scope.get("root_path", ""), scope.get("path", "")
        path = path[len(root):] if root and path.startswith(root) else path
        allowed = self.methods.get(path) if scope["type"] == "http" else None
        if not allowed or scope["method"] in allowed:
            await self.app(scope, receive, send)
            return
        allow = ", ".join(sorted(allowed))
        err = ApiError(405, f"method not allowed; use {allow} / 허용되지 않는 메서드입니다", headers={"Allow": allow})
        await _error_response(err)(scope, receive, send)


def _route_methods(app: FastAPI) -> dict[str, set[str]]:
    """Every JSON route's path and methods: the documented operations and the undocumented ones
    (``HEAD /healthz``, the offline docs)."""
    table: dict[str, set[str]] = {}
    for path, ops in app.openapi().get("paths", {}).items():
        table.setdefault(path, set()).update(m.upper() for m in ops)
    for r in app.routes:
        if isinstance(r, APIRoute):
            table.setdefault(r.path, set()).update(r.methods or ())
    return table


# ----------------------------------------------------------------- serve
def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def check_serve(settings: Settings, insecure: bool = False) -> None:
    """Refuse set-ups that would expose the bot or cannot work, before loading anything."""
    from rag.serve.auth import Authenticator

    Authenticator(settings)  # validates the mode, keys and proxy list
    allowed_origins(settings)
    if settings.auth == "none" and not is_loopback(settings.host) and not insecure:
        raise RagError(f"refusing to listen on {settings.host} without auth: anyone on the network could "
                       "use it. Set RAG_AUTH=api-key (with RAG_API_KEYS) or trusted-header, "
                       "or pass --insecure")
    if settings.root_path and not settings.root_path.startswith("/"):
        raise RagError(f"--root-path {settings.root_path!r} must start with '/', e.g. /chat")
    if not _port_free(settings.host, settings.port):
        raise RagError(f"port {settings.port} on {settings.host} is in use: "
                       "stop the other server or pass --port")


def serve(settings: Settings, insecure: bool = False, open_browser: bool = False) -> None:
    """Run the server until Ctrl-C; print the page's URL once it answers."""
    import uvicorn

    t0 = time.perf_counter()
    check_serve(settings, insecure)
    print(f"rag: loading the index from {settings.index_dir} …", file=sys.stderr, flush=True)
    try:
        app = create_app(settings)
    except KeyboardInterrupt:
        print("rag: stopped before the server started / 서버를 시작하기 전에 멈췄습니다", file=sys.stderr, flush=True)
        return
    service: Service = app.state.service
    if service.problem():
        print(f"rag: WARNING {service.problem()}", file=sys.stderr, flush=True)
    host = settings.host if settings.host not in ("0.0.0.0", "::") else "127.0.0.1"
    url = f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}/"
    # proxy_headers off: the TCP peer must stay the peer, or X-Forwarded-For could fake a trusted address
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                            proxy_headers=False, timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            where = f" (public path {settings.root_path})" if settings.root_path else ""
            print(f"rag: chat page ready at {url}{where} in {time.perf_counter() - t0:.1f} s; "
                  f"API docs at {url}docs; Ctrl-C stops", flush=True)
            if open_browser:
                import webbrowser

                webbrowser.open(url)

    threading.Thread(target=announce, daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled, after shutdown
        server.run()
    print("rag: server stopped / 서버를 멈췄습니다", file=sys.stderr, flush=True)
