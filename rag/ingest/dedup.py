"""Near-duplicate articles: the same story from several outlets, or republished with a correction.

Each article becomes a MinHash (datasketch) of its shingles: overlapping
3-grams of Kiwi morphemes (Korean) and lower-cased words (English), from
:func:`rag.text.tokens`, so particles and spacing changes of lightly edited
wire copy do not hide a copy. A MinHash LSH index finds candidates above
``THRESHOLD`` estimated Jaccard similarity. A library (datasketch) and not a
home-made hash: its permutations and banding are tested and tunable.

:func:`classify` says what a new article is relative to the known ones:
``"new"``, ``"same"`` (identical text), ``"correction"`` (near-duplicate from
the same outlet, or at the same URL, published later: it replaces the older
version) or ``"syndicated"`` (near-duplicate from another outlet: one copy is
kept, the earliest publisher, and the others are listed with it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rag.text import tokens

THRESHOLD = 0.4  # estimated Jaccard of 3-gram shingles: P 1.0 / R 1.0 at 0.3-0.4, R .93 at 0.5 (bench/dedup_eval.py)
NUM_PERM = 128
SHINGLE = 3


@dataclass(frozen=True)
class Article:
    """What de-duplication needs to know about an article."""

    key: str  # doc id or URL
    text: str
    outlet: str = ""
    published: str = ""  # ISO date or ""
    url: str = ""


def shingles(text: str, n: int = SHINGLE) -> set[str]:
    """Overlapping ``n``-grams of the text's morphemes/words (the whole token list when shorter)."""
    toks = tokens(text)
    if len(toks) < n:
        return {" ".join(toks)} if toks else set()
    return {" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def minhash(text: str) -> Any:  # datasketch.MinHash
    from datasketch import MinHash

    m = MinHash(num_perm=NUM_PERM, seed=1)
    for s in shingles(text):
        m.update(s.encode("utf-8"))
    return m


class NearDuplicates:
    """A MinHash LSH index over known articles."""

    def __init__(self, threshold: float = THRESHOLD) -> None:
        from datasketch import MinHashLSH

        self.threshold = threshold
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self._known: dict[str, tuple[Article, object]] = {}

    def add(self, article: Article) -> None:
        if article.key in self._known:
            self.remove(article.key)
        m = minhash(article.text)
        self._lsh.insert(article.key, m)
        self._known[article.key] = (article, m)

    def remove(self, key: str) -> None:
        if key in self._known:
            self._lsh.remove(key)
            del self._known[key]

    def similar(self, article: Article) -> list[tuple[Article, float]]:
        """Known articles whose estimated Jaccard similarity reaches the threshold, best first."""
        m = minhash(article.text)
        found = []
        for key in self._lsh.query(m):
            other, om = self._known[key]
            if key == article.key:
                continue
            score = float(m.jaccard(om))
            if score >= self.threshold:
                found.append((other, score))
        return sorted(found, key=lambda x: -x[1])

    def __len__(self) -> int:
        return len(self._known)


def classify(article: Article, index: NearDuplicates) -> tuple[str, Article | None]:
    """("new" | "same" | "correction" | "syndicated", the known article it relates to)."""
    same_url = next((a for a, _ in index._known.values() if article.url and a.url == article.url), None)
    if same_url is not None and same_url.key != article.key:
        return ("same", same_url) if same_url.text == article.text else ("correction", same_url)
    for other, _score in index.similar(article):
        if other.text == article.text:
            return "same", other
        if article.outlet and article.outlet == other.outlet:
            if not other.published or not article.published or article.published >= other.published:
                return "correction", other
            return "same", other  # an older version of a story already known: nothing to do
        return "syndicated", other
    return "new", None


def pairs(articles: Iterable[Article], threshold: float = THRESHOLD) -> set[frozenset[str]]:
    """Every pair of near-duplicate articles (by key), for measuring precision and recall."""
    idx = NearDuplicates(threshold)
    out: set[frozenset[str]] = set()
    for a in articles:
        for other, _ in idx.similar(a):
            out.add(frozenset((a.key, other.key)))
        idx.add(a)
    return out
