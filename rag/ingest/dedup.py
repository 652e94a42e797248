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

:func:`collapse` applies the same rules to a whole corpus as ``rag index``
loads it (folders and JSONL files): among near-duplicate documents, the
versions of one publisher (same URL or same outlet) are a correction history,
of which the latest is kept; across publishers the earliest publisher's
(latest) version is kept and the others are listed in its ``also`` field.
Documents that name neither an outlet nor a URL (reference text such as
Wikipedia paragraphs) are never merged: without a publisher there is no
syndication to recognise.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.records import Document
from rag.text import tokens, tokens_batch

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


def shingles(text: str, n: int = SHINGLE, toks: list[str] | None = None) -> set[str]:
    """Overlapping ``n``-grams of the text's morphemes/words (the whole token list when shorter)."""
    toks = tokens(text) if toks is None else toks
    if len(toks) < n:
        return {" ".join(toks)} if toks else set()
    return {" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def minhash(text: str, toks: list[str] | None = None) -> Any:  # datasketch.MinHash
    from datasketch import MinHash

    m = MinHash(num_perm=NUM_PERM, seed=1)
    m.update_batch([s.encode("utf-8") for s in shingles(text, toks=toks)])
    return m


@functools.lru_cache(maxsize=1)
def _scheme() -> str:
    """How this datasketch hashes (its version and scheme): signatures of another one are not reused."""
    from importlib.metadata import version

    from datasketch import MinHash

    return f"{version('datasketch')}/{getattr(MinHash(num_perm=NUM_PERM, seed=1), 'scheme', '')}"


def _signature_key(text: str) -> str:
    return hashlib.sha256(f"sig2/{_scheme()}/{NUM_PERM}/{SHINGLE}/1\0{text}".encode()).hexdigest()


def signatures(texts: Sequence[str], cache: Path | None = None) -> list[Any]:
    """One MinHash per text; Kiwi runs once over all the texts not in ``cache`` (an SQLite file of
    signatures by text hash, so an unchanged corpus is not analysed again at every ``rag index``)."""

    keys = [_signature_key(t) for t in texts]
    db = _open_cache(cache)
    known: dict[str, Any] = _read(db, keys) if db is not None else {}
    todo = [i for i, k in enumerate(keys) if k not in known]
    for i, toks in zip(todo, tokens_batch(texts[i] for i in todo), strict=True):
        known[keys[i]] = minhash(texts[i], toks)
    if db is not None and todo:
        with contextlib.suppress(sqlite3.Error):  # a cache that cannot be written only costs time
            db.executemany("INSERT OR REPLACE INTO sig VALUES (?, ?)",
                           [(keys[i], known[keys[i]].hashvalues.tobytes()) for i in todo])
            db.commit()
    if db is not None:
        db.close()
    return [known[k] for k in keys]


def _read(db: sqlite3.Connection, keys: list[str]) -> dict[str, Any]:
    """The cached signatures of ``keys``; a cache that cannot be read only costs time."""
    from datasketch import MinHash

    template = MinHash(num_perm=NUM_PERM, seed=1)
    known: dict[str, Any] = {}
    with contextlib.suppress(sqlite3.Error):
        for at in range(0, len(keys), 500):
            part = keys[at : at + 500]
            for key, blob in db.execute(f"SELECT key, hv FROM sig WHERE key IN ({','.join('?' * len(part))})", part):
                # the LSH buckets hash the raw bytes: read them back in the dtype they were written in
                hv = np.frombuffer(blob, dtype=template.hashvalues.dtype) if isinstance(blob, bytes) else None
                if hv is not None and len(hv) == NUM_PERM:  # anything else is recomputed
                    m = template.copy()
                    m.hashvalues = hv.copy()
                    known[key] = m
    return known


def _open_cache(path: Path | None) -> sqlite3.Connection | None:
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=10)
        db.execute("CREATE TABLE IF NOT EXISTS sig (key TEXT PRIMARY KEY, hv BLOB)")
        return db
    except (OSError, sqlite3.Error):
        return None  # unwritable cache folder, or a damaged file: work without it


class NearDuplicates:
    """A MinHash LSH index over known articles."""

    def __init__(self, threshold: float = THRESHOLD) -> None:
        from datasketch import MinHashLSH

        self.threshold = threshold
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self._known: dict[str, tuple[Article, object]] = {}

    def add(self, article: Article, m: Any = None) -> None:
        """Remember ``article`` (``m``: its MinHash when already computed)."""
        if article.key in self._known:
            self.remove(article.key)
        m = minhash(article.text) if m is None else m
        self._lsh.insert(article.key, m)
        self._known[article.key] = (article, m)

    def remove(self, key: str) -> None:
        if key in self._known:
            self._lsh.remove(key)
            del self._known[key]

    def similar(self, article: Article, m: Any = None) -> list[tuple[Article, float]]:
        """Known articles whose estimated Jaccard similarity reaches the threshold, best first."""
        m = minhash(article.text) if m is None else m
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
    items = list(articles)
    for a, m in zip(items, signatures([a.text for a in items]), strict=True):
        for other, _ in idx.similar(a, m):
            out.add(frozenset((a.key, other.key)))
        idx.add(a, m)
    return out


@dataclass(frozen=True)
class Collapsed:
    """A corpus with one document per story, and what was left out."""

    documents: tuple[Document, ...]
    dropped: tuple[dict[str, str], ...] = ()  # {"doc_id", "kind": "correction"|"syndicated", "kept"}


def also_text(copies: Sequence[dict[str, str]]) -> str:
    """The other publishers of a story, as a document's ``also`` field: "outlet (date, URL); …"."""
    parts = []
    for c in copies:
        bits = ", ".join(b for b in (c.get("published", ""), c.get("url", "")) if b)
        parts.append(f"{c.get('outlet') or c.get('url', '')}" + (f" ({bits})" if bits else ""))
    return "; ".join(parts)


def _day(d: Document) -> str:
    day = d.published[:10]
    return day if len(day) == 10 and day[4] == "-" else ""


def collapse(docs: Sequence[Document], threshold: float = THRESHOLD, cache: Path | None = None) -> Collapsed:
    """One document per story (module docstring); order and every other document unchanged.
    ``cache``: the signature cache of :func:`signatures`."""
    order = {d.doc_id: i for i, d in enumerate(docs)}
    news = [d for d in docs if d.outlet or d.url]
    if len(news) < 2:
        return Collapsed(tuple(docs))
    parent = {d.doc_id: d.doc_id for d in news}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb, key=order.__getitem__)] = min(ra, rb, key=order.__getitem__)

    index = NearDuplicates(threshold)
    by_url: dict[str, str] = {}
    sigs = signatures([d.text[d.body_start:] for d in news], cache)
    for d, m in zip(news, sigs, strict=True):
        art = Article(d.doc_id, d.text[d.body_start:], d.outlet, _day(d), d.url)
        for other, _ in index.similar(art, m):
            union(d.doc_id, other.key)
        if d.url:
            if d.url in by_url:
                union(d.doc_id, by_url[d.url])
            by_url.setdefault(d.url, d.doc_id)
        index.add(art, m)
    groups: dict[str, list[Document]] = {}
    for d in news:
        groups.setdefault(find(d.doc_id), []).append(d)
    replaced: dict[str, Document] = {}
    dropped: list[dict[str, str]] = []
    for members in groups.values():
        if len(members) > 1:
            kept, gone = _one_story(members, order)
            replaced[kept.doc_id] = kept
            dropped += gone
    gone_ids = {g["doc_id"] for g in dropped}
    out = tuple(replaced.get(d.doc_id, d) for d in docs if d.doc_id not in gone_ids)
    return Collapsed(out, tuple(dropped))


def _one_story(members: list[Document], order: dict[str, int]) -> tuple[Document, list[dict[str, str]]]:
    """The document kept for one story (with ``also`` and a new sha256) and the dropped ones."""
    publishers: list[list[Document]] = []  # versions of one publisher: same outlet or same URL
    for d in sorted(members, key=lambda d: order[d.doc_id]):
        home = next((p for p in publishers if any(_same_publisher(d, v) for v in p)), None)
        if home is None:
            publishers.append([d])
        else:
            home.append(d)
    dropped: list[dict[str, str]] = []
    latest: list[tuple[str, Document]] = []  # (first day the publisher ran the story, its latest version)
    for versions in publishers:
        versions.sort(key=lambda d: (_day(d) or "0000", order[d.doc_id]))  # undated versions count as oldest
        last = versions[-1]
        first = min((_day(v) for v in versions if _day(v)), default="")
        latest.append((first, last))
        dropped += [{"doc_id": v.doc_id, "kind": "correction", "kept": last.doc_id} for v in versions[:-1]]
    latest.sort(key=lambda x: (x[0] or "9999", order[x[1].doc_id]))  # the earliest publisher; undated last
    kept = latest[0][1]
    others = [d for _, d in latest[1:]]
    dropped += [{"doc_id": d.doc_id, "kind": "syndicated", "kept": kept.doc_id} for d in others]
    listed = [a for a in (kept.also, also_text([{"outlet": d.outlet, "published": _day(d), "url": d.url}
                                                for d in others])) if a]
    if "; ".join(listed) != kept.also:
        also = "; ".join(listed)
        sha = hashlib.sha256(f"{kept.sha256}\0also\0{also}".encode()).hexdigest()
        kept = replace(kept, also=also, sha256=sha)
    # the dropped versions' ids keep pointing at the kept story: moved, not lost
    return kept, [{**g, "kept": kept.doc_id} for g in dropped]


def _same_publisher(a: Document, b: Document) -> bool:
    return bool((a.url and a.url == b.url) or (a.outlet and a.outlet.casefold() == b.outlet.casefold()))
