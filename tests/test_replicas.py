"""Stateless replicas: two ``rag serve`` processes on one index folder answer alike, both pick
up a rebuilt index (never a half-updated one), and share feedback and rate limits."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from rag.serve.sharedstate import SharedRateLimiter

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "data" / "belebele12.jsonl"
QUESTION = "Which Greek scientists and politicians do we know?"


def _count_allowed(path: str, n: int, out: Any) -> None:
    limiter = SharedRateLimiter(Path(path), per_minute=12)
    out.put(sum(limiter.check("ip:10.0.0.1") == 0.0 for _ in range(n)))


def test_rate_limit_is_shared_between_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_count_allowed, args=(str(tmp_path / "rl.sqlite"), 10, out)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    allowed = [out.get(timeout=5), out.get(timeout=5)]
    assert sum(allowed) == 12, allowed  # 20 requests, 12 allowed in all, whichever process took them
    limiter = SharedRateLimiter(tmp_path / "rl.sqlite", per_minute=12)
    assert limiter.check("ip:10.0.0.1") > 0 and limiter.check("ip:10.0.0.2") == 0.0


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(port: int, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _ids(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(h["chunk_id"], h["text"]) for h in body["hits"]]


@pytest.mark.slow
def test_two_servers_one_index(tmp_path: Path, settings: Settings, embedder: Any) -> None:
    pytest.importorskip("fastapi")
    from rag.search.retrieve import Retriever
    from rag.store.index import build_index

    rows = CORPUS.read_text(encoding="utf-8").splitlines()
    corpus = tmp_path / "news.jsonl"
    corpus.write_text("\n".join(rows[:3]) + "\n", encoding="utf-8")
    index = tmp_path / "index"
    build_index(settings, [corpus], index, progress=False, embedder=embedder)
    old = [(h.chunk.chunk_id, h.chunk.text) for h in Retriever.open(settings, index).search(QUESTION, k=5)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_INDEX_DIR": str(index), "RAG_DATA_DIR": str(tmp_path / "data"),
           "RAG_CACHE_DIR": settings.cache_dir, "RAG_SHARED_STATE": "1", "RAG_RATE_LIMIT": "1000"}
    ports = [_port(), _port()]
    code = "import sys; from rag.cli import main; sys.exit(main(['serve']))"
    procs = [subprocess.Popen([sys.executable, "-c", code], env={**env, "RAG_PORT": str(p)}, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for p in ports]
    try:
        for proc, port in zip(procs, ports, strict=True):
            assert proc.stdout is not None
            line, deadline = "", time.monotonic() + 240
            while "ready at" not in line and time.monotonic() < deadline and proc.poll() is None:
                line = proc.stdout.readline()
            assert f":{port}/" in line, line
        answers = [_post(p, "/api/search", {"question": QUESTION, "k": 5}) for p in ports]
        assert answers[0][0] == answers[1][0] == 200
        assert _ids(answers[0][1]) == _ids(answers[1][1]) == old
        # a new article lands: each replica reloads on its own, and serves the old or the new index
        corpus.write_text("\n".join(rows[:3] + rows[9:10]) + "\n", encoding="utf-8")
        build_index(settings, [corpus], index, progress=False, embedder=embedder)
        new = [(h.chunk.chunk_id, h.chunk.text) for h in Retriever.open(settings, index).search(QUESTION, k=5)]
        assert new != old
        seen: list[set[str]] = [set(), set()]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all("new" in s for s in seen):
            for i, p in enumerate(ports):
                status, body = _post(p, "/api/search", {"question": QUESTION, "k": 5})
                assert status == 200 and _ids(body) in (old, new), body
                seen[i].add("new" if _ids(body) == new else "old")
            time.sleep(0.3)
        assert all("new" in s for s in seen), seen
        # feedback from both replicas lands in the one shared file, whole lines
        for p in ports:
            status, _ = _post(p, "/api/feedback", {"rating": "up", "question": QUESTION, "answer": f"via {p}"})
            assert status == 200
        lines = (tmp_path / "data" / "feedback.jsonl").read_text(encoding="utf-8").splitlines()
        assert sorted(json.loads(x)["answer"] for x in lines) == sorted(f"via {p}" for p in ports)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
