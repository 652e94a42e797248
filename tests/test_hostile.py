"""Hostile input never aborts or hangs a build (issue 17): every bad file is skipped by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.ingest.corpus import load_corpus
from tests.hostile import BAD, make_hostile_corpus

pytestmark = pytest.mark.skipif(os.name != "posix", reason="FIFOs and symlinks")


def test_every_hostile_file_is_skipped_by_name_and_the_good_ones_load(tmp_path: Path) -> None:
    folder = make_hostile_corpus(tmp_path / "corpus")
    res = load_corpus([folder], max_line_bytes=500_000)
    titles = sorted(d.title for d in res.documents)
    assert titles == ["Busan port", "부산항 물동량"]  # the UTF-16 file is read, not called binary
    got = {Path(p.path).name: p.message for p in res.problems}
    assert set(got) == set(BAD), got
    for name, words in BAD.items():
        assert words in got[name], (name, got[name])
    lines = {Path(p.path).name: p.line for p in res.problems}
    assert lines["deep.jsonl"] == 1 and lines["bigint.jsonl"] == 1 and lines["longline.jsonl"] == 1


def test_size_limits_are_settings(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("An article of some length. " * 50)
    (tmp_path / "r.jsonl").write_text(json.dumps({"id": "r", "text": "x " * 400}) + "\n")
    assert len(load_corpus([tmp_path]).documents) == 2
    res = load_corpus([tmp_path], max_file_bytes=500, max_line_bytes=500)
    assert not res.documents and len(res.problems) == 2
    assert all("limit" in p.message for p in res.problems)


def test_any_exception_in_one_file_skips_only_that_file(tmp_path: Path) -> None:
    # YAML's date constructor raises ValueError (not a YAMLError) for month 13: it aborted the build
    (tmp_path / "bad-date.md").write_text("---\ntitle: x\npublished: 2025-13-45\n---\nSome text here.\n")
    (tmp_path / "deep.html").write_text("<html><body>" + "<div>" * 50_000 + "Deep text." + "</div>" * 50_000)
    (tmp_path / "ok.md").write_text("# Fine\n\nA readable article about ports.\n")
    res = load_corpus([tmp_path])
    assert sorted(d.doc_id for d in res.documents) == ["deep", "ok"]
    (problem,) = res.problems
    assert problem.path.endswith("bad-date.md") and "month must be in 1..12" in problem.message


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")} | env
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=full, timeout=600)


@pytest.mark.slow
def test_rag_index_on_the_hostile_corpus(tmp_path: Path, model_cache: str) -> None:
    folder = make_hostile_corpus(tmp_path / "corpus")
    env = {"RAG_CACHE_DIR": model_cache, "RAG_INDEX_DIR": str(tmp_path / "index"), "RAG_MAX_LINE_BYTES": "500000"}
    strict = _cli(["index", "--corpus", str(folder), "--strict", "--quiet"], tmp_path, env)
    assert strict.returncode == 3, strict.stderr
    assert "Traceback" not in strict.stderr and "pipe.md" in strict.stderr
    done = _cli(["index", "--corpus", str(folder), "--quiet"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["documents"] == 2
    assert {Path(p["path"]).name for p in report["problems"]} == set(BAD)
    assert "Traceback" not in done.stderr
