"""Sentence vectors: one embedding per sentence of every multi-sentence passage.

A question usually asks about one sentence of a passage, and it matches that
sentence better than the whole passage, above all across languages (an English
question against a Korean article). The retriever adds the best sentence's
similarity to the passage's own (see ``retrieve``). This module builds the
vectors (reusing those of unchanged passages), saves and loads them as two
``.npy`` files of the index folder, and scores candidate passages. It knows
nothing about FAISS, BM25 or fusion.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.records import Chunk
from rag.text import split_sentences

VECTORS_FILE = "sentences.npy"  # float16 (n_sentences, dim)
OFFSETS_FILE = "sentence_offsets.npy"  # int64 (n_passages + 1): passage i owns rows offsets[i]:offsets[i + 1]
MIN_CHARS = 10  # shorter sentences ("네.", a dateline) match too many questions to be worth a vector


@dataclass(frozen=True)
class SentenceVectors:
    """Sentence vectors of every passage, grouped by passage row."""

    vectors: np.ndarray  # float16 (n_sentences, dim), L2-normalised
    offsets: np.ndarray  # int64 (n_passages + 1,)

    @classmethod
    def empty(cls, n_passages: int, dim: int) -> SentenceVectors:
        return cls(np.zeros((0, dim), np.float16), np.zeros(n_passages + 1, np.int64))

    def of(self, row: int) -> np.ndarray:
        return self.vectors[self.offsets[row] : self.offsets[row + 1]]

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
        sims = self.vectors[take].astype(np.float32) @ np.asarray(qvec, dtype=np.float32)
        firsts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        out[has] = np.maximum.reduceat(sims, firsts)
        return out

    def save(self, folder: Path) -> None:
        np.save(folder / VECTORS_FILE, np.ascontiguousarray(self.vectors, dtype=np.float16))
        np.save(folder / OFFSETS_FILE, np.ascontiguousarray(self.offsets, dtype=np.int64))

    @classmethod
    def load(cls, folder: Path, n_passages: int, dim: int) -> SentenceVectors:
        """Raises ValueError (with the file name) when the files do not fit the passages."""
        vectors = np.load(folder / VECTORS_FILE, mmap_mode="r")
        offsets = np.load(folder / OFFSETS_FILE)
        if offsets.shape != (n_passages + 1,) or (n_passages and offsets[-1] != len(vectors)):
            raise ValueError(f"{folder / OFFSETS_FILE} does not match {n_passages} passages")
        if vectors.ndim != 2 or vectors.shape[1] != dim:
            raise ValueError(f"{folder / VECTORS_FILE} has shape {vectors.shape}, expected (n, {dim})")
        return cls(vectors, offsets)


def sentence_texts(c: Chunk, spans: Sequence[tuple[int, int]] | None = None) -> list[str]:
    """The sentences of a passage that get their own vector: none for a one-sentence passage.
    ``spans`` are the passage's sentence spans when the caller has them already."""
    spans = split_sentences(c.text, c.lang or None) if spans is None else spans
    texts = [c.text[s:e] for s, e in spans if e - s >= MIN_CHARS]
    return texts if len(texts) > 1 else []


def build(
    chunks: Sequence[Chunk], keys: Sequence[str], old: SentenceVectors | None, old_rows: dict[str, int],
    embedder: Any, progress: bool,
) -> tuple[SentenceVectors, int]:
    """Sentence vectors for ``chunks`` (``keys[i]`` identifies chunk i's text); those of a
    passage whose key is in ``old_rows`` are copied from ``old``. Returns them and how many
    sentences went through the model."""
    from tqdm import tqdm

    parts: list[np.ndarray] = []
    todo_texts: list[str] = []
    todo_slots: list[tuple[int, int]] = []  # (index in parts, number of sentences)
    for c, key in zip(chunks, keys, strict=True):
        if old is not None and key in old_rows:
            parts.append(np.asarray(old.of(old_rows[key]), dtype=np.float16))
            continue
        texts = sentence_texts(c)
        todo_slots.append((len(parts), len(texts)))
        todo_texts.extend(texts)
        parts.append(np.zeros((len(texts), embedder.dim), np.float16))
    if todo_texts:
        with tqdm(total=len(todo_texts), desc="sentences", unit="sentence", disable=not progress,
                  file=sys.stderr) as bar:
            vecs = embedder.encode_passages(todo_texts, progress=bar.update).astype(np.float16)
        at = 0
        for slot, n in todo_slots:
            parts[slot] = vecs[at : at + n]
            at += n
    counts = np.array([len(p) for p in parts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    vectors = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float16)
    return SentenceVectors(vectors.reshape(-1, embedder.dim), offsets), len(todo_texts)
