"""BM25 over Kiwi morphemes (Korean) and stopword-filtered words (English).

A thin wrapper over ``bm25s``: build from passage texts, save into / load from
a folder, score one question against every passage. It knows nothing about
FAISS, fusion or files other than its own folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.text import tokens_batch


class Lexical:
    """A BM25 index whose row ``i`` is passage ``i`` of the chunk store."""

    def __init__(self, bm25: Any, size: int) -> None:
        self._bm25 = bm25
        self.size = size

    @classmethod
    def build(cls, texts: Sequence[str]) -> Lexical:
        import bm25s

        bm25 = bm25s.BM25()
        corpus_tokens = tokens_batch(list(texts))
        # bm25s cannot index an empty corpus; a one-passage index of nothing is harmless
        bm25.index(corpus_tokens or [[]], show_progress=False)
        return cls(bm25, len(texts))

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> Lexical:
        import bm25s

        bm25 = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
        return cls(bm25, size)

    def vocabulary(self) -> list[str]:
        """Every term that occurs in some passage."""
        return [t for t in self._bm25.vocab_dict if t]

    def term_scores(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 score of a bag of terms (``rag.text.tokens`` of a question) against every passage;
        unknown terms count for nothing, zeros when nothing matches."""
        if self.size == 0:
            return np.zeros(0, dtype=np.float32)
        q = [t for t in terms if t and t in self._bm25.vocab_dict]
        if not q:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(q), dtype=np.float32)[: self.size]
