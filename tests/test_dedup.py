"""Near-duplicate articles (MinHash over Kiwi morphemes) on a fixture set with known duplicates."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

from rag.ingest.dedup import Article, NearDuplicates, classify, collapse, pairs, shingles
from rag.records import Document

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


def _doc(doc_id: str, text: str, outlet: str = "", published: str = "", url: str = "") -> Document:
    return Document(doc_id, text, title=doc_id, url=url, published=published, outlet=outlet, sha256=doc_id)


def test_collapse_keeps_the_earliest_publisher_and_the_latest_correction() -> None:
    rows = {r["id"]: r for r in _rows()}
    docs = [_doc(i, rows[i]["text"], rows[i]["outlet"], rows[i]["published"])
            for i in ("gpu-1", "gpu-0", "power-0", "power-1", "kai4")]
    url_a = "http://x.test/a"
    docs += [_doc("a-old", "첫 보도 본문입니다. 수치는 10이다.", "연합뉴스", "2025-08-01", url_a),
             _doc("a-new", "완전히 고쳐 쓴 본문입니다.", "연합뉴스", "2025-08-02", url_a)]  # same URL: a correction
    wiki = "임종석은 1989년 전대협 의장이었다. 평양축전에 임수경을 파견했다."
    docs += [_doc("w1", wiki), _doc("w2", wiki)]  # no outlet, no URL: never merged
    got = collapse(docs)
    ids = [d.doc_id for d in got.documents]
    assert ids == ["gpu-0", "power-1", "kai4", "a-new", "w1", "w2"]  # corpus order kept
    gpu = got.documents[0]
    assert gpu.also == "테크데일리 (2025-08-14)" and gpu.sha256 != "gpu-0"  # the change reaches the index
    assert {(g["doc_id"], g["kind"], g["kept"]) for g in got.dropped} == {
        ("gpu-1", "syndicated", "gpu-0"), ("power-0", "correction", "power-1"), ("a-old", "correction", "a-new")}
    assert collapse(docs[:1]).documents == (docs[0],)


def test_rag_index_embeds_one_copy_and_answers_cite_the_earliest_publisher(  # type: ignore[no-untyped-def]
        settings, embedder, tmp_path: Path) -> None:
    import dataclasses

    from rag.answer.compose import answer
    from rag.search.retrieve import Retriever
    from rag.store.index import build_index

    rows = {r["id"]: r for r in _rows()}
    corpus = tmp_path / "corpus"
    corpus.mkdir()

    def put(name: str, *ids: str) -> None:
        lines = [json.dumps({k: rows[i][k] for k in ("id", "text", "outlet", "published")} | {"title": i},
                            ensure_ascii=False) for i in ids]
        (corpus / name).write_text("\n".join(lines) + "\n", encoding="utf-8")

    put("a.jsonl", "gpu-1", "power-0")
    index = tmp_path / "index"
    first = build_index(settings, [corpus], index, progress=False, embedder=embedder)
    assert first.documents == 2 and not first.duplicates
    put("b.jsonl", "gpu-0", "gpu-2", "power-1")  # the earlier publishers' copies and a correction arrive
    with (corpus / "a.jsonl").open("a", encoding="utf-8") as f:
        f.write("{not json\n")  # a broken line: the copies in a.jsonl must still not be kept from the old index
    second = build_index(settings, [corpus], index, progress=False, embedder=embedder)
    assert second.problems and not second.kept
    kept = {d["doc_id"]: d["kept"] for d in second.duplicates}
    assert kept == {"gpu-1": "gpu-0", "gpu-2": "gpu-0", "power-0": "power-1"}, second.to_json()
    assert second.documents == 2 and set(second.removed) == {"gpu-1", "power-0"}
    s = dataclasses.replace(settings, index_dir=str(index))
    retriever = Retriever.open(s, index)
    metas = retriever.index.docs
    assert len(metas) == 2
    gpu = next(m for m in metas.values() if m["outlet"] == "연합뉴스")
    assert gpu["also"] == "바이라인네트워크 (2025-08-13); 테크데일리 (2025-08-14)"
    power = next(m for m in metas.values() if m["outlet"] == "뉴시스")
    assert power["published"] == "2025-07-29"  # the corrected version replaced the older one
    a = answer(retriever, "정부가 연말까지 확보하려는 GPU는 몇 장인가?", settings=s)
    assert not a.abstained and a.citations[0].outlet == "연합뉴스"
    assert a.citations[0].also.startswith("바이라인네트워크 (2025-08-13)")
    assert "세 배" in power_text(retriever) and "두 배" not in power_text(retriever)
    assert build_index(settings, [corpus], index, progress=False, embedder=embedder).up_to_date


def power_text(retriever) -> str:  # type: ignore[no-untyped-def]
    return " ".join(c.text for c in retriever.index.chunks if "전력" in c.text)


def test_cached_signatures_find_the_same_duplicates(tmp_path: Path) -> None:
    rows = [r for r in _rows() if r["group"] in ("gpu", "power", "kai4")]
    docs = [_doc(r["id"], r["text"], r["outlet"], r["published"]) for r in rows]
    cache = tmp_path / "minhash.sqlite"
    cold = collapse(docs, cache=cache)
    warm = collapse(docs, cache=cache)  # every signature read back from the cache
    assert cold == warm and len(cold.dropped) == 3
    cache.write_bytes(b"not a database")
    assert collapse(docs, cache=cache) == cold  # a damaged cache only costs time
