"""Search a Milvus store: each retriever's candidates from Milvus, fused by ``retrieve.fuse``.

Per question Milvus is asked for the dense candidates (ANN on the passage
vector), the BM25 candidates (sparse inner product, single terms plus pairs,
:mod:`rag.store.sparsebm25`) and, across languages, the BM25 candidates of the
question's words mapped to the other script (the nearest term vector in
``N_terms``). Filters (outlet, dates) are pushed down as Milvus filter
expressions. The candidates' vectors and sentence vectors are then read back
and scored exactly as the index folder scores them. :class:`MilvusIndex` also
offers the folder's ``Index`` attributes (all passages, all vectors) for the
answer path; they are read from Milvus on first use only, so ``rag search``
and ``rag eval`` never load the collection into the process.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.errors import IndexStoreError
from rag.records import Chunk, Hit
from rag.search.retrieve import MODES, Filters, Fusion, Retriever, fuse
from rag.store.crosslex import translatable
from rag.store.milvus import (
    _quoted,
    check_manifest,
    collection_name,
    connect,
    decode_sentences,
    iterate,
    read_manifest,
)
from rag.store.sentvec import SentenceVectors
from rag.store.sparsebm25 import Counts, key_vector, query_vector, term_id
from rag.text import detect_lang, has_hangul, tokens

_FIELDS = ["pk", "doc_id", "text", "span_start", "span_end", "lang", "doc", "dense", "sentences"]


def filter_expr(f: Filters | None) -> str:
    """The Milvus filter expression of ``f`` ("" = no filter); a document without an ISO day
    never matches a date filter, as in the index folder."""
    if f is None or not f.active():
        return ""
    parts = []
    if f.outlet:
        parts.append(f"outlet == {json.dumps(f.outlet.casefold(), ensure_ascii=False)}")
    dates = []
    if f.date_from:
        dates.append(f'(day != "" and day >= {json.dumps(f.date_from)})')
    if f.date_to:
        dates.append(f'(day != "" and day <= {json.dumps(f.date_to)})')
    if dates and f.undated:  # a question naming dates: undated documents stay (rag.search.timescope)
        dates = [f'(day == "" or ({" and ".join(dates)}))']
    return " and ".join(parts + dates)


def _and(a: str, b: str) -> str:
    return f"({a}) and ({b})" if a and b else a or b


class MilvusIndex:
    """A Milvus collection seen through the folder ``Index``'s attributes (read lazily)."""

    def __init__(self, client: Any, name: str, manifest: dict[str, Any]) -> None:
        self.client = client
        self.name = name
        self.path = Path(name)
        self.manifest = manifest
        self.dim = int(manifest["embedding"]["dim"])

    @property
    def model_id(self) -> str:
        return str(self.manifest["embedding"]["model"])

    @cached_property
    def _rows(self) -> list[dict[str, Any]]:
        rows = list(iterate(self.client, self.name, "", _FIELDS))
        return sorted(rows, key=lambda r: r["pk"])

    @cached_property
    def chunks(self) -> list[Chunk]:
        return [_chunk(r) for r in self._rows]

    @cached_property
    def docs(self) -> dict[str, dict[str, str]]:
        rows = iterate(self.client, self.name + "_meta", 'pk like "doc:%"', ["pk", "value"])
        return {r["pk"][4:]: json.loads(r["value"]) for r in rows}

    def vectors(self) -> np.ndarray:
        return self._vectors

    @cached_property
    def _vectors(self) -> np.ndarray:
        return np.asarray([r["dense"] for r in self._rows], dtype=np.float32).reshape(-1, self.dim)

    @cached_property
    def sentences(self) -> SentenceVectors:
        return _sentences(self._rows, self.dim)


def _chunk(r: dict[str, Any]) -> Chunk:
    return Chunk(r["pk"], r["doc_id"], r["text"], int(r["span_start"]), int(r["span_end"]), r["lang"])


def _sentences(rows: Sequence[dict[str, Any]], dim: int) -> SentenceVectors:
    parts = [decode_sentences(r["sentences"], dim) for r in rows]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    vecs = np.concatenate(parts) if parts else np.zeros((0, dim), np.float16)
    return SentenceVectors(vecs.reshape(-1, dim), offsets)


def open_retriever(settings: Settings, index_dir: str | Path | None) -> MilvusRetriever:
    from rag.model.encoder import load_query_embedder

    client = connect(settings)
    name = collection_name(settings, index_dir)
    where = f"Milvus collection {name!r} at {settings.milvus_uri}"
    manifest = read_manifest(client, name)
    if manifest is None:
        raise IndexStoreError(f"no index in {where}: run `rag index` (with RAG_STORE=milvus) to build it")
    check_manifest(manifest, settings, where)
    return MilvusRetriever(MilvusIndex(client, name, manifest), load_query_embedder(settings), settings)


class MilvusRetriever(Retriever):
    """``Retriever`` whose candidates come from Milvus; fusion is the folder's own."""

    def __init__(self, index: MilvusIndex, embedder: object, settings: Settings, fusion: Fusion | None = None) -> None:
        self.index = index  # type: ignore[assignment]  # the folder Index's attributes, read lazily
        self.embedder = embedder
        self.settings = settings
        self.fusion = fusion or Fusion()
        self._word_vectors: dict[str, np.ndarray] = {}
        self.client = index.client
        self.name = index.name
        self.counts = Counts(**index.manifest["bm25"])

    def search_batch(
        self, questions: Sequence[str], k: int | None = None, filters: Filters | None = None, mode: str = "hybrid"
    ) -> list[list[Hit]]:
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
        k = k or self.settings.top_k
        if not questions or not self.counts.passages:
            return [[] for _ in questions]
        expr = filter_expr(filters)
        qvecs = self.embedder.encode_queries(list(questions)) if mode != "bm25" else None  # type: ignore[attr-defined]
        return [self._search(q, None if qvecs is None else qvecs[i], k, expr, mode) for i, q in enumerate(questions)]

    # ----------------------------------------------------------- internal
    def _search(self, question: str, qvec: np.ndarray | None, k: int, expr: str, mode: str) -> list[Hit]:
        n = max(self.settings.candidates, k)
        dense = self._ann("dense", [] if qvec is None else [np.asarray(qvec, np.float32).tolist()], n, expr)
        if mode == "dense":
            return self._hits(sorted(dense.items(), key=lambda x: -x[1])[:k])
        words = tokens(question)
        pairs = self.fusion.pairs if mode != "bm25" else 0.0
        lex = self._bm25(words, pairs, n, expr)
        if mode == "bm25":
            return self._hits(sorted(lex.items(), key=lambda x: -x[1])[:k])
        qlang = detect_lang(question) or "en"
        trans = self._mapped(words, qlang, n, expr)
        pks = sorted(set(dense) | set(lex) | set(trans))
        if not pks:
            return []
        rows = self._fetch(pks)
        vecs = np.asarray([r["dense"] for r in rows], dtype=np.float32).reshape(len(rows), -1)
        d = vecs @ np.asarray(qvec, dtype=np.float32) if qvec is not None else np.zeros(len(rows))
        if qvec is not None and self.fusion.sentence:
            sents = _sentences(rows, vecs.shape[1])
            d = d + self.fusion.sentence * sents.best(np.arange(len(rows)), qvec, fallback=d)
        b = np.array([lex.get(r["pk"], 0.0) for r in rows], dtype=np.float32)
        t = np.array([trans.get(r["pk"], 0.0) for r in rows], dtype=np.float32)
        same = np.array([r["lang"] == qlang for r in rows])
        fused = fuse(self.fusion, d, b, t, same)
        order = np.argsort(-fused)[:k]
        return [self._hit(rank + 1, rows[i], float(fused[i])) for rank, i in enumerate(order)]

    def _ann(self, field: str, data: list[Any], n: int, expr: str) -> dict[str, float]:
        if not data:
            return {}
        res = self.client.search(
            self.name, data=data, anns_field=field, limit=n, filter=expr, output_fields=["pk"],
            search_params={"metric_type": "IP"},
        )
        # a sparse match scores above 0; the dense part keeps every candidate, as FAISS does
        return {str(h["pk"]): float(h["distance"]) for h in res[0] if field == "dense" or h["distance"] > 0}

    def _df(self, keys: Sequence[int]) -> dict[int, int]:
        keys = sorted(set(keys))
        if not keys:
            return {}
        rows = self.client.query(self.name + "_terms", filter=f"pk in {keys}", output_fields=["df"])
        return {int(r["pk"]): int(r["df"]) for r in rows}

    def _bm25(self, words: Sequence[str], pairs: float, n: int, expr: str) -> dict[str, float]:
        from rag.store.lexical import term_pairs

        keys = [term_id(w) for w in words] + ([term_id(p) for p in term_pairs(words)] if pairs else [])
        q = query_vector(words, self._df(keys), self.counts.passages, pairs)
        return self._ann("bm25", [q], n, expr) if q else {}

    def _mapped(self, words: Sequence[str], qlang: str, n: int, expr: str) -> dict[str, float]:
        """BM25 of the question's words mapped to the other script, on other-language passages."""
        if not self.fusion.translated:
            return {}
        todo = sorted({w for w in words if translatable(w)})
        if not todo:
            return {}
        vecs = self._word_vectors_of(todo)
        mapped: list[str] = []
        for hangul in (True, False):  # Latin words map to Hangul terms and the other way round
            idx = [i for i, w in enumerate(todo) if has_hangul(w) != hangul]
            if not idx:
                continue
            res = self.client.search(
                self.name + "_terms", data=[vecs[i].tolist() for i in idx], anns_field="vector", limit=1,
                filter=f"has_vec == true and hangul == {str(hangul).lower()}", output_fields=["df"],
                search_params={"metric_type": "IP"},
            )
            mapped += [str(int(r[0]["pk"])) for r in res if r]
        if not mapped:
            return {}
        keys = [int(m) for m in mapped]
        q = key_vector(keys, self._df(keys), self.counts.passages)
        return self._ann("bm25", [q], n, _and(expr, f"lang != {json.dumps(qlang)}")) if q else {}

    def _word_vectors_of(self, words: list[str]) -> np.ndarray:
        """Vectors of question words as index terms have them: the stored term vector, else embedded."""
        ids = [term_id(w) for w in words]
        rows = self.client.query(self.name + "_terms", filter=f"pk in {ids} and has_vec == true",
                                 output_fields=["vector"])
        stored = {int(r["pk"]): np.asarray(r["vector"], dtype=np.float32) for r in rows}
        todo = [w for w, i in zip(words, ids, strict=True) if i not in stored and w not in self._word_vectors]
        if todo:
            if len(self._word_vectors) + len(todo) > 4096:
                self._word_vectors.clear()
            self._word_vectors.update(zip(todo, self.embedder.encode_queries(todo), strict=True))  # type: ignore[attr-defined]
        return np.stack([stored[i] if i in stored else self._word_vectors[w] for w, i in zip(words, ids, strict=True)])

    def _fetch(self, pks: Sequence[str]) -> list[dict[str, Any]]:
        rows = self.client.query(self.name, filter=f"pk in {_quoted(pks)}", output_fields=_FIELDS)
        by_pk = {r["pk"]: r for r in rows}
        return [by_pk[p] for p in pks if p in by_pk]

    def _hits(self, scored: list[tuple[str, float]]) -> list[Hit]:
        rows = {r["pk"]: r for r in self._fetch([p for p, _ in scored])}
        return [self._hit(i + 1, rows[p], s) for i, (p, s) in enumerate(scored) if p in rows]

    def _hit(self, rank: int, row: dict[str, Any], score: float) -> Hit:  # type: ignore[override]
        m = json.loads(row["doc"])
        return Hit(
            rank=rank, score=score, chunk=_chunk(row), title=m.get("title", ""), url=m.get("url", ""),
            outlet=m.get("outlet", ""), author=m.get("author", ""), published=m.get("published", ""),
        )
