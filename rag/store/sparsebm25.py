"""BM25 as sparse vectors: the product's own Kiwi BM25, in a form a vector database can search.

A passage's sparse vector holds, for each of its terms (and adjacent term
pairs, see ``lexical``), the BM25 term-frequency part; a question's holds each
term's IDF times its count. Their inner product is the BM25 score that
``lexical.Lexical`` (bm25s, Lucene variant, k1=1.5, b=0.75) computes, so a store
that only does sparse inner products (Milvus) ranks like the index folder.
Terms are keyed by a 32-bit hash, so no vocabulary has to be shared. Counts
(documents, lengths, document frequencies) are kept by the caller; this module
is pure arithmetic and knows nothing about Milvus.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rag.store.lexical import term_pairs

K1 = 1.5  # bm25s defaults, which lexical.Lexical uses
B = 0.75
_KEYS = 2**32 - 1  # Milvus sparse dimensions are uint32 below 2**32 - 1


def term_id(term: str) -> int:
    """A stable 32-bit key of a term or pair (collisions are rare and only blur two terms)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little") % _KEYS


@dataclass(frozen=True)
class Counts:
    """Collection statistics BM25 needs: passages, and total terms and pairs over all of them."""

    passages: int = 0
    terms: int = 0
    pairs: int = 0

    def avg_terms(self) -> float:
        return self.terms / self.passages if self.passages else 1.0

    def avg_pairs(self) -> float:
        return self.pairs / self.passages if self.passages else 1.0


def idf(df: int, n: int) -> float:
    """Lucene's IDF, as bm25s computes it."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def _tfc(counts: Counter[str], avg: float) -> dict[int, float]:
    dl = sum(counts.values())
    norm = K1 * (1 - B + B * dl / (avg or 1.0))
    out: dict[int, float] = {}
    for term, tf in counts.items():
        key = term_id(term)
        out[key] = out.get(key, 0.0) + tf / (norm + tf)
    return out


def passage_vector(terms: Sequence[str], counts: Counts) -> dict[int, float]:
    """Sparse vector of one passage (its ``rag.text.tokens``): single terms and pairs, each
    normalised by its own average length, as the two BM25 indexes of ``lexical`` do."""
    out = _tfc(Counter(terms), counts.avg_terms())
    for key, w in _tfc(Counter(term_pairs(terms)), counts.avg_pairs()).items():
        out[key] = out.get(key, 0.0) + w
    return out


def passage_keys(terms: Sequence[str]) -> tuple[set[int], set[int]]:
    """The keys of a passage's distinct terms and of its distinct pairs (for document frequencies)."""
    return {term_id(t) for t in terms}, {term_id(p) for p in term_pairs(terms)}


def key_vector(keys: Sequence[int], df: Mapping[int, int], n: int, weight: float = 1.0) -> dict[int, float]:
    """Sparse vector of query term keys: ``weight`` x IDF x count per key with a document frequency."""
    return {k: weight * c * idf(df[k], n) for k, c in Counter(keys).items() if df.get(k, 0) > 0}


def query_vector(
    words: Sequence[str], df: Mapping[int, int], n: int, pairs: float = 0.0
) -> dict[int, float]:
    """Sparse vector of a question's tokens: IDF x count per known term, plus ``pairs`` x IDF x count
    per known adjacent pair (0 = single terms only). Unknown terms (no df) count for nothing."""
    out = key_vector([term_id(w) for w in words], df, n)
    if pairs:
        for k, v in key_vector([term_id(p) for p in term_pairs(words)], df, n, pairs).items():
            out[k] = out.get(k, 0.0) + v
    return out
