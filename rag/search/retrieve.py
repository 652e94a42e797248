"""Hybrid retrieval: dense (FAISS) + BM25, language-aware fusion, filters -> ``Hit``s.

Fusion is a convex mix of the min-max normalised dense score and the
max-normalised BM25 score of each candidate (single terms plus adjacent term
pairs, so phrases count). The dense score of a passage is
its own similarity plus a share of its best sentence's (multi-vector: a
question usually asks about one sentence, which matters most across languages).
Across languages a third score joins: BM25 of the question's words mapped onto
index terms of the other script (see ``crosslex``). The BM25 weight depends on whether
the question and the passage are in the same language: across languages the
only lexical matches are chance Latin tokens (names, acronyms), so they get a
small weight instead of full weight. Weights were chosen on whole evaluation
sets (see README, "Retrieval quality"). Reranking and answer building live
elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.records import Chunk, Hit
from rag.search.timeexpr import prefer_recent
from rag.store.crosslex import WORD_CACHE, translatable
from rag.store.indexfiles import Index
from rag.store.rowfile import MappedPages
from rag.store.termtable import for_questions
from rag.text import detect_lang, tokens

MODES = ("hybrid", "dense", "bm25")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Fusion:
    """Weights of the BM25 part of the fused score (the dense part has weight 1)."""

    same_lang: float = 0.35  # question and passage in the same language
    cross_lang: float = 0.2  # e.g. English question, Korean passage: only chance Latin tokens match
    sentence: float = 0.7  # share of the best sentence's similarity added to the passage's
    translated: float = 0.15  # BM25 of question words mapped to the other script, other-language passages only
    pairs: float = 1.0  # BM25 of the question's adjacent term pairs, added to its single-term BM25


@dataclass(frozen=True)
class Filters:
    """Optional restrictions on which documents may be returned."""

    outlet: str = ""  # exact outlet name, case-insensitive
    date_from: str = ""  # ISO date, inclusive; documents without a date are excluded
    date_to: str = ""  # ISO date, inclusive
    recent: bool = False  # prefer newer articles among relevant ones ("latest", "최근"; rag.search.timeexpr)
    undated: bool = False  # documents without a date pass the date filters (a question naming dates; timescope)

    def active(self) -> bool:
        return bool(self.outlet or self.date_from or self.date_to)


class Retriever:
    """Searches one loaded index with the embedding model recorded in its manifest."""

    def __init__(self, index: Index, embedder: object, settings: Settings, fusion: Fusion | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.fusion = fusion or Fusion()
        self._chunk_langs = index.chunks.langs  # one code per row, no passage decoded
        self._word_vectors: dict[str, np.ndarray] = {}  # question words embedded for cross-language BM25
        self._word_terms: dict[str, str | None] = {}  # question word -> its nearest index term of the other script
        self._table = for_questions(embedder, settings.term_table)  # common words: no second model pass
        # files this process maps read-only (BM25 arrays, FAISS, the ONNX weights): their pages are
        # dropped from its resident memory after each search (they stay in the page cache)
        self._pages = MappedPages((index.path, Path(settings.cache_dir) / "onnx"))
        self._other_lang: dict[str, np.ndarray] = {}  # question language -> rows in another language

    @classmethod
    def open(cls, settings: Settings, index_dir: str | Path | None = None) -> Retriever:
        """Open the index in the store ``RAG_STORE`` names (validated) and its embedding model (the
        ONNX export when there is one)."""
        from rag.store.base import open_store

        store = open_store(settings)  # an unknown RAG_STORE or a missing extra is a RagError here
        if store.name == "milvus":
            from rag.search.milvus import open_retriever

            return open_retriever(settings, index_dir)
        from rag.model.encoder import load_query_embedder
        from rag.store.indexfiles import load_index

        return cls(load_index(index_dir or settings.index_dir, settings), load_query_embedder(settings), settings)

    # ------------------------------------------------------------ public
    def search(
        self, question: str, k: int | None = None, filters: Filters | None = None, mode: str = "hybrid"
    ) -> list[Hit]:
        """Top-``k`` passages for one question."""
        return self.search_batch([question], k, filters, mode)[0]

    def search_batch(
        self, questions: Sequence[str], k: int | None = None, filters: Filters | None = None, mode: str = "hybrid"
    ) -> list[list[Hit]]:
        """Like :meth:`search` for many questions; queries are embedded in one batch."""
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
        k = k or self.settings.top_k
        if not questions or not len(self.index.chunks):
            return [[] for _ in questions]
        allowed = self._allowed(filters) if filters and filters.active() else None
        if allowed is not None and len(allowed) == 0:
            return [[] for _ in questions]
        qvecs = (
            self.embedder.encode_queries(list(questions))  # type: ignore[attr-defined]
            if mode != "bm25"
            else None
        )
        recent = bool(filters and filters.recent)
        out = []
        for i, q in enumerate(questions):
            # "latest": rank twice as many, then let newer ones move up by a small bonus (rag.search.timeexpr)
            scored = self._rank(q, None if qvecs is None else qvecs[i], 2 * k if recent else k, allowed, mode)
            hits = [self._hit(r + 1, row, s) for r, (row, s) in enumerate(scored)]
            out.append(prefer_recent(hits)[:k] if recent else hits)
        self._pages.trim()
        return out

    def vector_of(self, row: int) -> np.ndarray:
        return self.index.vectors()[row]

    def chunk(self, row: int) -> Chunk:
        return self.index.chunks[row]

    # ------------------------------- what the answer path reads of the index (every store has these)
    def passage_vectors(self, chunk_ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of these passages, float32, one row each."""
        rows = [self.index.chunks.row_of(c) for c in chunk_ids]
        return np.asarray(self.index.vectors()[rows], dtype=np.float32)

    def sentence_vectors(self, chunk_id: str) -> np.ndarray | None:
        """The stored sentence vectors of one passage (None when the index keeps none)."""
        stored = self.index.sentences
        return None if stored is None else np.asarray(stored.of(self.index.chunks.row_of(chunk_id)), dtype=np.float32)

    def sample_vectors(self, lang: str, n: int) -> np.ndarray:
        """About ``n`` passage vectors in ``lang`` ("" = any), spread evenly over the index."""
        pool = np.flatnonzero(self._chunk_langs == lang) if lang else np.arange(len(self._chunk_langs))
        return np.asarray(self.index.vectors()[pool[:: max(1, len(pool) // n)]])

    def doc_chunks(self, doc_id: str) -> list[Chunk]:
        """The passages of one document, in index order."""
        store = self.index.chunks
        return [store[int(r)] for r in store.rows_of_doc(doc_id)]

    # ----------------------------------------------------------- internal
    def _rank(
        self, question: str, qvec: np.ndarray | None, k: int, allowed: np.ndarray | None, mode: str
    ) -> list[tuple[int, float]]:
        n_cand = max(self.settings.candidates, k)
        dense: dict[int, float] = {}
        if qvec is not None:
            ids, scores = self.index.dense_search(qvec, n_cand, allowed)
            dense = dict(zip(ids.tolist(), scores.tolist(), strict=True))
        if mode == "dense":
            return sorted(dense.items(), key=lambda x: -x[1])[:k]
        words = tokens(question)  # Kiwi runs once per question, for both lexical scores
        lex_scores = self.index.lexical.term_scores(words)
        if mode == "bm25":  # plain single-term BM25, the baseline that hybrid is measured against
            return sorted(_top(lex_scores, allowed, n_cand).items(), key=lambda x: -x[1])[:k]
        if self.fusion.pairs:
            lex_scores = lex_scores + self.fusion.pairs * self.index.lexical.pair_scores(words)
        lex = _top(lex_scores, allowed, n_cand)
        qlang = detect_lang(question) or "en"
        return self._fuse(qlang, qvec, dense, lex, self._translated(words, qlang, allowed, n_cand), k)

    def _translated(
        self, words: list[str], qlang: str, allowed: np.ndarray | None, n_cand: int
    ) -> dict[int, float]:
        """BM25 of the question's words mapped to the other script, on other-language passages."""
        terms = self.index.terms
        other = self._other_lang.get(qlang)
        if other is None:
            other = self._other_lang.setdefault(qlang, self._chunk_langs != qlang)
        if terms is None or not self.fusion.translated or not other.any():
            return {}
        todo = sorted({w for w in words if translatable(w)})
        if not todo:
            return {}
        mapped = self._nearest_terms(todo)
        return _top(self.index.lexical.term_scores(mapped), allowed, n_cand, keep=other)

    def _nearest_terms(self, words: list[str]) -> list[str]:
        """``TermVectors.nearest_other_script`` of each word, remembered: a word's nearest term
        depends on the index alone, and the comparison with every term is most of the cost."""
        terms = self.index.terms
        todo = [w for w in words if w not in self._word_terms]
        if todo and terms is not None:
            found = terms.nearest_each(todo, terms.word_vectors(todo, self.embedder, self._word_vectors, self._table))
            if len(self._word_terms) + len(todo) > WORD_CACHE:
                self._word_terms.clear()
            self._word_terms.update(zip(todo, found, strict=True))
        return [t for t in (self._word_terms.get(w) for w in words) if t is not None]

    def _fuse(
        self, qlang: str, qvec: np.ndarray | None, dense: dict[int, float], lex: dict[int, float],
        trans: dict[int, float], k: int,
    ) -> list[tuple[int, float]]:
        rows = np.array(sorted(set(dense) | set(lex) | set(trans)), dtype=np.int64)
        if len(rows) == 0:
            return []
        # dense scores of BM25-only candidates are computed exactly, not guessed
        vecs = self.index.vectors()[rows]
        d = vecs @ np.asarray(qvec, dtype=np.float32) if qvec is not None else np.zeros(len(rows))
        if qvec is not None and self.index.sentences is not None and self.fusion.sentence:
            d = d + self.fusion.sentence * self.index.sentences.best(rows, qvec, fallback=d)
        b = np.array([lex.get(int(r), 0.0) for r in rows], dtype=np.float32)
        t = np.array([trans.get(int(r), 0.0) for r in rows], dtype=np.float32)
        fused = fuse(self.fusion, d, b, t, self._chunk_langs[rows] == qlang)
        order = np.argsort(-fused)[:k]
        return [(int(rows[i]), float(fused[i])) for i in order]

    def _allowed(self, f: Filters) -> np.ndarray:
        ok_docs = {
            doc_id
            for doc_id, m in self.index.docs.items()
            if (not f.outlet or m.get("outlet", "").casefold() == f.outlet.casefold())
            and ((f.undated and not _day(m))
                 or ((not f.date_from or (_day(m) and _day(m) >= f.date_from))
                     and (not f.date_to or (_day(m) and _day(m) <= f.date_to))))
        }
        return self.index.chunks.rows_of_docs(ok_docs)

    def _hit(self, rank: int, row: int, score: float) -> Hit:
        c = self.index.chunks[row]
        m = self.index.docs.get(c.doc_id, {})
        return Hit(
            rank=rank, score=score, chunk=c, title=m.get("title", ""), url=m.get("url", ""),
            outlet=m.get("outlet", ""), author=m.get("author", ""), published=m.get("published", ""),
        )


def fuse(fusion: Fusion, d: np.ndarray, b: np.ndarray, t: np.ndarray, same: np.ndarray) -> np.ndarray:
    """The fused score of each candidate from its dense (``d``, sentence share included), BM25
    (``b``) and translated BM25 (``t``) scores; ``same``: the passage is in the question's language.
    Every store fuses with this one function."""
    lo, hi = float(d.min()), float(d.max())
    d_norm = (d - lo) / (hi - lo) if hi > lo else np.ones_like(d)
    b_norm = b / b.max() if b.max() > 0 else b
    t_norm = t / t.max() if t.max() > 0 else t
    w = np.where(same, fusion.same_lang, fusion.cross_lang)
    wt = np.where(same, 0.0, fusion.translated)
    return np.asarray((d_norm + w * b_norm + wt * t_norm) / (1.0 + w + wt))


def _day(meta: dict[str, str]) -> str:
    """The ISO day a document was published ("" when its date is missing or not ISO: such a
    document never matches a date filter, rather than comparing as text)."""
    day = meta.get("published", "")[:10]
    return day if _ISO_DAY.fullmatch(day) else ""


def _top(scores: np.ndarray, allowed: np.ndarray | None, n: int, keep: np.ndarray | None = None) -> dict[int, float]:
    """The ``n`` best rows with a positive score, among ``allowed`` rows when given and rows where
    ``keep`` is true; best first, ties by row. Only the rows with a score are ranked: BM25 scores
    are sparse, and a sort or partition of all of a million scores costs more than BM25 itself."""
    rows = np.flatnonzero(scores > 0) if allowed is None else np.asarray(allowed, np.int64)
    if allowed is not None:
        rows = rows[scores[rows] > 0]
    if keep is not None:
        rows = rows[keep[rows]]
    vals = scores[rows]
    if len(rows) > n:
        part = np.argpartition(-vals, n - 1)[:n]
        rows, vals = rows[part], vals[part]
    order = np.lexsort((rows, -vals))
    return {int(rows[i]): float(vals[i]) for i in order}
