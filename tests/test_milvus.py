"""The Milvus store on Milvus Lite (a real embedded Milvus, no mock): same results as the index
folder, filters pushed down, incremental upserts and deletes, manifest checks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import IndexStoreError, RagError
from rag.search.retrieve import Filters, Retriever
from rag.store.lexical import Lexical
from rag.store.sparsebm25 import Counts, passage_vector, query_vector
from rag.text import tokens, tokens_batch

# 8 Korean and 4 English Belebele passages (CC BY-SA 4.0) with made-up outlets and dates
CORPUS = Path(__file__).parent / "data" / "belebele12.jsonl"
QUESTIONS = [
    "냉전은 얼마나 오래 지속되었나요?",
    "How long did the Cold War last?",
    "소련과 미국의 협력",
    "What did the Germans do in the war?",
]


def test_sparse_vectors_score_like_lexical() -> None:
    texts = ["서울 시청 앞 광장에서 시민들이 모였다. 서울 시장이 연설했다.", "The city hall of Seoul opened.",
             "부산 시청은 새 광장을 열었다", "New York city hall, New York"]
    lex = Lexical.build(texts)
    toks = tokens_batch(texts)
    counts = Counts(len(texts), sum(len(t) for t in toks), sum(max(0, len(t) - 1) for t in toks))
    docs = [passage_vector(t, counts) for t in toks]
    df: dict[int, int] = {}
    for d in docs:
        for key in d:
            df[key] = df.get(key, 0) + 1
    for q in ["서울 시청 광장", "new york city hall", "시청 시청 부산"]:
        words = tokens(q)
        want = lex.term_scores(words) + 1.0 * lex.pair_scores(words)
        qv = query_vector(words, df, len(texts), pairs=1.0)
        got = np.array([sum(w * d.get(k, 0.0) for k, w in qv.items()) for d in docs])
        assert np.allclose(got, want, atol=1e-4), (q, got, want)


class Remembering:
    """The real embedder, remembering each text's vector: the same passages indexed into both
    stores (and again incrementally) go through the model once."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.memo: dict[tuple[str, str], np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _encode(self, kind: str, texts: list[str], progress: Any = None) -> np.ndarray:
        todo = sorted({t for t in texts if (kind, t) not in self.memo})
        if todo:
            fn = getattr(self.inner, kind)
            self.memo.update(zip(((kind, t) for t in todo), fn(todo), strict=True))
        if progress is not None:
            progress(len(texts))
        return np.stack([self.memo[kind, t] for t in texts]) if texts else np.zeros((0, self.inner.dim), np.float32)

    def encode_passages(self, texts: list[str], progress: Any = None) -> np.ndarray:
        return self._encode("encode_passages", texts, progress)

    def encode_queries(self, texts: list[str], progress: Any = None) -> np.ndarray:
        return self._encode("encode_queries", texts, progress)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, settings: Settings, embedder: Any) -> dict[str, Any]:
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    from rag.store.index import build_index

    tmp = tmp_path_factory.mktemp("milvus")
    embedder = Remembering(embedder)
    corpus = CORPUS
    folder = build_index(settings, [corpus], tmp / "folder", progress=False, embedder=embedder)
    ms = replace(settings, store="milvus", milvus_uri=str(tmp / "m.db"))
    report = build_index(ms, [corpus], tmp / "news", progress=False, embedder=embedder)
    return {"tmp": tmp, "corpus": corpus, "embedder": embedder, "ms": ms, "folder": folder, "report": report,
            "faiss": Retriever.open(settings, tmp / "folder"), "milvus": Retriever.open(ms, tmp / "news")}


@pytest.mark.slow
def test_milvus_ranks_like_the_folder(stores: dict[str, Any]) -> None:
    assert stores["report"].chunks == stores["folder"].chunks > 12
    for mode in ("hybrid", "dense", "bm25"):
        want = stores["faiss"].search_batch(QUESTIONS, k=5, mode=mode)
        got = stores["milvus"].search_batch(QUESTIONS, k=5, mode=mode)
        for w, g in zip(want, got, strict=True):
            assert [h.chunk.chunk_id for h in g] == [h.chunk.chunk_id for h in w], mode
            # hybrid adds the best sentence's similarity: int8 in the folder, float16 in Milvus (about 5e-4
            # apart), then stretched by the min-max normalisation over the candidates (about 5x here)
            atol = 5e-3 if mode == "hybrid" else 1e-3
            assert np.allclose([h.score for h in g], [h.score for h in w], atol=atol), mode
            assert [h.chunk.text for h in g] == [h.chunk.text for h in w]


@pytest.mark.slow
def test_filters_are_pushed_down(stores: dict[str, Any]) -> None:
    for f in (Filters(outlet="daily a"), Filters(date_from="2024-02-01"), Filters(date_from="2024-02-01",
              date_to="2024-02-28", outlet="Weekly B"), Filters(outlet="nobody"), Filters(recent=True)):
        want = stores["faiss"].search(QUESTIONS[0], k=5, filters=f)
        got = stores["milvus"].search(QUESTIONS[0], k=5, filters=f)
        assert [h.chunk.chunk_id for h in got] == [h.chunk.chunk_id for h in want], f
        assert all(f.outlet.casefold() in ("", h.outlet.casefold()) for h in got)


@pytest.mark.slow
def test_incremental_upsert_and_delete(stores: dict[str, Any]) -> None:
    from rag.store.index import build_index

    tmp, ms, embedder = stores["tmp"], stores["ms"], stores["embedder"]
    rows = [json.loads(line) for line in stores["corpus"].read_text(encoding="utf-8").splitlines()]
    rows[0]["text"] = "Le Café Pamplemousse는 2023년 판교에 문을 연 작은 가게다. 주인은 자몽 주스를 판다."
    removed = rows.pop(1)["id"]
    corpus = tmp / "changed.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    before = build_index(ms, [stores["corpus"]], tmp / "inc", progress=False, embedder=embedder).chunks
    live = Retriever.open(ms, tmp / "inc")  # a replica serving while the collection is updated
    live.check_every = 0.0  # type: ignore[attr-defined]
    assert all("Pamplemousse" not in h.chunk.text for h in live.search("판교의 자몽 주스 가게 이름은?", k=3))
    fresh = build_index(ms, [corpus], tmp / "fresh", progress=False, embedder=embedder)
    assert fresh.added and fresh.embedded == fresh.chunks
    report = build_index(ms, [corpus], tmp / "inc", progress=False, embedder=embedder)
    assert report.updated == (rows[0]["id"],) and report.removed == (removed,)
    assert 0 < report.embedded < before and report.chunks == fresh.chunks
    again = build_index(ms, [corpus], tmp / "inc", progress=False, embedder=embedder)
    assert again.up_to_date and again.embedded == 0
    r = Retriever.open(ms, tmp / "inc")
    hits = r.search("판교의 자몽 주스 가게 이름은?", k=3)
    assert hits[0].chunk.doc_id == rows[0]["id"] and "Pamplemousse" in hits[0].chunk.text
    assert all(h.chunk.doc_id != removed for q in QUESTIONS for h in r.search(q, k=10))
    # the incrementally updated collection ranks like one built from scratch
    scratch = Retriever.open(ms, tmp / "fresh")
    for q in QUESTIONS:
        assert [h.chunk.chunk_id for h in r.search(q, k=3)] == [h.chunk.chunk_id for h in scratch.search(q, k=3)]
        # the replica opened before the update follows it: new counts and rows, ranked as a fresh open
        assert [(h.chunk.chunk_id, round(h.score, 6)) for h in live.search(q, k=3)] == [
            (h.chunk.chunk_id, round(h.score, 6)) for h in r.search(q, k=3)]
    assert live.counts == r.counts  # type: ignore[attr-defined]


@pytest.mark.slow
def test_manifest_checks_and_answer_path(stores: dict[str, Any], settings: Settings) -> None:
    ms = stores["ms"]
    with pytest.raises(IndexStoreError, match=r"embedding model.*--rebuild"):
        Retriever.open(replace(ms, embed_model="other/model"), stores["tmp"] / "news")
    with pytest.raises(IndexStoreError, match="no index in Milvus collection 'missing'"):
        Retriever.open(ms, stores["tmp"] / "missing")
    with pytest.raises(RagError, match="RAG_MILVUS_URI"):
        Retriever.open(replace(ms, milvus_uri=""), stores["tmp"] / "news")
    from rag.answer.compose import answer

    for q in QUESTIONS:  # the answer path (evidence, sentence vectors) reads the collection too
        want = answer(stores["faiss"], q, settings=settings)
        got = answer(stores["milvus"], q, settings=settings)
        assert (got.answer, got.abstained) == (want.answer, want.abstained)
        assert [c.quote for c in got.citations] == [c.quote for c in want.citations]


class Counting:
    """The real Milvus client, counting the passage rows it returns with their vectors."""

    def __init__(self, inner: Any, name: str) -> None:
        self.inner, self.name = inner, name
        self.vector_rows = 0
        self.scans = 0

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def query(self, collection: str, **kw: Any) -> list[dict[str, Any]]:
        rows = self.inner.query(collection, **kw)
        if collection == self.name and "dense" in kw.get("output_fields", []):
            self.vector_rows += len(rows)
        return list(rows)

    def query_iterator(self, collection: str, **kw: Any) -> Any:
        self.scans += collection == self.name
        return self.inner.query_iterator(collection, **kw)


@pytest.mark.slow
def test_answer_path_reads_only_candidates(stores: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer path asks Milvus for the candidates' rows by primary key and a bounded sample, never
    for the whole collection (a million-article collection would not fit in a server)."""
    from rag.answer import evidence
    from rag.answer.compose import answer
    from rag.search.milvus import MilvusIndex, MilvusRetriever

    monkeypatch.setattr(evidence, "MEAN_SAMPLE", 3)
    opened = stores["milvus"]
    settings = replace(opened.settings, candidates=4)
    total = stores["report"].chunks
    for q in QUESTIONS:
        client = Counting(opened.client, opened.name)
        r = MilvusRetriever(MilvusIndex(client, opened.name, opened.index.manifest), opened.embedder, settings)
        got = answer(r, q, settings=settings)
        assert got.answer and client.scans == 0
        # dense, BM25 and mapped-term candidates (4 each) and the sample of 3: fewer than all passages
        assert 0 < client.vector_rows <= 3 * 4 + 3 < total, (q, client.vector_rows, total)
