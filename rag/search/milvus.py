"""Search a Milvus store: each retriever's candidates from Milvus, fused by ``retrieve.fuse``.

For a batch of questions Milvus is asked, in one search call each, for the
dense candidates (ANN on the passage vector), the BM25 candidates (sparse inner
product, single terms plus pairs, :mod:`rag.store.sparsebm25`) and, across
languages, the BM25 candidates of the questions' words mapped to the other
script (the nearest term vector in ``N_terms``). Filters (outlet, dates) are
pushed down as Milvus filter expressions. The candidates' rows (vectors and
sentence vectors included) are then read by primary key and scored exactly as
the index folder scores them. The answer path reads only what it needs, by
primary key (the hits' vectors, one article's passages) plus one sample of
vectors per language for its mean cosine: nothing loads the collection into
the process, whatever its size.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.errors import IndexStoreError
from rag.records import Chunk, Hit
from rag.search.retrieve import MODES, Filters, Fusion, Retriever, fuse
from rag.search.timeexpr import prefer_recent
from rag.store.crosslex import embed_words, translatable
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
from rag.store.termtable import for_questions
from rag.text import detect_lang, has_hangul, tokens

_FIELDS = ["pk", "doc_id", "text", "span_start", "span_end", "lang", "doc", "dense", "sentences"]
QUESTIONS_PER_CALL = 32  # questions whose candidates one Milvus search call asks for
KEYS_PER_QUERY = 512  # primary keys per query call
REMEMBERED = 1024  # rows of recent searches kept for the answer path
MANIFEST_CHECK_SECONDS = 1.0  # how often an open retriever looks for a newer build of its collection


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
    """A Milvus collection seen through the folder ``Index``'s attributes the server reads: the
    manifest, the documents' metadata (read once), and the passages' text streamed page by page
    (``chunks``, no vectors). Vectors are never read wholesale: the retriever asks for the rows it
    needs by primary key, and remembers the rows of its last searches (:meth:`remember`)."""

    def __init__(self, client: Any, name: str, manifest: dict[str, Any]) -> None:
        self.client = client
        self.name = name
        self.path = Path(name)
        self.manifest = manifest
        self.dim = int(manifest["embedding"]["dim"])
        self.recent: OrderedDict[str, dict[str, Any]] = OrderedDict()  # pk -> row, newest last
        self.samples: dict[str, np.ndarray] = {}  # language -> a sample of passage vectors
        self._lock = threading.Lock()  # a server searches from several threads

    @property
    def model_id(self) -> str:
        return str(self.manifest["embedding"]["model"])

    @property
    def chunks(self) -> _Passages:
        return _Passages(self)

    @cached_property
    def docs(self) -> dict[str, dict[str, str]]:
        rows = iterate(self.client, self.name + "_meta", 'pk like "doc:%"', ["pk", "value"])
        return {r["pk"][4:]: json.loads(r["value"]) for r in rows}

    def refresh(self, manifest: dict[str, Any]) -> None:
        """Take a newer build's manifest: forget the metadata, rows and samples read under the old one."""
        with self._lock:
            self.manifest = manifest
            self.recent.clear()
            self.samples.clear()
            self.__dict__.pop("docs", None)

    def remember(self, rows: dict[str, dict[str, Any]]) -> None:
        """Keep the last ``REMEMBERED`` rows read (the answer path asks for the hits' vectors next)."""
        with self._lock:
            for pk, row in rows.items():
                self.recent[pk] = row
                self.recent.move_to_end(pk)
            while len(self.recent) > REMEMBERED:
                self.recent.popitem(last=False)

    def rows(self, pks: Sequence[str], fresh: bool = False) -> dict[str, dict[str, Any]]:
        """Rows by primary key: remembered ones (unless ``fresh``), the rest queried (a few hundred
        per call)."""
        out: dict[str, dict[str, Any]] = {}
        if not fresh:
            with self._lock:
                out = {p: self.recent[p] for p in pks if p in self.recent}
        todo = [p for p in dict.fromkeys(pks) if p not in out]
        for i in range(0, len(todo), KEYS_PER_QUERY):
            part = todo[i : i + KEYS_PER_QUERY]
            got = self.client.query(self.name, filter=f"pk in {_quoted(part)}", output_fields=_FIELDS)
            out.update({r["pk"]: r for r in got})
        return out


class _Passages:
    """Every passage of the collection without its vectors: ``len`` from the manifest, iteration
    page by page (nothing is kept)."""

    def __init__(self, index: MilvusIndex) -> None:
        self.index = index

    def __len__(self) -> int:
        return int(self.index.manifest["counts"]["chunks"])

    def __iter__(self) -> Iterator[Chunk]:
        fields = ["pk", "doc_id", "text", "span_start", "span_end", "lang"]
        return (_chunk(r) for r in iterate(self.index.client, self.index.name, "", fields))


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
        self.index = index  # type: ignore[assignment]  # the folder Index's attributes the server reads
        self.store = index
        self.embedder = embedder
        self.settings = settings
        self.fusion = fusion or Fusion()
        self._word_vectors: dict[str, np.ndarray] = {}
        self._table = for_questions(embedder, settings.term_table)
        self.client = index.client
        self.name = index.name
        self.counts = Counts(**index.manifest["bm25"])
        self._collection = index
        self.check_every = MANIFEST_CHECK_SECONDS
        self._checked = time.monotonic()

    def _follow_builds(self) -> None:
        """Replicas share one collection: at most every ``check_every`` seconds, read its manifest and,
        when ``rag index`` wrote a newer one, take its BM25 counts and drop what was read before, so
        every replica scores the new build as a fresh process would (the folder's live reload)."""
        now = time.monotonic()
        if now - self._checked < self.check_every:
            return
        self._checked = now
        manifest = read_manifest(self.client, self.name)
        if manifest is not None and manifest != self._collection.manifest:
            check_manifest(manifest, self.settings, f"Milvus collection {self.name!r}")
            self._collection.refresh(manifest)
            self.counts = Counts(**manifest["bm25"])

    def search_batch(
        self, questions: Sequence[str], k: int | None = None, filters: Filters | None = None, mode: str = "hybrid"
    ) -> list[list[Hit]]:
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
        k = k or self.settings.top_k
        self._follow_builds()
        if not questions or not self.counts.passages:
            return [[] for _ in questions]
        expr = filter_expr(filters)
        qvecs = self.embedder.encode_queries(list(questions)) if mode != "bm25" else None  # type: ignore[attr-defined]
        recent = bool(filters and filters.recent)
        out: list[list[Hit]] = []
        for i in range(0, len(questions), QUESTIONS_PER_CALL):
            part = list(questions[i : i + QUESTIONS_PER_CALL])
            vecs = None if qvecs is None else np.asarray(qvecs[i : i + QUESTIONS_PER_CALL], dtype=np.float32)
            # "latest": rank twice as many, then let newer ones move up (rag.search.timeexpr), as the folder does
            out += self._search(part, vecs, 2 * k if recent else k, expr, mode)
        return [prefer_recent(h)[:k] for h in out] if recent else out

    # ----------------------------------------------------------- internal
    def _search(self, questions: list[str], qvecs: np.ndarray | None, k: int, expr: str, mode: str) -> list[list[Hit]]:
        """One batch of questions: each retriever asks Milvus once for all of them."""
        n = max(self.settings.candidates, k)
        dense = self._ann("dense", [] if qvecs is None else [v.tolist() for v in qvecs], n, [expr])
        if mode == "dense":
            return self._hits_of([sorted(d.items(), key=lambda x: -x[1])[:k] for d in dense])
        words = [tokens(q) for q in questions]
        lex = self._bm25(words, self.fusion.pairs if mode != "bm25" else 0.0, n, expr)
        if mode == "bm25":
            return self._hits_of([sorted(b.items(), key=lambda x: -x[1])[:k] for b in lex])
        qlangs = [detect_lang(q) or "en" for q in questions]
        trans = self._mapped(words, qlangs, n, expr)
        rows = self._fetch(sorted({p for parts in (dense, lex, trans) for d in parts for p in d}))
        return [self._fused(qvecs[i] if qvecs is not None else None, qlangs[i], dense[i], lex[i], trans[i], rows, k)
                for i in range(len(questions))]

    def _fused(
        self, qvec: np.ndarray | None, qlang: str, dense: dict[str, float], lex: dict[str, float],
        trans: dict[str, float], by_pk: dict[str, dict[str, Any]], k: int,
    ) -> list[Hit]:
        rows = [by_pk[p] for p in sorted(set(dense) | set(lex) | set(trans)) if p in by_pk]
        if not rows:
            return []
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

    def _ann(self, field: str, data: Sequence[Any], n: int, exprs: Sequence[str]) -> list[dict[str, float]]:
        """Candidates of each query vector in one search call per distinct filter (``exprs``: one
        per query, or one for all); a query that is None or empty has none."""
        out: list[dict[str, float]] = [{} for _ in data]
        groups: dict[str, list[int]] = {}
        for i, q in enumerate(data):
            if q is not None and len(q):
                groups.setdefault(exprs[i] if len(exprs) > 1 else exprs[0], []).append(i)
        for expr, idx in groups.items():
            res = self.client.search(
                self.name, data=[data[i] for i in idx], anns_field=field, limit=n, filter=expr,
                output_fields=["pk"], search_params={"metric_type": "IP"},
            )
            for i, hits in zip(idx, res, strict=True):
                # a sparse match scores above 0; the dense part keeps every candidate, as FAISS does
                out[i] = {str(h["pk"]): float(h["distance"]) for h in hits if field == "dense" or h["distance"] > 0}
        return out

    def _df(self, keys: Iterable[int]) -> dict[int, int]:
        todo = sorted(set(keys))
        out: dict[int, int] = {}
        for i in range(0, len(todo), KEYS_PER_QUERY):
            part = todo[i : i + KEYS_PER_QUERY]
            rows = self.client.query(self.name + "_terms", filter=f"pk in {part}", output_fields=["df"])
            out.update({int(r["pk"]): int(r["df"]) for r in rows})
        return out

    def _bm25(self, words: Sequence[Sequence[str]], pairs: float, n: int, expr: str) -> list[dict[str, float]]:
        from rag.store.lexical import term_pairs

        df = self._df(
            term_id(t) for ws in words for t in [*ws, *(term_pairs(list(ws)) if pairs else [])]
        )
        return self._ann("bm25", [query_vector(ws, df, self.counts.passages, pairs) for ws in words], n, [expr])

    def _mapped(
        self, words: Sequence[Sequence[str]], qlangs: Sequence[str], n: int, expr: str
    ) -> list[dict[str, float]]:
        """BM25 of the questions' words mapped to the other script, on other-language passages."""
        if not self.fusion.translated:
            return [{} for _ in words]
        todo = [sorted({w for w in ws if translatable(w)}) for ws in words]
        every = sorted({w for t in todo for w in t})
        if not every:
            return [{} for _ in words]
        vecs = self._word_vectors_of(every)
        nearest: dict[str, int] = {}
        for hangul in (True, False):  # Latin words map to Hangul terms and the other way round
            idx = [i for i, w in enumerate(every) if has_hangul(w) != hangul]
            if not idx:
                continue
            res = self.client.search(
                self.name + "_terms", data=[vecs[i].tolist() for i in idx], anns_field="vector", limit=1,
                filter=f"has_vec == true and hangul == {str(hangul).lower()}", output_fields=["df"],
                search_params={"metric_type": "IP"},
            )
            nearest.update({every[i]: int(r[0]["pk"]) for i, r in zip(idx, res, strict=True) if r})
        keys = [[nearest[w] for w in t if w in nearest] for t in todo]
        df = self._df(k for ks in keys for k in ks)
        queries = [key_vector(ks, df, self.counts.passages) for ks in keys]
        exprs = [_and(expr, f"lang != {json.dumps(qlang)}") for qlang in qlangs]
        return self._ann("bm25", queries, n, exprs)

    def _word_vectors_of(self, words: list[str]) -> np.ndarray:
        """Vectors of question words as index terms have them: the stored term vector, else the shipped
        table's (common words), else embedded."""
        ids = [term_id(w) for w in words]
        rows = self.client.query(self.name + "_terms", filter=f"pk in {ids} and has_vec == true",
                                 output_fields=["vector"])
        stored = {int(r["pk"]): np.asarray(r["vector"], dtype=np.float32) for r in rows}
        todo = [w for w, i in zip(words, ids, strict=True) if i not in stored and w not in self._word_vectors]
        if todo:
            if len(self._word_vectors) + len(todo) > 4096:
                self._word_vectors.clear()
            self._word_vectors.update(embed_words(todo, self.embedder, self._table))
        return np.stack([stored[i] if i in stored else self._word_vectors[w] for w, i in zip(words, ids, strict=True)])

    def _fetch(self, pks: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The rows of ``pks`` (text, metadata, vectors) by primary key, as Milvus has them now (a
        search never answers from memory: ``rag index`` may have changed them); the index remembers
        them for the answer path, which asks for the hits' vectors next."""
        rows = self.store.rows(pks, fresh=True)
        self.store.remember(rows)
        return rows

    # ------------------------------------------ what the answer path reads (see Retriever)
    def passage_vectors(self, chunk_ids: Sequence[str]) -> np.ndarray:
        rows = self.store.rows(chunk_ids)
        missing = [c for c in chunk_ids if c not in rows]
        if missing:
            raise IndexStoreError(f"passages {missing[:3]} are no longer in Milvus collection {self.name!r} "
                                  "(re-indexed meanwhile): ask again")
        return np.asarray([rows[c]["dense"] for c in chunk_ids], dtype=np.float32).reshape(len(chunk_ids), -1)

    def sentence_vectors(self, chunk_id: str) -> np.ndarray | None:
        row = self.store.rows([chunk_id]).get(chunk_id)
        return None if row is None else decode_sentences(row["sentences"], self.store.dim).astype(np.float32)

    def sample_vectors(self, lang: str, n: int) -> np.ndarray:
        """Up to ``n`` passage vectors in ``lang``, read once per language (all of them when there are
        no more than ``n``, as the folder takes; else the first ``n`` Milvus returns)."""
        got = self.store.samples.get(lang)
        if got is None:
            expr = f"lang == {json.dumps(lang)}" if lang else ""
            rows = self.client.query(self.name, filter=expr, output_fields=["dense"], limit=n)
            got = np.asarray([r["dense"] for r in rows], dtype=np.float32).reshape(len(rows), self.store.dim)
            self.store.samples[lang] = got
        return got

    def doc_chunks(self, doc_id: str) -> list[Chunk]:
        rows = self.client.query(self.name, filter=f"doc_id == {json.dumps(doc_id, ensure_ascii=False)}",
                                 output_fields=["pk", "doc_id", "text", "span_start", "span_end", "lang"])
        return sorted((_chunk(r) for r in rows), key=lambda c: (c.start, c.chunk_id))

    def _hits_of(self, scored: list[list[tuple[str, float]]]) -> list[list[Hit]]:
        rows = self._fetch(sorted({p for s in scored for p, _ in s}))
        return [[self._hit(i + 1, rows[p], s) for i, (p, s) in enumerate(part) if p in rows] for part in scored]

    def _hit(self, rank: int, row: dict[str, Any], score: float) -> Hit:  # type: ignore[override]
        m = json.loads(row["doc"])
        return Hit(
            rank=rank, score=score, chunk=_chunk(row), title=m.get("title", ""), url=m.get("url", ""),
            outlet=m.get("outlet", ""), author=m.get("author", ""), published=m.get("published", ""),
        )
