"""HTTP policy around the app: embedding origins, body limits, framing headers, sub-path links.

``GuardMiddleware`` gives every response ``Content-Security-Policy:
frame-ancestors`` ('self' plus ``RAG_ALLOWED_ORIGINS``), refuses state-changing
requests whose ``Origin`` is neither this server nor an allowed origin (so a
foreign page cannot make a visitor's browser use the bot, CORS or not), caps
every request body at ``max_body_bytes`` whether or not it declares its length,
answers only to the host names of ``RAG_ALLOWED_HOSTS`` (DNS rebinding), times
out bodies sent too slowly, keeps Gradio's unused upload route closed and its
login form rate-limited, and applies ``--root-path``. ``ErrorShapeMiddleware``
turns every error (Gradio's ``{"detail"}`` 404s, uncaught exceptions) into the
documented ``{"error": {...}}`` JSON. ``PageLinksMiddleware`` makes the two root-absolute
links of Gradio's page template relative. CORS itself is Starlette's
``CORSMiddleware``, configured in ``server``; auth is in ``auth``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.config import Settings
from rag.errors import RagError
from rag.serve.apibody import INTERNAL
from rag.serve.auth import is_loopback
from rag.serve.service import ApiError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Starlette's TestClient sends this; a one-label name that no public DNS serves, so no rebinding
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "testserver")
log = logging.getLogger("rag.serve.server")


def allowed_hosts(settings: Settings) -> frozenset[str] | None:
    """Host names the server answers to (lower case, no port); None = any."""
    listed = {h.strip().lower().strip("[]") for h in settings.allowed_hosts.split(",") if h.strip()}
    if "*" in listed:
        return None
    if not listed and not is_loopback(settings.host):
        return None
    return frozenset(listed | set(LOOPBACK_NAMES) | {settings.host.lower().strip("[]")})


def host_name(value: str) -> str:
    """``"Example.com:7860"`` -> ``"example.com"``, ``"[::1]:7860"`` -> ``"::1"``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def allowed_origins(settings: Settings) -> list[str]:
    """``RAG_ALLOWED_ORIGINS`` as a list of ``scheme://host[:port]`` (or ``["*"]``)."""
    out = []
    for o in (p.strip().rstrip("/") for p in settings.allowed_origins.split(",")):
        if not o:
            continue
        if o != "*" and (urlsplit(o).scheme not in ("http", "https") or not urlsplit(o).netloc):
            raise RagError(f"RAG_ALLOWED_ORIGINS: {o!r} is not an origin like https://portal.example.com")
        out.append(o)
    return out


class GuardMiddleware:
    """Root path, origin check for state-changing requests, body size limit, framing headers."""

    def __init__(self, app: ASGIApp, origins: list[str], max_body: int, root_path: str = "",
                 hosts: frozenset[str] | None = None, body_timeout: float = 10.0,
                 login_limit: Callable[[str], float] | None = None) -> None:
        self.app = app
        self.root_path = root_path
        self.origins = set(origins)
        self.max_body = max_body
        self.hosts = hosts
        self.body_timeout = body_timeout
        self.login_limit = login_limit
        ancestors = " ".join(["'self'", *origins]) if "*" not in self.origins else "*"
        self.headers = [
            (b"content-security-policy", f"frame-ancestors {ancestors}; object-src 'none'".encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
        ]
        if not origins:
            self.headers.append((b"x-frame-options", b"SAMEORIGIN"))

    def host_ok(self, value: str) -> bool:
        return self.hosts is None or host_name(value) in self.hosts

    def origin_ok(self, origin: str, headers: Headers) -> bool:
        if "*" in self.origins or origin in self.origins:
            return True
        netloc = urlsplit(origin).netloc
        # same origin: the page's own host, which must itself be one this server answers to
        hosts = [headers.get("host", ""), *headers.get("x-forwarded-host", "").split(",")]
        return bool(netloc) and any(h.strip() == netloc and self.host_ok(h) for h in hosts if h.strip())

    def _path(self, scope: Scope) -> str:
        root, path = scope.get("root_path", ""), scope.get("path", "")
        return path[len(root):] if root and path.startswith(root) else path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.root_path and not scope.get("root_path"):
            # the public sub-path (e.g. /chat) whichever server runs the app; requests may arrive with
            # the prefix stripped by the proxy or not, Starlette routes both
            scope["root_path"] = self.root_path
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self.host_ok(host) or not all(self.host_ok(h) for h in headers.get("x-forwarded-host", "").split(",")
                                             if h.strip()):
            await self._reject(send, 400, f"this server does not answer to host {host_name(host)!r}; "
                               "add it to RAG_ALLOWED_HOSTS / 허용되지 않은 호스트입니다")
            return
        origin = headers.get("origin")
        if scope["method"] not in SAFE_METHODS and origin and not self.origin_ok(origin, headers):
            await self._reject(send, 403, f"requests from {origin} are not allowed; "
                               "add it to RAG_ALLOWED_ORIGINS")
            return
        path = self._path(scope)
        if scope["method"] not in SAFE_METHODS and path.rstrip("/").endswith("/upload"):
            # the chat page has no file input; Gradio's upload route would store files and return server paths
            await self._reject(send, 404, "file upload is not available / 파일 업로드는 지원하지 않습니다")
            return
        if scope["method"] == "POST" and path.rstrip("/") == "/login" and self.login_limit is not None:
            client = scope.get("client")
            wait = self.login_limit("login:" + (client[0] if client else ""))
            if wait:
                from rag.serve.auth import rate_limit_message

                await self._reject(send, 429, rate_limit_message(wait), [(b"retry-after", str(int(wait) + 1).encode())])
                return
        if scope["method"] not in SAFE_METHODS:  # every body: API, Gradio's queue, its upload route
            try:
                body = await asyncio.wait_for(self._read_body(receive, headers), self.body_timeout)
            except TimeoutError:
                await self._reject(send, 408, f"the request body did not arrive within {self.body_timeout:g} s / "
                                   "요청 본문이 제때 도착하지 않았습니다", [(b"connection", b"close")])
                return
            if body is None:
                await self._reject(send, 413, f"request body is larger than {self.max_body} bytes / "
                                   f"요청이 너무 큽니다 (최대 {self.max_body}바이트)")
                return
            receive = self._replay(body, receive)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in self.headers if k not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _read_body(self, receive: Receive, headers: Headers) -> bytes | None:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            return None
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                break
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    def _replay(body: bytes, receive: Receive) -> Receive:
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _reject(self, send: Send, status: int, message: str,
                      extra: list[tuple[bytes, bytes]] | None = None) -> None:
        body = json.dumps(ApiError(status, message).body(), ensure_ascii=False).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status,
                    "headers": headers + (extra or []) + self.headers})
        await send({"type": "http.response.body", "body": body})


class ErrorShapeMiddleware:
    """Every error is ``{"error": {"message", "type", "code"}}`` JSON.

    Rewrites the ``{"detail": ...}`` bodies of routes that are not ours (Gradio's 404s, Starlette's
    405s) and turns an uncaught exception into a 500 that names no internal detail (it is logged).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        held: list[bytes] = []
        started = False
        root, path = scope.get("root_path", ""), scope.get("path", "")
        path = path[len(root):] if root and path.startswith(root) else path

        async def shape(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                ctype = dict(message.get("headers", [])).get(b"content-type", b"")
                if message["status"] >= 400 and ctype.startswith(b"application/json"):
                    start.update(message)  # hold it: the body may need rewriting
                    return
                started = True
                await send(message)
                return
            if not start or message["type"] != "http.response.body":
                await send(message)
                return
            held.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            status = start["status"]
            body = b"".join(held)
            if status in (404, 405) or path.startswith(("/api/", "/v1/")):
                body = _shaped(body, status)  # Gradio's own errors (e.g. its login form's) keep their shape
            hdrs = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            started = True
            await send({**start, "headers": [*hdrs, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        try:
            await self.app(scope, receive, shape)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            body = json.dumps(ApiError(500, INTERNAL, "server_error").body(), ensure_ascii=False).encode()
            await send({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


def _shaped(body: bytes, status: int) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict) or "error" in data or set(data) != {"detail"}:
        return body
    detail = data["detail"]
    message = detail if isinstance(detail, str) else "invalid request"
    if status == 404:
        message = "not found / 찾을 수 없습니다" if message == "Not Found" else message
    kind = "invalid_request_error" if status < 500 else "server_error"
    return json.dumps(ApiError(status, message, kind).body(), ensure_ascii=False).encode()


class PageLinksMiddleware:
    """Makes the chat page's two root-absolute links relative, so a --root-path proxy serves them too.

    Gradio's page template links ``/manifest.json`` and has no icon link (browsers then ask for
    ``/favicon.ico``); under ``/chat/`` both would miss the proxy. Only ``GET /`` is touched; it is
    asked for uncompressed so that it can be edited.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root, path = scope.get("root_path", ""), scope.get("path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if scope["type"] != "http" or scope["method"] != "GET" or path not in ("", "/"):
            await self.app(scope, receive, send)
            return
        scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]}
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            hdrs = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            if any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in hdrs):
                body = body.replace(b'href="/manifest.json"', b'href="./manifest.json"', 1)
                body = body.replace(b"<head>", b'<head>\n<link rel="icon" href="./favicon.ico">', 1)
            await send({**start, "headers": [*hdrs, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)
