"""HTTP API of ``rag.serve.server``: shapes of DESIGN.md, error statuses, auth, limits, embedding policy.

One app per set of settings, all sharing the session's seed retriever; requests
go through Starlette's TestClient (no sockets), and the OpenAI endpoint is
driven by the official ``openai`` client over that same client.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings

pytest.importorskip("fastapi")
pytest.importorskip("gradio")

from fastapi.testclient import TestClient

from rag.errors import RagError
from rag.serve.auth import Authenticator, RateLimiter, is_loopback, load_keys
from rag.serve.server import check_serve, create_app

ROOT = Path(__file__).resolve().parent.parent
KEY = "test-key-0123456789abcdef"
KO_Q = "KT 컨소시엄에 참여한 공공기관은?"
EN_Q = "Which police agency joined KT's consortium?"
NO_Q = "What is the stock price of Naver today?"


@pytest.fixture(scope="module")
def base(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("server-data")
    return replace(settings, data_dir=str(data), rate_limit=0)


@pytest.fixture(scope="module")
def client(base: Settings, seed_retriever: Any) -> TestClient:
    return TestClient(create_app(base, seed_retriever))


@pytest.fixture(scope="module")
def seed_text() -> dict[str, str]:
    from rag.ingest.corpus import load_corpus

    return {d.doc_id: d.text for d in load_corpus([ROOT / "corpus"]).documents}


def _error(resp: Any, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return str(body["error"]["message"])


# ----------------------------------------------------------------- shapes
def test_healthz_and_info(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["ready"] is True
    info = client.get("/api/info").json()
    assert info["ready"] is True and info["auth"] == "none"
    assert info["index"]["documents"] >= 1 and info["index"]["passages"] >= 1
    assert info["index"]["embedding_model"]


def test_search_shape(client: TestClient) -> None:
    r = client.post("/api/search", json={"question": KO_Q, "k": 3, "id": "q1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "q1" and len(body["hits"]) == 3
    for i, h in enumerate(body["hits"], 1):
        assert set(h) == {"rank", "score", "doc_id", "chunk_id", "title", "text", "start", "end"}
        assert h["rank"] == i and h["end"] - h["start"] == len(h["text"])
    assert any("경찰청" in h["text"] for h in body["hits"])


def test_ask_shape_and_exact_quotes(client: TestClient, seed_text: dict[str, str]) -> None:
    r = client.post("/api/ask", json={"question": KO_Q})
    assert r.status_code == 200, r.text
    a = r.json()
    for key in ("id", "question", "lang", "answer", "abstained", "citations"):
        assert key in a
    assert a["lang"] == "ko" and a["abstained"] is False and a["citations"]
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", a["answer"])}
    assert markers and markers <= {c["n"] for c in a["citations"]}
    for c in a["citations"]:
        assert {"n", "doc_id", "chunk_id", "title", "url", "quote", "start", "end"} <= set(c)
        assert seed_text[c["doc_id"]][c["start"]:c["end"]] == c["quote"]


def test_ask_abstains(client: TestClient) -> None:
    a = client.post("/api/ask", json={"question": NO_Q}).json()
    assert a["abstained"] is True and a["citations"] == [] and a["lang"] == "en"


def test_ask_follow_up_history(client: TestClient) -> None:
    history = [{"role": "user", "content": KO_Q}, {"role": "assistant", "content": "경찰청입니다. [1]"}]
    r = client.post("/api/ask", json={"question": "그럼 카카오는?", "history": history})
    assert r.status_code == 200 and r.json()["question"] == "그럼 카카오는?"


def test_search_and_ask_filter_by_outlet_and_date(client: TestClient) -> None:
    # the seed article is from 바이라인네트워크 and states no date (so a date filter excludes it)
    def hits(**filters: str) -> int:
        r = client.post("/api/search", json={"question": KO_Q, "k": 3, **filters})
        assert r.status_code == 200, r.text
        return len(r.json()["hits"])

    assert hits(outlet="바이라인네트워크") == 3 and hits(outlet=" 바이라인네트워크 ") == 3
    assert hits(outlet="Other Daily") == 0 and hits(**{"from": "2025-01-01"}) == 0
    assert hits(**{"from": "", "to": ""}) == 3  # empty bounds mean no filter
    a = client.post("/api/ask", json={"question": KO_Q, "outlet": "Other Daily"}).json()
    assert a["abstained"] is True and a["citations"] == []
    a = client.post("/api/ask", json={"question": KO_Q, "outlet": "바이라인네트워크"}).json()
    assert a["abstained"] is False and "경찰청" in a["answer"]
    with client.stream("POST", "/api/ask", json={"question": KO_Q, "stream": True, "to": "2030-01-01"}) as r:
        final = dict(_sse(r.read().decode()))["answer"]["answer"]
    assert final["abstained"] is True
    assert "from: 'last week' is not a date; write YYYY-MM-DD" in _error(
        client.post("/api/search", json={"question": KO_Q, "from": "last week"}), 400)
    assert _error(client.post("/api/ask", json={"question": KO_Q, "to": "2025-02-30"}), 400).startswith("to:")
    assert "swap" in _error(client.post("/api/search", json={"question": KO_Q, "from": "2025-09-01",
                                                             "to": "2025-08-01"}), 400)


def _sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_ask_streams_server_sent_events(client: TestClient) -> None:
    with client.stream("POST", "/api/ask", json={"question": EN_Q, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = _sse(r.read().decode())
    kinds = [k for k, _ in events]
    assert kinds[0] == "delta" and kinds[-2:] == ["answer", "done"] and "error" not in kinds
    final = events[-2][1]["answer"]
    streamed = "".join(d["text"] for k, d in events if k == "delta")
    assert streamed == final["answer"] and final["citations"]


def test_docs_and_openapi(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/healthz", "/api/info", "/api/search", "/api/ask", "/v1/chat/completions"} <= set(paths)


def test_chat_page_and_local_web_component(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<gradio-app" in page.text
    assert "cdn" not in page.text.lower().replace("cdnjs", "")
    js = client.get("/gradio.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    target = re.search(r'import\("\./(assets/[^"]+)"\)', js.text)
    assert target, js.text[:200]
    assert client.get("/" + target.group(1)).status_code == 200


def test_feedback_is_stored(client: TestClient, base: Settings) -> None:
    body = {"rating": "down", "question": KO_Q, "answer": "경찰청 [1]",
            "citations": [{"n": 1, "doc_id": "d", "quote": "경찰청"}], "comment": "틀림"}
    assert client.post("/api/feedback", json=body).json()["ok"] is True
    rec = json.loads((Path(base.data_dir) / "feedback.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert rec["format"] == "rag-feedback/1" and rec["rating"] == "down" and rec["question"] == KO_Q
    assert rec["citations"][0]["quote"] == "경찰청" and rec["answer"] == "경찰청 [1]"
    _error(client.post("/api/feedback", json={**body, "rating": "meh"}), 400)


# ----------------------------------------------------------------- OpenAI client
def _openai(client: TestClient, key: str = "unused") -> Any:
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key=key, http_client=client,
                         max_retries=0)


def test_openai_client_non_streaming(client: TestClient, seed_text: dict[str, str]) -> None:
    oc = _openai(client)
    resp = oc.chat.completions.create(model="rag", messages=[
        {"role": "system", "content": "ignored"}, {"role": "user", "content": KO_Q}])
    text = resp.choices[0].message.content
    cites = (resp.model_extra or {})["citations"]
    assert text and "[1]" in text and cites and resp.choices[0].finish_reason == "stop"
    assert all(seed_text[c["doc_id"]][c["start"]:c["end"]] == c["quote"] for c in cites)
    assert [m.id for m in oc.models.list().data] == ["rag"]


def test_openai_client_streaming(client: TestClient) -> None:
    oc = _openai(client)
    stream = oc.chat.completions.create(model="rag", stream=True, messages=[
        {"role": "user", "content": KO_Q}, {"role": "assistant", "content": "경찰청 [1]"},
        {"role": "user", "content": EN_Q}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    assert text and last.choices[0].finish_reason == "stop"
    assert (last.model_extra or {})["citations"], "citations travel in the last chunk"


def test_openai_errors(client: TestClient) -> None:
    openai = pytest.importorskip("openai")
    oc = _openai(client)
    with pytest.raises(openai.BadRequestError):
        oc.chat.completions.create(model="rag", messages=[{"role": "system", "content": "only system"}])
    _error(client.post("/v1/chat/completions", json={"messages": []}), 400)


# ----------------------------------------------------------------- 400 / 413
@pytest.mark.parametrize("body", [
    {}, {"question": ""}, {"question": "   "}, {"question": 3}, {"question": "q", "k": 0},
    {"question": "q", "k": 500}, {"question": "q", "history": [{"role": "system", "content": "x"}]},
])
def test_bad_requests_are_400(client: TestClient, body: dict[str, Any]) -> None:
    path = "/api/search" if "k" in body else "/api/ask"
    _error(client.post(path, json=body), 400)


def test_not_json_is_400(client: TestClient) -> None:
    assert "JSON" in _error(client.post("/api/ask", content=b"{not json", headers={
        "content-type": "application/json"}), 400)
    _error(client.post("/api/ask", content=b"question=x", headers={"content-type": "text/plain"}), 400)


def test_question_too_long_is_400(client: TestClient, base: Settings) -> None:
    msg = _error(client.post("/api/ask", json={"question": "가" * (base.max_question_chars + 1)}), 400)
    assert str(base.max_question_chars) in msg


def test_body_too_large_is_413(client: TestClient, base: Settings) -> None:
    big = {"question": "q", "pad": "x" * (base.max_body_bytes + 10)}
    _error(client.post("/api/ask", json=big), 413)

    def chunks() -> Any:  # no Content-Length: the limit is counted, not trusted
        for _ in range(base.max_body_bytes // 1000 + 2):
            yield b" " * 1000

    json_type = {"content-type": "application/json"}
    _error(client.post("/v1/chat/completions", content=chunks(), headers=json_type), 413)
    # Gradio's own routes too (its queue would otherwise take bodies of any size)
    _error(client.post("/gradio_api/queue/join", content=chunks(), headers=json_type), 413)
    # its upload route is closed: the page has no file input, and it answered with server paths
    files = {"files": ("big.txt", b"x" * (base.max_body_bytes + 10), "text/plain")}
    assert "upload" in _error(client.post("/gradio_api/upload", files=files), 404)
    small = client.post("/gradio_api/upload", files={"files": ("a.txt", b"x", "text/plain")})
    assert "/tmp" not in small.text and "upload" in _error(small, 404)


# ----------------------------------------------------------------- auth, 401 / 429
def test_api_key_mode(base: Settings, seed_retriever: Any, tmp_path: Path) -> None:
    keyfile = tmp_path / "keys.txt"
    keyfile.write_text(f"# portal\n{KEY}\n", encoding="utf-8")
    s = replace(base, auth="api-key", api_keys_file=str(keyfile), llm_api_key="sk-llm-secret-000000000")
    c = TestClient(create_app(s, seed_retriever))
    assert "Bearer" in _error(c.post("/api/search", json={"question": KO_Q}), 401)
    assert c.post("/api/search", json={"question": KO_Q}).headers["www-authenticate"] == "Bearer"
    wrong = {"Authorization": "Bearer wrong-key-000000000"}
    _error(c.post("/api/ask", json={"question": KO_Q}, headers=wrong), 401)
    _error(c.get("/api/info"), 401)
    ok = c.post("/api/search", json={"question": KO_Q}, headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200
    openai = pytest.importorskip("openai")
    with pytest.raises(openai.AuthenticationError):
        _openai(c, "wrong-key-000000000").chat.completions.create(model="rag", messages=[
            {"role": "user", "content": KO_Q}])
    assert _openai(c, KEY).chat.completions.create(model="rag", messages=[
        {"role": "user", "content": KO_Q}]).choices[0].message.content
    # no key or secret in anything served
    served = [c.get(p).text for p in ("/", "/config", "/openapi.json", "/docs", "/gradio.js", "/healthz")]
    served.append(c.get("/api/info", headers={"Authorization": f"Bearer {KEY}"}).text)
    for text in served:
        assert KEY not in text and "sk-llm-secret" not in text


def test_trusted_header_mode(base: Settings, seed_retriever: Any) -> None:
    s = replace(base, auth="trusted-header", trusted_proxies="10.0.0.0/8, 127.0.0.1")
    app = create_app(s, seed_retriever)
    proxy = TestClient(app, client=("10.1.2.3", 5000))
    stranger = TestClient(app, client=("192.168.0.9", 5000))
    hdr = {"X-Forwarded-User": "kim"}
    assert proxy.post("/api/search", json={"question": KO_Q}, headers=hdr).status_code == 200
    _error(proxy.post("/api/search", json={"question": KO_Q}), 401)  # proxy sent no user
    _error(stranger.post("/api/search", json={"question": KO_Q}, headers=hdr), 401)  # header not believed
    assert stranger.get("/", headers=hdr).status_code == 401  # the page too
    assert proxy.get("/", headers=hdr).status_code == 200


def test_rate_limit_is_429_per_user(base: Settings, seed_retriever: Any) -> None:
    s = replace(base, auth="trusted-header", trusted_proxies="127.0.0.1", rate_limit=2)
    c = TestClient(create_app(s, seed_retriever), client=("127.0.0.1", 5000))
    kim, lee = {"X-Forwarded-User": "kim"}, {"X-Forwarded-User": "lee"}
    for _ in range(2):
        assert c.post("/api/search", json={"question": KO_Q}, headers=kim).status_code == 200
    r = c.post("/api/search", json={"question": KO_Q}, headers=kim)
    msg = _error(r, 429)
    assert "요청이 너무 많습니다" in msg and "Too many requests" in msg and int(r.headers["retry-after"]) >= 1
    assert c.post("/api/search", json={"question": KO_Q}, headers=lee).status_code == 200  # per user


def test_auth_unit(tmp_path: Path) -> None:
    s = Settings(auth="api-key", api_keys=f"{KEY}, other-key-0123456789abc")
    a = Authenticator(s)
    assert a.key_ok(KEY) and a.key_ok("other-key-0123456789abc") and not a.key_ok(KEY[:-1])
    assert load_keys(s) == (KEY, "other-key-0123456789abc")
    with pytest.raises(RagError, match="RAG_API_KEYS"):
        Authenticator(Settings(auth="api-key"))
    with pytest.raises(RagError, match="shorter than 16"):
        load_keys(Settings(api_keys="short"))
    with pytest.raises(RagError, match=r"nope\.txt"):
        load_keys(Settings(api_keys_file=str(tmp_path / "nope.txt")))
    with pytest.raises(RagError, match="not an IP"):
        Authenticator(Settings(auth="trusted-header", trusted_proxies="proxy.local"))
    with pytest.raises(RagError, match="RAG_AUTH"):
        Authenticator(Settings(auth="password"))
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    rl = RateLimiter(2, window=0.2)
    assert rl.check("u") == 0 and rl.check("u") == 0 and rl.check("u") > 0 and rl.check("v") == 0


def test_serve_refuses_open_host_without_auth() -> None:
    with pytest.raises(RagError, match="--insecure"):
        check_serve(Settings(host="0.0.0.0", port=0))
    check_serve(Settings(host="0.0.0.0", port=0), insecure=True)
    check_serve(Settings(host="0.0.0.0", port=0, auth="api-key", api_keys=KEY))
    with pytest.raises(RagError, match="RAG_ALLOWED_ORIGINS"):
        check_serve(Settings(port=0, allowed_origins="portal.example.com"))


# ----------------------------------------------------------------- 503, embedding policy, sub-path
def test_missing_index_is_503_and_server_keeps_running(base: Settings, tmp_path: Path) -> None:
    s = replace(base, index_dir=str(tmp_path / "no-index"))
    c = TestClient(create_app(s))
    health = c.get("/healthz")
    assert health.status_code == 503 and "rag index" in health.json()["error"]["message"]
    for path, body in [("/api/ask", {"question": KO_Q}), ("/api/search", {"question": KO_Q}),
                       ("/api/ask", {"question": KO_Q, "stream": True}),
                       ("/v1/chat/completions", {"messages": [{"role": "user", "content": KO_Q}]})]:
        r = c.post(path, json=body)
        assert "rag index" in _error(r, 503) and r.headers["retry-after"]
    assert c.get("/api/info").json()["ready"] is False
    assert c.get("/").status_code == 200


def test_frame_and_cors_policy_default_closed(client: TestClient) -> None:
    r = client.get("/")
    assert r.headers["content-security-policy"].startswith("frame-ancestors 'self';")
    assert r.headers["x-frame-options"] == "SAMEORIGIN"
    foreign = {"Origin": "https://evil.example"}
    _error(client.post("/api/ask", json={"question": KO_Q}, headers=foreign), 403)
    pre = client.options("/api/ask", headers={**foreign, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers
    assert "access-control-allow-origin" not in client.get("/config", headers=foreign).headers
    same = client.post("/api/search", json={"question": KO_Q}, headers={"Origin": "http://testserver"})
    assert same.status_code == 200


def test_allowed_origins_open_frame_and_cors(base: Settings, seed_retriever: Any) -> None:
    portal = "https://portal.example.com"
    c = TestClient(create_app(replace(base, allowed_origins=portal + "/"), seed_retriever))
    r = c.get("/")
    assert r.headers["content-security-policy"].startswith(f"frame-ancestors 'self' {portal};")
    assert "x-frame-options" not in r.headers
    pre = c.options("/api/ask", headers={"Origin": portal, "Access-Control-Request-Method": "POST",
                                         "Access-Control-Request-Headers": "content-type"})
    assert pre.headers["access-control-allow-origin"] == portal
    ok = c.post("/api/search", json={"question": KO_Q}, headers={"Origin": portal})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == portal
    assert c.get("/gradio.js", headers={"Origin": portal}).headers["access-control-allow-origin"] == portal
    _error(c.post("/api/search", json={"question": KO_Q}, headers={"Origin": "https://other.example"}), 403)


def test_root_path(base: Settings, seed_retriever: Any) -> None:
    c = TestClient(create_app(replace(base, root_path="/chat"), seed_retriever))
    # behind a proxy that strips the prefix, and reached directly with it: both route
    assert c.get("/healthz").status_code == 200 and c.get("/chat/healthz").status_code == 200
    assert c.post("/chat/api/search", json={"question": KO_Q}).status_code == 200
    # /docs links its schema and assets relatively: right at /docs and at /chat/docs alike
    assert "url: 'docs-openapi.json'" in c.get("/docs").text and "cdn" not in c.get("/docs").text.lower()
    assert c.get("/chat/docs-openapi.json").json()["openapi"] == "3.0.3"
    assert c.get("/chat/docs-assets/swagger-ui-bundle.js").status_code == 200
    config = c.get("/config").json()
    assert config["root"].endswith("/chat")
