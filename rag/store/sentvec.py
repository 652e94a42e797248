"""Sentence vectors: one embedding per sentence of every multi-sentence passage.

A question usually asks about one sentence of a passage, and it matches that
sentence better than the whole passage, above all across languages (an English
question against a Korean article). The retriever adds the best sentence's
similarity to the passage's own (see ``retrieve``). This module chooses the
sentences, gets their vectors with the passage's own (one forward pass, see
``rag.model.pooled``), saves them int8 scalar-quantised (one scale per
sentence) in ``.npy`` files of the index folder, reads the rows a question
needs from them on demand (``rowfile.RowFile``: not a memory map, which would
pin hundreds of KB of the file per row read), and scores candidate passages. It knows
nothing about FAISS, BM25 or fusion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.model.pooled import Span, encode_pooled
from rag.records import Chunk
from rag.store.rowfile import RowFile
from rag.text import split_sentences

VECTORS_FILE = "sentences.npy"  # int8 (n_sentences, dim); float16 in an index written before quantisation
SCALES_FILE = "sentence_scales.npy"  # float32 (n_sentences,): row i is sentences.npy[i] * scales[i]
OFFSETS_FILE = "sentence_offsets.npy"  # int64 (n_passages + 1): passage i owns rows offsets[i]:offsets[i + 1]
_BLOCK = 65_536  # rows quantised at a time (bounded memory at a million passages)
_PASSAGE_BLOCK = 8_192  # passages' sentence vectors assembled into int8 at a time
MIN_CHARS = 10  # shorter sentences ("네.", a dateline) match too many questions to be worth a vector


@dataclass(frozen=True)
class SentenceVectors:
    """Sentence vectors of every passage, grouped by passage row."""

    vectors: np.ndarray | RowFile  # float16 (n_sentences, dim), L2-normalised; int8 codes when ``scales`` is set
    offsets: np.ndarray  # int64 (n_passages + 1,)
    scales: np.ndarray | RowFile | None = None  # float32 (n_sentences,): the value of one int8 step, per row

    @classmethod
    def empty(cls, n_passages: int, dim: int) -> SentenceVectors:
        return cls(np.zeros((0, dim), np.float16), np.zeros(n_passages + 1, np.int64))

    def rows(self, take: np.ndarray) -> np.ndarray:
        """Sentence vectors ``take`` as float32 (int8 codes times their scale)."""
        out = np.asarray(self.vectors[take], dtype=np.float32)
        if self.scales is not None:
            out *= np.asarray(self.scales[take], dtype=np.float32)[:, None]
        return out

    def of(self, row: int) -> np.ndarray:
        """The sentence vectors of passage ``row`` (float32)."""
        return self.rows(np.arange(self.offsets[row], self.offsets[row + 1]))

    def best(self, rows: np.ndarray, qvec: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """Per passage row, the highest inner product of ``qvec`` with one of its sentences;
        ``fallback`` (e.g. the passage's own score) for passages without sentence vectors."""
        out = np.array(fallback, dtype=np.float32)
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        has = ends > starts
        if not has.any():
            return out
        lens = (ends - starts)[has]
        take = np.concatenate([np.arange(s, e) for s, e in zip(starts[has], ends[has], strict=True)])
        sims = self.rows(take) @ np.asarray(qvec, dtype=np.float32)
        firsts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        out[has] = np.maximum.reduceat(sims, firsts)
        return out

    def save(self, folder: Path) -> None:
        """Write the int8 codes, their scales and the offsets (see :func:`quantise`)."""
        codes, scales = (self.vectors, self.scales) if self.scales is not None else quantise(np.asarray(self.vectors))
        np.save(folder / VECTORS_FILE, np.ascontiguousarray(codes, dtype=np.int8))
        np.save(folder / SCALES_FILE, np.ascontiguousarray(scales, dtype=np.float32))
        np.save(folder / OFFSETS_FILE, np.ascontiguousarray(self.offsets, dtype=np.int64))

    @classmethod
    def load(cls, folder: Path, n_passages: int, dim: int) -> SentenceVectors:
        """Read on demand (``RowFile``); raises ValueError (with the file name) when the files do not fit
        the passages."""
        vectors = RowFile(folder / VECTORS_FILE)
        offsets = np.load(folder / OFFSETS_FILE)
        scales = RowFile(folder / SCALES_FILE) if (folder / SCALES_FILE).exists() else None
        if offsets.shape != (n_passages + 1,) or (n_passages and offsets[-1] != len(vectors)):
            raise ValueError(f"{folder / OFFSETS_FILE} does not match {n_passages} passages")
        if vectors.ndim != 2 or vectors.shape[1] != dim:
            raise ValueError(f"{folder / VECTORS_FILE} has shape {vectors.shape}, expected (n, {dim})")
        if (scales is None) != (vectors.dtype != np.int8) or (scales is not None and scales.shape != (len(vectors),)):
            raise ValueError(f"{folder / SCALES_FILE} does not fit {folder / VECTORS_FILE} ({vectors.dtype})")
        return cls(vectors, offsets, scales)


def quantise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 scalar quantisation, one scale per row (its largest component / 127): a
    cosine moves by about 1e-3, well below the gaps that order passages."""
    codes = np.zeros(vectors.shape, np.int8)
    scales = np.zeros(len(vectors), np.float32)
    for at in range(0, len(vectors), _BLOCK):
        v = np.asarray(vectors[at : at + _BLOCK], dtype=np.float32)
        s = np.abs(v).max(axis=1) / 127.0 if len(v) else np.zeros(0, np.float32)
        s[s == 0] = 1.0
        codes[at : at + _BLOCK] = np.clip(np.rint(v / s[:, None]), -127, 127).astype(np.int8)
        scales[at : at + _BLOCK] = s
    return codes, scales


def sentence_spans(c: Chunk, spans: Sequence[Span] | None = None) -> list[Span]:
    """Spans (into ``c.text``) of the sentences of a passage that get their own vector: none for
    a one-sentence passage. ``spans`` are the passage's sentence spans when the caller has them
    already (``rag.ingest.chunking.chunk_with_sentences``)."""
    spans = split_sentences(c.text, c.lang or None) if spans is None else spans
    kept = [(s, e) for s, e in spans if e - s >= MIN_CHARS]
    return kept if len(kept) > 1 else []


def sentence_texts(c: Chunk, spans: Sequence[Span] | None = None) -> list[str]:
    """The texts of :func:`sentence_spans`."""
    return [c.text[s:e] for s, e in sentence_spans(c, spans)]


def embed_chunks(
    embedder: Any, chunks: Sequence[Chunk], spans: Sequence[Sequence[Span] | None],
    progress: Callable[[int], None] | None = None, pooled: bool = True,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The model's work for a batch of passages: their vectors (float32 ``(n, dim)``) and, per
    passage, its sentence vectors (float16), pooled from the same forward pass
    (:func:`rag.model.pooled.encode_pooled`), or with ``pooled=False`` each sentence encoded alone.
    ``spans[i]``: chunk i's sentence spans, or None to split it."""
    chosen = [sentence_spans(c, s) for c, s in zip(chunks, spans, strict=True)]
    vectors, sentences = encode_pooled(embedder, [c.text for c in chunks], chosen, progress, pooled)
    return vectors, [s.astype(np.float16) for s in sentences]


def assemble(parts: Sequence[np.ndarray], dim: int, quantised: bool = False) -> SentenceVectors:
    """SentenceVectors from each passage's sentence vectors, in passage row order; ``quantised``:
    as the int8 codes and scales the index stores (:func:`quantise`, block by block: the float16
    rows of all passages are never held twice)."""
    counts = np.array([len(p) for p in parts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if quantised:
        codes = np.zeros((int(offsets[-1]), dim), np.int8)
        scales = np.zeros(int(offsets[-1]), np.float32)
        for at in range(0, len(parts), _PASSAGE_BLOCK):
            lo, hi = int(offsets[at]), int(offsets[min(at + _PASSAGE_BLOCK, len(parts))])
            if hi > lo:
                block = np.concatenate(
                    [np.asarray(p, np.float16).reshape(-1, dim) for p in parts[at : at + _PASSAGE_BLOCK]])
                codes[lo:hi], scales[lo:hi] = quantise(block)
        return SentenceVectors(codes, offsets, scales)
    vectors = np.concatenate([np.asarray(p, np.float16).reshape(-1, dim) for p in parts]) if parts else None
    return SentenceVectors(vectors if vectors is not None else np.zeros((0, dim), np.float16), offsets)
