"""The `rag` command as a user runs it: real subprocesses, JSON on stdout, errors as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.answer.compose import ABSTAIN
from tests.test_index import write_corpus

RAG = [sys.executable, "-m", "rag.cli"]


def run(args: list[str], env_extra: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(env_extra)
    return subprocess.run(RAG + args, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, model_cache: str) -> tuple[Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("cli")
    write_corpus(tmp / "corpus")
    (tmp / "corpus" / "broken.jsonl").write_text(
        '{"id": "j1", "title": "Busan port", "text": "Busan port handled record container traffic in May."}\n'
        "{not json\n",
        encoding="utf-8",
    )
    env = {"RAG_CACHE_DIR": model_cache, "RAG_INDEX_DIR": str(tmp / "index")}
    return tmp, env


def test_help_is_instant() -> None:
    t = time.perf_counter()
    r = subprocess.run([*RAG, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "index" in r.stdout and "RAG_" in r.stdout
    assert time.perf_counter() - t < 5  # generous: the budget is 1 s, CI machines are noisy
    assert "torch" not in subprocess.run(
        [sys.executable, "-c", "import rag.cli, sys; print(' '.join(sys.modules))"],
        capture_output=True, text=True, timeout=60,
    ).stdout.split()


def test_index_search_eval_flow(workdir: tuple[Path, dict[str, str]]) -> None:
    tmp, env = workdir
    strict = run(["index", "--corpus", "corpus", "--strict"], env, tmp)
    assert strict.returncode == 3 and "broken.jsonl:2" in strict.stderr
    assert not (tmp / "index").exists()

    r = run(["index", "--corpus", "corpus"], env, tmp)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["documents"] == 4 and report["embedded"] == report["chunks"]
    assert "broken.jsonl:2" in r.stderr and "embedding" in r.stderr  # problem named; progress shown

    again = json.loads(run(["index", "--corpus", "corpus"], env, tmp).stdout)
    assert again["up_to_date"] and again["embedded"] == 0

    r = run(["search", "부산 터널 폐쇄", "--json", "-k", "2"], env, tmp)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    hit = out["hits"][0]
    assert set(hit) == {"rank", "score", "doc_id", "chunk_id", "title", "text", "start", "end"}
    assert hit["doc_id"] == "weather" and len(out["hits"]) == 2

    (tmp / "q.jsonl").write_text(
        '{"id": "a", "question": "Samsung chip exports", "gold_ids": ["semis"], "lang": "en"}\n'
        '{"id": "b", "question": "개막전에서 이긴 팀", "gold_ids": ["kbo"], "lang": "ko", "extra": 1}\n',
        encoding="utf-8",
    )
    r = run(["search", "--batch", "q.jsonl", "-k", "3"], env, tmp)
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["id"] for x in lines] == ["a", "b"] and all(len(x["hits"]) == 3 for x in lines)

    r = run(["eval", "q.jsonl", "--json"], env, tmp)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)["retrieval"]
    assert m["all"]["recall@1"] == 1.0 and set(m["by_lang"]) == {"en", "ko"}


def test_ask_and_a_stricter_answer_floor(workdir: tuple[Path, dict[str, str]]) -> None:
    tmp, env = workdir
    if not (tmp / "index").exists():
        assert run(["index", "--corpus", "corpus"], env, tmp).returncode == 0
    question = "부산 폭우로 통제된 터널은 몇 곳인가?"
    r = run(["ask", question], env, tmp)
    assert r.returncode == 0, r.stderr
    assert "[1]" in r.stdout and "tunnels" in r.stdout  # the weather article is in English
    strict = run(["ask", question], {**env, "RAG_MIN_ANSWER_SCORE": "0.99"}, tmp)
    assert strict.returncode == 0, strict.stderr
    assert strict.stdout.strip() == ABSTAIN["ko"]
    assert "RAG_MIN_ANSWER_SCORE" in strict.stderr


def test_user_errors_are_one_line(workdir: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    tmp, env = workdir
    r = run(["search", "hello", "--index", str(tmp_path / "none")], env, tmp)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "rag index" in r.stderr
    r = run(["index", "--corpus", str(tmp_path / "missing-folder")], env, tmp)
    assert r.returncode == 1 and "missing-folder" in r.stderr and "Traceback" not in r.stderr
    r = run(["search", "hello", "-k", "0"], env, tmp)
    assert r.returncode == 2 and "-k" in r.stderr and "1 to" in r.stderr
    r = run(["search", "hello", "--from", "last week"], env, tmp)
    assert r.returncode == 2 and "YYYY-MM-DD" in r.stderr
    r = run(["search", "hello", "--from", "2025-09-01", "--to", "2025-08-01"], env, tmp)
    assert r.returncode == 1 and "swap" in r.stderr and "Traceback" not in r.stderr
