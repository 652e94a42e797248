"""BM25 over Kiwi morphemes (Korean) and stopword-filtered words (English), and over adjacent pairs.

A thin wrapper over ``bm25s``: build from passage terms, save into / load from
a folder (memory-mapped), score one question against every passage. Besides
the single terms there is a second BM25 index over adjacent term pairs ("공공
기관", "new york"), so a passage that has the question's words side by side, as
a phrase, scores above one that merely has them somewhere. A pair is keyed by
the ids of its two terms in the single-term index (``a * n_terms + b``, sorted
in ``keys.npy``), not stored as a string: nearly every pair of a big archive is
new, and a vocabulary of tens of millions of strings would not fit in memory.
Both score matrices are computed here in numpy (bm25s's own build loops in
Python per passage: an hour at a million passages), with bm25s's formula and
file layout. An index written with string pairs (``pairs/``) is read as before.
It knows nothing about FAISS, fusion or files other than its own folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from rag.text import tokens_batch

PAIRS_FOLDER = "pairs"  # inside the BM25 folder: string pairs (indexes written before keyed pairs)
KEYED_FOLDER = "pairs-keyed"  # inside the BM25 folder: pairs keyed by term ids, and KEYS_FILE
KEYS_FILE = "keys.npy"  # int64, sorted: the pair keys that occur; keys[i] is pair-index term i
BUILD_BLOCK = 2048  # passages cut into terms at a time by ``Lexical.build``
_NOTHING = "\x00"  # the one term of an index whose passages have none (bm25s cannot index no terms)


def term_pairs(terms: Sequence[str]) -> list[str]:
    """Adjacent pairs of a term sequence (``rag.text.tokens`` order), as one string each."""
    return [f"{a} {b}" for a, b in pairwise(terms)]


K1, B = 1.5, 0.75  # bm25s's defaults (method and idf "lucene"), which indexes written by bm25s used


def _bm25_from_ids(ids: np.ndarray, lengths: np.ndarray, vocab: dict[str, int], n_terms: int) -> Any:
    """A bm25s index (its CSC score matrix, computed here in numpy: bm25s's own build is a Python
    loop per passage and per term, an hour at a million passages) from the term ids of every passage
    concatenated (``lengths[i]`` of them for passage i). Same scores as ``bm25s.BM25().index``."""
    import bm25s

    n_docs = len(lengths)
    key = ids.astype(np.int64)  # (term, passage) as one sortable number, built in place (bounded memory)
    key *= max(n_docs, 1)
    key += np.repeat(np.arange(n_docs, dtype=np.int32), lengths)
    key.sort()
    first = np.ones(len(key), dtype=bool)
    np.not_equal(key[1:], key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    del first
    tf = np.diff(np.append(starts, len(key))).astype(np.float32)
    uniq = key[starts]
    del key, starts
    doc = (uniq % max(n_docs, 1)).astype(np.int32)
    uniq //= max(n_docs, 1)
    term = uniq
    del uniq
    df = np.bincount(term, minlength=n_terms)
    idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
    norm = (K1 * ((1 - B) + B * lengths / max(float(lengths.mean()) if n_docs else 1.0, 1e-9))).astype(np.float32)
    bm25 = bm25s.BM25()
    bm25.scores = {
        "data": (idf[term] * tf / (norm[doc] + tf)).astype(np.float32),
        "indices": doc,
        "indptr": np.concatenate([[0], np.cumsum(df)]).astype(np.int64),
        "num_docs": n_docs,
    }
    bm25.vocab_dict = vocab
    bm25.unique_token_ids_set = set(vocab.values())
    bm25.nonoccurrence_array = None
    return bm25


def _term_ids(corpus_tokens: list[list[str]]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Every passage's term ids concatenated, the passages' lengths, and the vocabulary."""
    if not any(corpus_tokens):  # no passage, or passages without a single term (e.g. only symbols)
        corpus_tokens = [[_NOTHING], *corpus_tokens[1:]]
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(t, len(vocab)) for doc in corpus_tokens for t in doc), dtype=np.int64)
    lengths = np.fromiter((len(doc) for doc in corpus_tokens), dtype=np.int64, count=len(corpus_tokens))
    return ids, lengths, vocab


def _pair_keys(ids: np.ndarray, lengths: np.ndarray, n_terms: int) -> tuple[np.ndarray, np.ndarray]:
    """The keys of the adjacent pairs inside each passage (concatenated) and their count per passage."""
    keys = ids[:-1] * n_terms + ids[1:]
    ends = np.cumsum(lengths)[:-1]
    inside = np.ones(len(keys), dtype=bool)
    inside[ends[(ends > 0) & (ends <= len(keys))] - 1] = False  # no pair across a passage end
    return keys[inside], np.maximum(lengths - 1, 0)


def _keyed_pairs(ids: np.ndarray, lengths: np.ndarray, n_terms: int) -> tuple[Any, np.ndarray]:
    """BM25 over pairs: the index's terms are the pair keys that occur, numbered in sorted order."""
    keys, counts = _pair_keys(ids, lengths, n_terms)
    if not len(keys):  # no passage has a pair: the first passage gets a key no pair has
        keys = np.array([-1], np.int64)
        counts = np.concatenate([[1], counts[1:]]) if len(counts) else np.ones(1, np.int64)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    del keys
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    pair_ids = np.empty(len(ordered), np.int64)
    pair_ids[order] = np.cumsum(first) - 1
    used = ordered[first]
    del order, ordered, first  # not alive while the BM25 matrix is built (hundreds of MB at 100k passages)
    return _bm25_from_ids(pair_ids, counts.astype(np.int64), {}, len(used)), used


def _scores(bm25: Any, terms: Sequence[str], size: int) -> np.ndarray:
    q = [t for t in terms if t and t in bm25.vocab_dict]
    if not q:
        return np.zeros(size, dtype=np.float32)
    return np.asarray(bm25.get_scores(q), dtype=np.float32)[:size]


class Lexical:
    """A BM25 index whose row ``i`` is passage ``i`` of the chunk store."""

    def __init__(self, bm25: Any, size: int, pairs: Any = None, keys: np.ndarray | None = None) -> None:
        self._bm25 = bm25
        self._pairs = pairs
        self._keys = keys  # keyed pairs: the key of each pair term; None: string pairs (or none)
        self.size = size

    @classmethod
    def build(cls, texts: Sequence[str]) -> Lexical:
        """The index of passage texts, cut into terms ``BUILD_BLOCK`` passages at a time and kept
        only as term ids: every passage's terms as Python strings at once would take ~0.6 GB at
        100k passages. Same index as ``from_tokens(tokens_batch(texts))``."""
        vocab: dict[str, int] = {}
        ids: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        for at in range(0, len(texts), BUILD_BLOCK):
            block = tokens_batch(list(texts[at : at + BUILD_BLOCK]))
            ids.append(np.fromiter((vocab.setdefault(t, len(vocab)) for doc in block for t in doc), dtype=np.int64))
            lengths.append(np.fromiter((len(doc) for doc in block), dtype=np.int64, count=len(block)))
        if not vocab:  # no passage, or not a single term: the rule of ``_term_ids``
            return cls.from_tokens([[] for _ in texts])
        return cls.from_term_ids(np.concatenate(ids), np.concatenate(lengths), list(vocab))

    @classmethod
    def from_tokens(cls, corpus_tokens: list[list[str]]) -> Lexical:
        """The index of passages already cut into terms (:func:`rag.text.tokens_batch`)."""
        ids, lengths, vocab = _term_ids(corpus_tokens)
        return cls.from_term_ids(ids, lengths, list(vocab))

    @classmethod
    def from_term_ids(cls, ids: np.ndarray, lengths: np.ndarray, terms: Sequence[str]) -> Lexical:
        """The index of passages given as ids into ``terms``, concatenated (``lengths[i]`` for passage i)."""
        vocab = {t: i for i, t in enumerate(terms)}
        pairs, keys = _keyed_pairs(np.asarray(ids, np.int64), np.asarray(lengths, np.int64), len(vocab))
        return cls(_bm25_from_ids(ids, np.asarray(lengths, np.int64), vocab, len(vocab)), len(lengths), pairs, keys)

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)
        if self._pairs is not None and self._keys is not None:
            self._pairs.save(str(folder / KEYED_FOLDER), show_progress=False)
            np.save(folder / KEYED_FOLDER / KEYS_FILE, np.asarray(self._keys, dtype=np.int64))
        elif self._pairs is not None:
            self._pairs.save(str(folder / PAIRS_FOLDER), show_progress=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> Lexical:
        import bm25s

        bm25 = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0, mmap=True)
        pairs, keys = None, None
        if (folder / KEYED_FOLDER).is_dir():
            pairs = bm25s.BM25.load(
                str(folder / KEYED_FOLDER), show_progress=False, verbosity=0, mmap=True, load_vocab=False
            )
            keys = np.load(folder / KEYED_FOLDER / KEYS_FILE, mmap_mode="r")
        elif (folder / PAIRS_FOLDER).is_dir():
            pairs = bm25s.BM25.load(str(folder / PAIRS_FOLDER), show_progress=False, verbosity=0, mmap=True)
        return cls(bm25, size, pairs, keys)

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
        if self._keys is None:
            return _scores(self._pairs, term_pairs(terms), self.size)
        vocab = self._bm25.vocab_dict
        n_terms = len(vocab) - ("" in vocab)  # bm25s may have added an empty term at the end
        wanted = np.array([vocab[a] * n_terms + vocab[b] for a, b in pairwise(terms) if a in vocab and b in vocab],
                          dtype=np.int64)
        at = np.searchsorted(self._keys, wanted)
        found = at < len(self._keys)
        found[found] = self._keys[at[found]] == wanted[found]
        if not found.any():
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._pairs.get_scores(at[found].tolist()), dtype=np.float32)[: self.size]
