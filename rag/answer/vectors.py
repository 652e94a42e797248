"""Vectors for the answer step: the query vector remembered, sentence spans and sentence vectors.

Retrieval embeds the question and so does the answerer, which needs the vector
for absolute cosines: :func:`memoized` makes that one model call. The index's
stored sentence vectors are looked up by sentence text; a sentence the index
has no vector for is embedded once per process (:func:`embed_sentences`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.records import Hit
from rag.search.retrieve import Retriever
from rag.store.sentvec import sentence_texts
from rag.text import split_sentences


class _QueryMemo:
    """The retriever's embedder, remembering the last few query vectors.

    Retrieval embeds the question and so does the answerer (it needs the vector
    for absolute cosines): with this wrapper that is one model call, not two.
    """

    def __init__(self, inner: Any, size: int = 32) -> None:
        self._inner = inner
        self._size = size
        self._memo: dict[str, np.ndarray] = {}

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) != 1:
            return np.asarray(self._inner.encode_queries(texts))
        vec = self._memo.get(texts[0])
        if vec is None:
            vec = np.asarray(self._inner.encode_queries(list(texts)))[0]
            if len(self._memo) >= self._size:
                self._memo.pop(next(iter(self._memo)))
            self._memo[texts[0]] = vec
        return vec[None, :]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


_MEMO: dict[int, tuple[Retriever, Retriever]] = {}


def memoized(retriever: Retriever) -> Retriever:
    """A retriever over the same index whose embedder remembers query vectors (one per retriever)."""
    if isinstance(retriever.embedder, _QueryMemo):
        return retriever
    cached = _MEMO.get(id(retriever))
    if cached is None or cached[0] is not retriever or cached[1].index is not retriever.index:
        view = type(retriever)(retriever.index, _QueryMemo(retriever.embedder), retriever.settings, retriever.fusion)
        cached = (retriever, view)
        if len(_MEMO) > 8:
            _MEMO.clear()
        _MEMO[id(retriever)] = cached
    return cached[1]


@functools.lru_cache(maxsize=4096)
def sentence_spans(text: str, lang: str) -> tuple[tuple[int, int], ...]:
    """Sentence spans of a passage (cached: the same passages come back for many questions)."""
    return tuple(split_sentences(text, lang or None))


def contextual_sentences(retriever: Retriever) -> bool:
    """Whether the index's sentence vectors come from their passage's pass (``pooled*`` kinds,
    ``rag.model.pooled``): they carry the passage's context, so they are not a sentence's own."""
    manifest = getattr(retriever.index, "manifest", None) or {}
    kind = (manifest.get("params") or {}).get("sentence_vectors", "alone")
    return str(kind).startswith("pooled")


def stored_sentence_vectors(retriever: Retriever, hits: list[Hit]) -> dict[str, np.ndarray]:
    """The sentence vectors the index holds for the hits' passages, by sentence text."""
    out: dict[str, np.ndarray] = {}
    for h in hits:
        vecs = retriever.sentence_vectors(h.chunk.chunk_id)
        if vecs is None:
            return {}
        texts = sentence_texts(h.chunk, sentence_spans(h.chunk.text, h.chunk.lang))
        if len(texts) == len(vecs):
            out.update(zip(texts, vecs, strict=True))
    return out


_SENTENCE_VECS: dict[tuple[str, str], np.ndarray] = {}
SENTENCE_CACHE = 8192  # source sentence vectors kept per process (1.5 KB each)


def embed_sentences(embedder: Any, texts: list[str]) -> list[np.ndarray]:
    """Passage vectors of source sentences; a sentence of the index is embedded once per process."""
    model = str(getattr(embedder, "checksum", "") or getattr(embedder, "model_id", ""))
    found = {t: _SENTENCE_VECS.get((model, t)) for t in texts}
    todo = [t for t, v in found.items() if v is None]
    if todo:
        if len(_SENTENCE_VECS) + len(todo) > SENTENCE_CACHE:
            _SENTENCE_VECS.clear()
        for t, v in zip(todo, embedder.encode_passages(todo), strict=True):
            found[t] = _SENTENCE_VECS[(model, t)] = np.asarray(v, dtype=np.float32)
    return [found[t] for t in texts]  # type: ignore[misc]
