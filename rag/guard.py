"""HTTP policy around the app: embedding origins, body limits, framing headers, sub-path links.

``GuardMiddleware`` gives every response ``Content-Security-Policy:
frame-ancestors`` ('self' plus ``RAG_ALLOWED_ORIGINS``), refuses state-changing
requests whose ``Origin`` is neither this server nor an allowed origin (so a
foreign page cannot make a visitor's browser use the bot, CORS or not), caps
every request body at ``max_body_bytes`` whether or not it declares its length,
and applies ``--root-path``. ``PageLinksMiddleware`` makes the two root-absolute
links of Gradio's page template relative. CORS itself is Starlette's
``CORSMiddleware``, configured in ``server``; auth is in ``auth``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.config import Settings
from rag.errors import RagError
from rag.service import ApiError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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

    def __init__(self, app: ASGIApp, origins: list[str], max_body: int, root_path: str = "") -> None:
        self.app = app
        self.root_path = root_path
        self.origins = set(origins)
        self.max_body = max_body
        ancestors = " ".join(["'self'", *origins]) if "*" not in self.origins else "*"
        self.headers = [
            (b"content-security-policy", f"frame-ancestors {ancestors}; object-src 'none'".encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
        ]
        if not origins:
            self.headers.append((b"x-frame-options", b"SAMEORIGIN"))

    def origin_ok(self, origin: str, headers: Headers) -> bool:
        if "*" in self.origins or origin in self.origins:
            return True
        netloc = urlsplit(origin).netloc
        hosts = {headers.get("host", ""), *headers.get("x-forwarded-host", "").split(",")}
        return bool(netloc) and netloc in {h.strip() for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.root_path and not scope.get("root_path"):
            # the public sub-path (e.g. /chat) whichever server runs the app; requests may arrive with
            # the prefix stripped by the proxy or not, Starlette routes both
            scope["root_path"] = self.root_path
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if scope["method"] not in SAFE_METHODS and origin and not self.origin_ok(origin, headers):
            await self._reject(send, 403, f"requests from {origin} are not allowed; "
                               "add it to RAG_ALLOWED_ORIGINS")
            return
        if scope["method"] not in SAFE_METHODS:  # every body: API, Gradio's queue, its upload route
            body = await self._read_body(receive, headers)
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

    async def _reject(self, send: Send, status: int, message: str) -> None:
        body = json.dumps(ApiError(status, message).body(), ensure_ascii=False).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers + self.headers})
        await send({"type": "http.response.body", "body": body})


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
