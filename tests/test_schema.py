"""schemathesis against /openapi.json of a real server (issue 17): every documented operation,
fuzzed, answers with a status code, content type and body its schema documents, never a 500;
schema-valid requests are accepted and schema-violating ones refused.

``make test``: 8 examples per operation (and the coverage phase); ``make soak`` (``RAG_SOAK=1``): 300.
The rules JSON Schema cannot state are kept by ``tests/schema_hooks.py``; ``tests/schemathesis.toml``
lists the two settings that differ from schemathesis's defaults, with the reasons.
Below: the findings of earlier runs, each pinned as a plain test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.config import Settings
from tests.test_api_edges import _serve

ROOT = Path(__file__).resolve().parent.parent
SOAK = os.environ.get("RAG_SOAK") == "1"


@pytest.mark.slow
def test_the_api_matches_its_schema(settings: Settings, seed_retriever: Any, tmp_path: Path) -> None:
    pytest.importorskip("schemathesis")
    from rag.serve.server import create_app

    s = replace(settings, data_dir=str(tmp_path / "data"), rate_limit=0)
    server, port = _serve(create_app(s, seed_retriever))
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schema_hooks",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([cli, "--config-file", str(ROOT / "tests" / "schemathesis.toml"), "run",
                               f"http://127.0.0.1:{port}/openapi.json", "-c", "all", "-n", "300" if SOAK else "8"],
                              capture_output=True, text=True, timeout=1800, cwd=tmp_path, env=env)
    finally:
        server.should_exit = True
    print(done.stdout[-1500:])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout


@pytest.fixture(scope="module")
def client(settings: Settings, seed_retriever: Any, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    from rag.serve.server import create_app

    s = replace(settings, data_dir=str(tmp_path_factory.mktemp("schema-data")), rate_limit=0)
    return TestClient(create_app(s, seed_retriever))


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "PUT", "OPTIONS"])
@pytest.mark.parametrize("path", ["/api/ask", "/v1/models", "/v1/chat/completions", "/healthz"])
def test_any_other_method_is_405_with_allow(client: TestClient, method: str, path: str) -> None:
    r = client.request(method, path)
    assert r.status_code == 405, (method, path, r.status_code)
    assert r.headers["allow"] and method not in r.headers["allow"]
    assert r.json()["error"]["code"] == 405 and r.headers["x-content-type-options"] == "nosniff"


def test_json_schema_integers_and_ids(client: TestClient) -> None:
    ok = client.post("/api/search", json={"question": "KT", "k": 2.0, "id": "3"})
    assert ok.status_code == 200 and len(ok.json()["hits"]) <= 2
    assert ok.json()["id"] == "3"  # echoed as sent: a string stays a string
    assert client.post("/api/search", json={"question": "KT", "id": 4.0}).json()["id"] == 4
    for body in ({"k": 2.5}, {"k": "2"}, {"k": True}, {"id": True}, {"id": 1.5}):
        assert client.post("/api/search", json={"question": "KT", **body}).status_code == 400, body


def test_schema_states_the_question_and_date_rules(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    req = schema["components"]["schemas"]["SearchRequest"]["properties"]
    pattern = req["question"]["pattern"]  # a character the server does not strip away
    assert re.search(pattern, " 질문") and not re.search(pattern, " \x1d\x85\t")
    assert req["question"]["maxLength"] == 2000
    assert {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"} in req["from"]["anyOf"]
    ask = schema["paths"]["/api/ask"]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert ask["properties"]["event"]["enum"] == ["delta", "answer", "error", "done"]
    # and the server keeps exactly those rules
    assert client.post("/api/search", json={"question": " \t\n"}).status_code == 400
    assert client.post("/api/search", json={"question": "KT" + " " * 1999}).status_code == 400  # as sent
    assert client.post("/api/search", json={"question": "KT", "from": "2025-01-01"}).status_code == 200
    for day in (" 2025-01-01", "20250101", "2025-W01-1", "2025-13-01"):
        r = client.post("/api/search", json={"question": "KT", "from": day})
        assert r.status_code == 400 and "YYYY-MM-DD" in r.json()["error"]["message"], day
