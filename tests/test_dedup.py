"""Near-duplicate articles (MinHash over Kiwi morphemes) on a fixture set with known duplicates."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

from rag.ingest.dedup import Article, NearDuplicates, classify, pairs, shingles

DATA = Path(__file__).parent / "data" / "dedup" / "articles.jsonl"


def _rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_precision_and_recall_on_known_duplicates() -> None:
    rows = _rows()
    truth = {frozenset((a["id"], b["id"])) for a, b in combinations(rows, 2) if a["group"] == b["group"]}
    found = pairs(Article(r["id"], r["text"], r["outlet"], r["published"]) for r in rows)
    tp = len(found & truth)
    assert len(truth) >= 10
    assert tp / len(found) >= 0.9, sorted(map(sorted, found - truth))  # precision
    assert tp / len(truth) >= 0.9, sorted(map(sorted, truth - found))  # recall


def test_shingles_ignore_particles_and_spacing() -> None:
    a = shingles("정부가 GPU를 확보했다")
    b = shingles("정부 가 GPU 를  확보 했다")
    assert a and a == b


def test_classify_correction_syndication_and_new() -> None:
    rows = {r["id"]: r for r in _rows()}

    def art(rid: str, **kw: str) -> Article:
        r = {**rows[rid], **kw}
        return Article(rid, r["text"], r["outlet"], r["published"], r.get("url", ""))

    idx = NearDuplicates()
    idx.add(art("power-0"))
    idx.add(art("gpu-0"))
    kind, other = classify(art("power-1"), idx)  # same outlet, a day later, a number corrected
    assert kind == "correction" and other is not None and other.key == "power-0"
    kind, other = classify(art("gpu-1"), idx)  # another outlet's lightly edited copy
    assert kind == "syndicated" and other is not None and other.key == "gpu-0"
    assert classify(art("kai4"), idx) == ("new", None)  # same topic, different story
    idx.add(art("robot-0", url="http://x.test/robot"))
    kind, other = classify(Article("elsewhere", "완전히 새로 쓴 본문입니다.", "연합뉴스", "2025-08-03",
                                   "http://x.test/robot"), idx)
    assert kind == "correction" and other is not None and other.key == "robot-0"  # same URL, new text
