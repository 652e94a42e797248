"""A tiny OpenAI-compatible chat server for tests, run in a thread on 127.0.0.1.

It answers ``POST /v1/chat/completions`` streaming (server-sent events) or not,
as the request asks, with ``reply``; it can be made slow (``delay``), failing
(``status``), or to send a body that is not a completion (``raw``). Every request
it receives is recorded (``requests``) so tests can inspect the prompt.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLLM:
    def __init__(self) -> None:
        self.reply = "OK."
        self.status = 200
        self.delay = 0.0  # seconds before the reply starts
        self.raw: str | None = None  # sent verbatim instead of a completion
        self.fail_times = 0  # answer the first N requests with ``status``, then succeed
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]

    def start(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                # the client may give up first (a timeout test): nothing to report then
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._answer()

            def _answer(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n).decode("utf-8"))
                fake.requests.append(body)
                fake.headers.append(dict(self.headers.items()))
                if fake.delay:
                    time.sleep(fake.delay)
                n_req = len(fake.requests)
                failing = fake.status != 200 and (not fake.fail_times or n_req <= fake.fail_times)
                if failing:
                    self._send(fake.status, "application/json", json.dumps({"error": {"message": "boom"}}))
                elif fake.raw is not None:
                    self._send(200, "application/json", fake.raw)
                elif body.get("stream"):
                    self._stream(fake.reply)
                else:
                    msg = {"role": "assistant", "content": fake.reply}
                    done = {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": msg}]}
                    self._send(200, "application/json", json.dumps(done, ensure_ascii=False))

            def _send(self, status: int, ctype: str, text: str) -> None:
                data = text.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, text: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
                for p in pieces:
                    delta = {"index": 0, "delta": {"content": p}}
                    chunk = {"object": "chat.completion.chunk", "choices": [delta]}
                    self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@contextmanager
def fake_llm() -> Iterator[FakeLLM]:
    server = FakeLLM().start()
    try:
        yield server
    finally:
        server.stop()
