"""BM25 over Kiwi morphemes (Korean) and stopword-filtered words (English), and over adjacent pairs.

A thin wrapper over ``bm25s``: build from passage texts, save into / load from
a folder, score one question against every passage. Besides the single
terms there is a second BM25 index over adjacent term pairs ("공공 기관",
"new york"), so a passage that has the question's words side by side, as a
phrase, scores above one that merely has them somewhere. It knows nothing
about FAISS, fusion or files other than its own folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from rag.text import tokens_batch

PAIRS_FOLDER = "pairs"  # inside the BM25 folder; an index built before pairs existed has none
_NOTHING = "\x00"  # the one term of an index whose passages have none (bm25s cannot index no terms)


def term_pairs(terms: Sequence[str]) -> list[str]:
    """Adjacent pairs of a term sequence (``rag.text.tokens`` order), as one string each."""
    return [f"{a} {b}" for a, b in pairwise(terms)]


def _bm25(corpus_tokens: list[list[str]]) -> Any:
    import bm25s

    bm25 = bm25s.BM25()
    if not any(corpus_tokens):  # no passage, or passages without a single term (e.g. only symbols)
        corpus_tokens = [[_NOTHING], *corpus_tokens[1:]]
    bm25.index(corpus_tokens, show_progress=False)
    return bm25


def _scores(bm25: Any, terms: Sequence[str], size: int) -> np.ndarray:
    q = [t for t in terms if t and t in bm25.vocab_dict]
    if not q:
        return np.zeros(size, dtype=np.float32)
    return np.asarray(bm25.get_scores(q), dtype=np.float32)[:size]


class Lexical:
    """A BM25 index whose row ``i`` is passage ``i`` of the chunk store."""

    def __init__(self, bm25: Any, size: int, pairs: Any = None) -> None:
        self._bm25 = bm25
        self._pairs = pairs
        self.size = size

    @classmethod
    def build(cls, texts: Sequence[str]) -> Lexical:
        corpus_tokens = tokens_batch(list(texts))
        return cls(_bm25(corpus_tokens), len(texts), _bm25([term_pairs(t) for t in corpus_tokens]))

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)
        if self._pairs is not None:
            self._pairs.save(str(folder / PAIRS_FOLDER), show_progress=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> Lexical:
        import bm25s

        bm25 = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
        pairs = None
        if (folder / PAIRS_FOLDER).is_dir():
            pairs = bm25s.BM25.load(str(folder / PAIRS_FOLDER), show_progress=False, verbosity=0)
        return cls(bm25, size, pairs)

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
        return _scores(self._pairs, term_pairs(terms), self.size)
