"""BM25 over Kiwi morphemes (Korean) and stopword-filtered words (English), and over adjacent pairs.

A thin wrapper over ``bm25s``: build from passage texts, save into / load from
a folder, score one question against every passage. Besides the single
terms there is a second BM25 index over adjacent term pairs ("공공 기관",
"new york"), so a passage that has the question's words side by side, as a
phrase, scores above one that merely has them somewhere. Pairs are hashed into
``PAIR_BUCKETS`` buckets (nearly every pair of a big archive is new, and a
vocabulary of tens of millions of strings would not fit in memory); an index
written before that keeps its string pairs and is read as before. Both indexes
are memory-mapped on load. It knows nothing about FAISS, fusion or files other
than its own folder.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from rag.text import tokens_batch

PAIRS_FOLDER = "pairs"  # inside the BM25 folder: string pairs (indexes written before hashing)
HASHED_FOLDER = "pairs-hashed"  # inside the BM25 folder: hashed pairs, and BUCKETS_FILE
BUCKETS_FILE = "buckets.npy"  # int32, sorted: the buckets that occur; bucket buckets[i] is BM25 term i
PAIR_BUCKETS = 1 << 24  # 16M: a few pairs per bucket at 1M passages, almost none below 100k
_NOTHING = "\x00"  # the one term of an index whose passages have none (bm25s cannot index no terms)


def term_pairs(terms: Sequence[str]) -> list[str]:
    """Adjacent pairs of a term sequence (``rag.text.tokens`` order), as one string each."""
    return [f"{a} {b}" for a, b in pairwise(terms)]


def pair_buckets(terms: Sequence[str]) -> np.ndarray:
    """The hashed buckets (CRC-32 modulo ``PAIR_BUCKETS``) of the adjacent pairs of ``terms``."""
    return np.array([zlib.crc32(p.encode("utf-8")) % PAIR_BUCKETS for p in term_pairs(terms)], dtype=np.int32)


def _bm25(corpus_tokens: list[list[str]]) -> Any:
    import bm25s

    bm25 = bm25s.BM25()
    if not any(corpus_tokens):  # no passage, or passages without a single term (e.g. only symbols)
        corpus_tokens = [[_NOTHING], *corpus_tokens[1:]]
    bm25.index(corpus_tokens, show_progress=False)
    return bm25


def _hashed_pairs(corpus_tokens: list[list[str]]) -> tuple[Any, np.ndarray]:
    """BM25 over hashed pairs: the index's terms are the buckets that occur, numbered in order."""
    import bm25s

    per_doc = [pair_buckets(t) for t in corpus_tokens]
    used = np.unique(np.concatenate(per_doc)) if per_doc else np.zeros(0, np.int32)
    if not len(used):
        # bm25s cannot index no terms: the first passage gets a bucket no pair hashes to
        used = np.array([PAIR_BUCKETS], np.int32)
        per_doc = [used, *per_doc[1:]]
    ids = [np.searchsorted(used, b).tolist() for b in per_doc]
    bm25 = bm25s.BM25()
    bm25.index((ids, {str(i): i for i in range(len(used))}), show_progress=False, create_empty_token=False)
    bm25.vocab_dict = {}  # term i is buckets[i]: no vocabulary file needed
    return bm25, used.astype(np.int32)


def _scores(bm25: Any, terms: Sequence[str], size: int) -> np.ndarray:
    q = [t for t in terms if t and t in bm25.vocab_dict]
    if not q:
        return np.zeros(size, dtype=np.float32)
    return np.asarray(bm25.get_scores(q), dtype=np.float32)[:size]


class Lexical:
    """A BM25 index whose row ``i`` is passage ``i`` of the chunk store."""

    def __init__(self, bm25: Any, size: int, pairs: Any = None, buckets: np.ndarray | None = None) -> None:
        self._bm25 = bm25
        self._pairs = pairs
        self._buckets = buckets  # hashed pairs: the bucket of each pair term; None: string pairs
        self.size = size

    @classmethod
    def build(cls, texts: Sequence[str]) -> Lexical:
        return cls.from_tokens(tokens_batch(list(texts)))

    @classmethod
    def from_tokens(cls, corpus_tokens: list[list[str]]) -> Lexical:
        """The index of passages already cut into terms (:func:`rag.text.tokens_batch`)."""
        pairs, buckets = _hashed_pairs(corpus_tokens)
        return cls(_bm25(corpus_tokens), len(corpus_tokens), pairs, buckets)

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)
        if self._pairs is not None and self._buckets is not None:
            self._pairs.save(str(folder / HASHED_FOLDER), show_progress=False)
            np.save(folder / HASHED_FOLDER / BUCKETS_FILE, self._buckets)
        elif self._pairs is not None:
            self._pairs.save(str(folder / PAIRS_FOLDER), show_progress=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> Lexical:
        import bm25s

        bm25 = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0, mmap=True)
        pairs, buckets = None, None
        if (folder / HASHED_FOLDER).is_dir():
            pairs = bm25s.BM25.load(
                str(folder / HASHED_FOLDER), show_progress=False, verbosity=0, mmap=True, load_vocab=False
            )
            buckets = np.load(folder / HASHED_FOLDER / BUCKETS_FILE, mmap_mode="r")
        elif (folder / PAIRS_FOLDER).is_dir():
            pairs = bm25s.BM25.load(str(folder / PAIRS_FOLDER), show_progress=False, verbosity=0, mmap=True)
        return cls(bm25, size, pairs, buckets)

    def vocabulary(self) -> list[str]:
        """Every single term that occurs in some passage."""
        return [t for t in self._bm25.vocab_dict if t and t != _NOTHING]

    def term_scores(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 score of a bag of terms (``rag.text.tokens`` of a question) against every passage;
        unknown terms count for nothing, zeros when nothing matches."""
        if self.size == 0:
            return np.zeros(0, dtype=np.float32)
        return _scores(self._bm25, terms, self.size)

    def pair_scores(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 score of the adjacent pairs of ``terms`` (a question's tokens, in order); zeros
        when no pair occurs in any passage, or the index was built before pairs existed."""
        if self.size == 0 or self._pairs is None:
            return np.zeros(self.size, dtype=np.float32)
        if self._buckets is None:
            return _scores(self._pairs, term_pairs(terms), self.size)
        wanted = pair_buckets(terms)
        at = np.searchsorted(self._buckets, wanted)
        found = at < len(self._buckets)
        found[found] = self._buckets[at[found]] == wanted[found]
        if not found.any():
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._pairs.get_scores(at[found].tolist()), dtype=np.float32)[: self.size]
