"""A running server picks up a rebuilt index (issue 17): the new article is searchable within
seconds of `rag index` finishing, /api/info shows the new build, and no request fails meanwhile."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from rag.store.index import build_index
from tests.test_index import ARTICLES, write_corpus

pytest.importorskip("fastapi")
pytest.importorskip("gradio")

from fastapi.testclient import TestClient

from rag.serve.server import create_app

NEW = {"zorblax.md": "---\ntitle: Zorblax turnip festival\noutlet: Test Herald\npublished: 2025-06-01\n---\n"
       "The Zorblax turnip festival in Gangneung drew 12,000 visitors on Sunday.\n\n"
       "Organisers plan a second Zorblax festival in Jeonju."}
QUESTION = "Where was the Zorblax turnip festival held?"


@pytest.mark.slow
def test_a_rebuilt_index_is_swapped_in_without_a_failed_request(settings: Settings, embedder: Any,
                                                                 tmp_path: Path) -> None:
    s = replace(settings, index_dir=str(tmp_path / "index"), data_dir=str(tmp_path / "data"), rate_limit=0)
    corpus = write_corpus(tmp_path / "corpus", ARTICLES)
    build_index(s, [corpus], s.index_dir, progress=False, embedder=embedder)
    app = create_app(s)  # loads the index itself, as `rag serve` does
    before = TestClient(app).get("/api/info").json()["index"]
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        c = TestClient(app)
        while not stop.is_set():
            statuses.append(c.post("/api/search", json={"question": "반도체 수출", "k": 3}).status_code)

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        write_corpus(corpus, NEW)
        time.sleep(1.1)  # a new manifest gets another mtime even on coarse clocks
        build_index(s, [corpus], s.index_dir, progress=False, embedder=embedder)
        c = TestClient(app)
        deadline = time.monotonic() + 60
        top = ""
        while time.monotonic() < deadline:
            hits = c.post("/api/search", json={"question": QUESTION, "k": 1}).json()["hits"]
            top = hits[0]["doc_id"] if hits else ""
            if top == "zorblax":
                break
            time.sleep(0.2)
        assert top == "zorblax", "the server never served the rebuilt index"
    finally:
        stop.set()
        worker.join()
    after = c.get("/api/info").json()["index"]
    assert after["documents"] == before["documents"] + 1 and after["passages"] > before["passages"]
    assert after["created"] and after["loaded"] and after["loaded"] >= before["loaded"]
    assert statuses and set(statuses) == {200}, f"{len(statuses)} requests, codes {set(statuses)}"
