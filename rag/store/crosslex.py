"""Cross-language BM25: map question words onto index terms of the other script.

BM25 scores a passage only on words it contains, so an English question gets
nothing from a Korean article but chance Latin tokens (names, acronyms). The
embedding model is multilingual, so every BM25 index term gets a vector (the
term alone, query prompt) and each question word is mapped to its nearest term
written in the other script: "soviet" -> "소련", "신경" -> "nerve". The mapped
terms are then scored by the ordinary BM25 index (see ``retrieve``). This module
builds the term vectors (reusing those of known terms), saves and loads them,
and maps words; it knows nothing about fusion.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.store import termcache
from rag.text import has_hangul

VECTORS_FILE = "terms.npy"  # float16 (n_terms, dim), row i = terms.json[i]
TERMS_FILE = "terms.json"  # the BM25 vocabulary that has a vector
_LETTERS = re.compile(r"[^\W\d_]")
TERM_BATCH = 256  # terms per forward pass at index time
WORD_CACHE = 4096  # question words remembered per retriever (1.5 KB each)


def translatable(term: str) -> bool:
    """Terms with letters in them: numbers match as they are, no need to map them."""
    return bool(_LETTERS.search(term))


def embed_words(
    words: Sequence[str], embedder: Any, known: Callable[[Sequence[str]], dict[str, np.ndarray]] | None = None
) -> dict[str, np.ndarray]:
    """Vectors of ``words`` as index terms get them (query prompt): from ``known`` (the shipped table
    of common words) where it has them, the rest through the model in one batch."""
    found = known(words) if known is not None else {}
    rest = [w for w in words if w not in found]
    if rest:
        found.update(zip(rest, embedder.encode_queries(rest), strict=True))
    return found


@dataclass(frozen=True)
class TermVectors:
    """One vector per BM25 index term; maps a question word to the nearest term of the other script."""

    terms: tuple[str, ...]
    vectors: np.ndarray  # float32 (n_terms, dim) in memory, float16 on disk
    hangul: np.ndarray  # bool (n_terms,): the term is written in Hangul
    rows: dict[str, int]  # term -> row

    @classmethod
    def of(cls, terms: Sequence[str], vectors: np.ndarray) -> TermVectors:
        """Hangul terms first, then the rest, each in the given order: a word is compared with the
        other script's rows alone, a contiguous block (no copy, no mask per question)."""
        hangul = np.array([has_hangul(t) for t in terms], dtype=bool)
        vecs = np.asarray(vectors, dtype=np.float32)
        order = np.argsort(~hangul, kind="stable")
        if np.any(order != np.arange(len(order))):
            terms, vecs, hangul = [terms[i] for i in order], vecs[order], hangul[order]
        return cls(tuple(terms), vecs, hangul, {t: i for i, t in enumerate(terms)})

    def word_vectors(
        self, words: Sequence[str], embedder: Any, cache: dict[str, np.ndarray],
        known: Callable[[Sequence[str]], dict[str, np.ndarray]] | None = None,
    ) -> np.ndarray:
        """Vectors of question words, embedded as index terms are: a word that is an index term
        already has one, ``cache`` keeps those found before, ``known`` (the shipped table of common
        words, ``rag.store.termtable``) may hold others; only the rest go through the model (a
        second forward pass per question, as long as the question's own)."""
        todo = [w for w in words if w not in self.rows and w not in cache]
        if todo:
            if len(cache) + len(todo) > WORD_CACHE:
                cache.clear()
            cache.update(embed_words(todo, embedder, known))
        return np.stack([self.vectors[self.rows[w]] if w in self.rows else cache[w] for w in words])

    def nearest_other_script(self, words: Sequence[str], word_vectors: np.ndarray) -> list[str]:
        """For each word, the index term in the other script (Hangul for a Latin word and the
        other way round) whose vector is closest to the word's (words without one are left out)."""
        return [t for t in self.nearest_each(words, word_vectors) if t is not None]

    def nearest_each(self, words: Sequence[str], word_vectors: np.ndarray) -> list[str | None]:
        """:meth:`nearest_other_script` word by word: None where the other script has no term."""
        if not words or not self.terms:
            return [None] * len(words)
        n_hangul = int(np.count_nonzero(self.hangul))  # rows [0, n_hangul) are the Hangul terms (``of``)
        vecs = np.asarray(word_vectors, dtype=np.float32)
        found: list[str | None] = [None] * len(words)
        for from_hangul, lo, hi in ((True, n_hangul, len(self.terms)), (False, 0, n_hangul)):
            which = [i for i, w in enumerate(words) if has_hangul(w) == from_hangul]
            if not which or lo == hi:
                continue
            best = lo + np.argmax(vecs[which] @ self.vectors[lo:hi].T, axis=1)
            for i, row in zip(which, best.tolist(), strict=True):
                found[i] = self.terms[row]
        return found

    def save(self, folder: Path) -> None:
        np.save(folder / VECTORS_FILE, self.vectors.astype(np.float16))
        (folder / TERMS_FILE).write_text(json.dumps(list(self.terms), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, dim: int) -> TermVectors:
        """Raises ValueError (with the file name) when the two files do not fit together."""
        terms = json.loads((folder / TERMS_FILE).read_text(encoding="utf-8"))
        vectors = np.load(folder / VECTORS_FILE)
        if not isinstance(terms, list) or vectors.shape != (len(terms), dim):
            raise ValueError(f"{folder / VECTORS_FILE} has shape {vectors.shape}, expected ({len(terms)}, {dim})")
        return cls.of([str(t) for t in terms], vectors)


@dataclass(frozen=True)
class TermPlan:
    """The translatable terms of a vocabulary (sorted), the vectors already known for them (rows of
    ``vectors``; zeros elsewhere) and the rows the model still has to embed (``todo``)."""

    terms: list[str]
    vectors: np.ndarray  # float32 (len(terms), dim)
    todo: list[int]


def plan(
    vocabulary: Sequence[str], old: TermVectors | None, dim: int, cache: Path | None = None, table: bool = True
) -> TermPlan:
    """Which terms of ``vocabulary`` need the model: terms ``old`` knows keep their vector, terms
    the cache folder ``cache`` (``rag.store.termcache``) holds take it from there, then (``table``)
    those the shipped table of common words holds (``rag.store.termtable``). ``len(todo)`` is
    the terms' share of a build's progress bar."""
    terms = sorted({t for t in vocabulary if translatable(t)})
    known = {t: i for i, t in enumerate(old.terms)} if old is not None else {}
    out = np.zeros((len(terms), dim), np.float32)
    for i, t in enumerate(terms):
        if t in known and old is not None:
            out[i] = old.vectors[known[t]]
    todo = [i for i, t in enumerate(terms) if t not in known]
    if cache is not None and todo:
        cached = termcache.lookup(cache, [terms[i] for i in todo], dim, table)
        for i in todo:
            if terms[i] in cached:
                out[i] = cached[terms[i]]
        todo = [i for i in todo if terms[i] not in cached]
    return TermPlan(terms, out, todo)


def complete(
    planned: TermPlan, embedder: Any, progress: bool | Callable[[int], None], cache: Path | None = None
) -> tuple[TermVectors, int]:
    """The plan's vectors with its ``todo`` rows embedded by the model (then added to the cache);
    also how many terms went through the model. ``progress``: show a bar, or a callback per batch."""
    out = planned.vectors
    if planned.todo:
        texts = [planned.terms[i] for i in planned.todo]
        out[np.asarray(planned.todo)] = embed_terms(embedder, texts, progress)
        if cache is not None:
            termcache.remember(cache, texts, out[np.asarray(planned.todo)])
    return TermVectors.of(planned.terms, out), len(planned.todo)


def build(
    vocabulary: Sequence[str], old: TermVectors | None, embedder: Any, progress: bool | Callable[[int], None],
    cache: Path | None = None, table: bool = True,
) -> tuple[TermVectors, int]:
    """Vectors for the translatable terms of ``vocabulary`` (:func:`plan`, then :func:`complete`)."""
    return complete(plan(vocabulary, old, embedder.dim, cache, table), embedder, progress, cache)


def embed_terms(
    embedder: Any, terms: Sequence[str], progress: bool | Callable[[int], None], int8: bool = True
) -> np.ndarray:
    """Term vectors from the model (query prompt), in batches of ``TERM_BATCH``: a term is a few
    tokens, so big batches cost little padding and save the per-batch overhead. ``int8``: through
    the export's int8 graph when it has one (``OnnxEmbedder.encode_terms``: 2.3x faster, cosine
    .997 on average to the float vectors, and a term only has to find its translation among its
    nearest terms); questions' words and the shipped table use the float model."""
    big: Any = embedder
    if dataclasses.is_dataclass(embedder) and not isinstance(embedder, type):
        big = dataclasses.replace(embedder, batch_size=TERM_BATCH)
    encode = getattr(big, "encode_terms", big.encode_queries) if int8 else big.encode_queries
    if callable(progress):
        return np.asarray(encode(list(terms), progress=progress), np.float32)
    from tqdm import tqdm

    with tqdm(total=len(terms), desc="terms", unit="term", disable=not progress, file=sys.stderr) as bar:
        return np.asarray(encode(list(terms), progress=bar.update), np.float32)
