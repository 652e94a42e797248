"""The HTTP API under bad input (issues 16.9 and 17): every error is the documented JSON shape
with the security headers, never a 500 or an internal message; fair rate-limit keys; host
allow-list; slow bodies; live reload of a rebuilt index."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings

pytest.importorskip("fastapi")
pytest.importorskip("gradio")

from fastapi.testclient import TestClient

from rag.serve.auth import Authenticator, client_key
from rag.serve.server import create_app

KO_Q = "KT 컨소시엄에 참여한 공공기관은?"
LONE = "KT \ud800"  # a lone surrogate, as JSON "\ud800" sends it
SECURITY = ("content-security-policy", "x-content-type-options", "referrer-policy")


@pytest.fixture(scope="module")
def base(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return replace(settings, data_dir=str(tmp_path_factory.mktemp("edge-data")), rate_limit=0)


@pytest.fixture(scope="module")
def client(base: Settings, seed_retriever: Any) -> TestClient:
    return TestClient(create_app(base, seed_retriever), raise_server_exceptions=False)


def _post(client: TestClient, path: str, body: dict[str, Any]) -> Any:
    # json.dumps keeps a lone surrogate as the escape "\ud800", exactly what a hostile client sends
    return client.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


def _error(resp: Any, status: int) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == status and body["error"]["message"], body
    for h in SECURITY:
        assert h in resp.headers, (h, dict(resp.headers))
    return str(body["error"]["message"])


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/search", {"question": LONE}, "question"),
    ("/api/ask", {"question": LONE}, "question"),
    ("/api/ask", {"question": LONE, "stream": True}, "question"),
    ("/api/ask", {"question": "q", "history": [{"role": "user", "content": LONE}]}, "history.0.content"),
    ("/api/ask", {"question": "q", "outlet": LONE}, "outlet"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": LONE}]}, "messages.0.content"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": LONE}], "stream": True},
     "messages.0.content"),
    ("/api/feedback", {"rating": "up", "question": "q", "answer": LONE}, "answer"),
])
def test_invalid_unicode_is_400_naming_the_field(client: TestClient, path: str, body: dict[str, Any],
                                                 field: str) -> None:
    msg = _error(_post(client, path, body), 400)
    assert msg.startswith(field + ":") and "Unicode" in msg


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/search", {"question": "q", "k": "3"}, "k"),
    ("/api/search", {"question": "q", "k": True}, "k"),
    ("/api/search", {"question": "q", "k": 2.5}, "k"),
    ("/api/ask", {"question": "q", "stream": "yes"}, "stream"),
    ("/api/ask", {"question": "q", "stream": 1}, "stream"),
    ("/api/ask", {"question": ["q"]}, "question"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}], "stream": "true"}, "stream"),
])
def test_types_are_strict(client: TestClient, path: str, body: dict[str, Any], field: str) -> None:
    assert _error(_post(client, path, body), 400).startswith(field + ":")


def test_404_405_and_head_in_the_documented_shape(client: TestClient) -> None:
    r = client.get("/api/ask")
    assert "POST" in _error(r, 405) and r.headers["allow"] == "POST"
    _error(client.put("/api/search", json={}), 405)
    _error(client.post("/healthz"), 405)
    _error(client.get("/api/nope"), 404)
    _error(client.get("/v1/nope"), 404)
    _error(client.get("/no/such/page"), 404)
    head = client.head("/healthz")
    assert head.status_code == 200 and not head.content


def test_one_id_convention(client: TestClient) -> None:
    for path in ("/api/search", "/api/ask"):
        assert client.post(path, json={"question": KO_Q}).json()["id"] is None
        assert client.post(path, json={"question": KO_Q, "id": "q7"}).json()["id"] == "q7"
        assert client.post(path, json={"question": KO_Q, "id": 7}).json()["id"] == 7
    events = client.post("/api/ask", json={"question": KO_Q, "stream": True, "id": "s1"}).text
    answer = [json.loads(ln[6:]) for ln in events.splitlines() if ln.startswith("data: ") and '"answer"' in ln]
    assert answer and answer[-1]["answer"]["id"] == "s1"


def test_openapi_documents_what_is_sent(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    ops = schema["paths"]["/api/ask"]["post"]["responses"]
    assert "422" not in ops and {"400", "401", "403", "405", "408", "413", "429", "503"} <= set(ops)
    assert "text/event-stream" in ops["200"]["content"]
    assert "Error" in schema["components"]["schemas"]


def test_uncaught_exception_is_json_500_without_internals() -> None:
    from fastapi import FastAPI

    from rag.serve.guard import ErrorShapeMiddleware, GuardMiddleware

    app = FastAPI()  # wired as create_app wires it

    @app.get("/x")
    def boom() -> None:
        raise RuntimeError("secret internal detail /srv/index")

    app.add_middleware(ErrorShapeMiddleware)
    app.add_middleware(GuardMiddleware, origins=[], max_body=100)
    r = TestClient(app, raise_server_exceptions=False).get("/x")
    msg = _error(r, 500)
    assert "secret" not in msg and "/srv" not in msg


def test_healthz_names_no_paths(base: Settings, tmp_path: Path) -> None:
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "manifest.json").write_text("{broken")
    c = TestClient(create_app(replace(base, index_dir=str(tmp_path / "index"))))
    for r in (c.get("/healthz"), c.head("/healthz")):
        assert r.status_code == 503
    text = c.get("/healthz").text
    assert str(tmp_path) not in text and "manifest" not in text and "rag index" in text


def test_host_allow_list_stops_dns_rebinding(client: TestClient, base: Settings, seed_retriever: Any) -> None:
    # a rebinding page: its own name in Host and a matching Origin (passed the origin check before)
    evil = {"Host": "evil.example:7860", "Origin": "http://evil.example:7860"}
    assert "RAG_ALLOWED_HOSTS" in _error(client.post("/api/ask", json={"question": KO_Q}, headers=evil), 400)
    _error(client.get("/api/info", headers={"Host": "evil.example"}), 400)
    _error(client.get("/", headers={"Host": "127.0.0.1:7860", "X-Forwarded-Host": "evil.example"}), 400)
    assert client.get("/healthz", headers={"Host": "127.0.0.1:7860"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "[::1]:7860"}).status_code == 200
    named = TestClient(create_app(replace(base, allowed_hosts="chat.example.com"), seed_retriever))
    ok = named.post("/api/search", json={"question": KO_Q},
                    headers={"Host": "chat.example.com", "Origin": "https://chat.example.com"})
    assert ok.status_code == 200


def test_rate_limit_keys() -> None:
    none = Authenticator(Settings(trusted_proxies="127.0.0.1, 10.0.0.0/8"))
    xff = {"x-forwarded-for": "203.0.113.9, 10.0.0.5"}
    # behind nginx every request comes from 127.0.0.1: the client is the forwarded address
    assert none.identify(xff, "127.0.0.1").id == "ip:203.0.113.9"
    assert none.identify({"x-forwarded-for": "198.51.100.1"}, "127.0.0.1").id == "ip:198.51.100.1"
    # a caller that is not a trusted proxy cannot choose its bucket
    assert none.identify(xff, "192.0.2.7").id == "ip:192.0.2.7"
    assert none.identify({"x-forwarded-for": "not-an-ip"}, "127.0.0.1").id == "ip:loopback"
    # another loopback address or another address in one IPv6 /64 is no fresh bucket
    assert none.identify({}, "127.0.0.5").id == none.identify({}, "127.0.0.1").id
    assert client_key("2001:db8::1") == client_key("2001:db8::2") != client_key("2001:db9::1")
    header = Authenticator(Settings(auth="trusted-header", trusted_proxies="127.0.0.1"))
    assert header.identify({"x-forwarded-user": "kim", **xff}, "127.0.0.1").id == "user:kim"


def test_rate_limit_behind_a_proxy_is_per_client(base: Settings, seed_retriever: Any) -> None:
    c = TestClient(create_app(replace(base, rate_limit=2), seed_retriever), client=("127.0.0.1", 5000))
    a, b = {"X-Forwarded-For": "203.0.113.1"}, {"X-Forwarded-For": "203.0.113.2"}
    for _ in range(2):
        assert c.post("/api/search", json={"question": KO_Q}, headers=a).status_code == 200
    _error(c.post("/api/search", json={"question": KO_Q}, headers=a), 429)
    assert c.post("/api/search", json={"question": KO_Q}, headers=b).status_code == 200


def test_login_form_is_rate_limited(base: Settings, seed_retriever: Any) -> None:
    s = replace(base, auth="api-key", api_keys="test-key-0123456789abcdef", rate_limit=3)
    c = TestClient(create_app(s, seed_retriever))
    codes = [c.post("/login", data={"username": "x", "password": f"wrong-{i}"}).status_code for i in range(5)]
    assert 429 not in codes[:3] and codes[3:] == [429, 429]


def _serve(app: Any) -> tuple[Any, int]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, port


def test_a_half_sent_body_is_timed_out(base: Settings, seed_retriever: Any) -> None:
    server, port = _serve(create_app(replace(base, body_timeout=0.5), seed_retriever))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"question\":")
            reply = b""  # the rest of the body never comes; the server answers and closes
            while b'"code": 408' not in reply and (part := sock.recv(4096)):
                reply += part
        assert reply.startswith(b"HTTP/1.1 408") and b'"code": 408' in reply
    finally:
        server.should_exit = True


def test_chat_page_rate_key_is_the_client_behind_the_proxy(base: Settings, seed_retriever: Any) -> None:
    from types import SimpleNamespace

    from rag.serve.chat_ui import _user_id
    from rag.serve.service import Service

    service = Service(base, seed_retriever)

    def page_request(forwarded: str, peer: str = "127.0.0.1") -> Any:
        return SimpleNamespace(username=None, client=SimpleNamespace(host=peer), headers={"X-Forwarded-For": forwarded})

    # behind the (loopback) proxy every page user had the proxy's one bucket; now each client has its own
    assert _user_id(page_request("203.0.113.1"), service) == "ip:203.0.113.1"
    assert _user_id(page_request("203.0.113.2"), service) == "ip:203.0.113.2"
    # a peer that is no trusted proxy cannot choose its key by sending the header
    assert _user_id(page_request("203.0.113.1", peer="198.51.100.7"), service) == "ip:198.51.100.7"
