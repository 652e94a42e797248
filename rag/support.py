"""Does a source sentence back a claim? Lexical evidence: content morphemes, numbers, names.

Used in two places: the extractive answerer scores source sentences against the
question with :func:`overlap`, and the LLM answerer checks each generated
sentence against the passage it cites with :func:`check`. Both work on Kiwi
morphemes (Korean) and stemmed words (English) from :mod:`rag.text`, so "떨어진"
matches "떨어져" and "models" matches "model".

Across languages (an English claim citing a Korean passage) words cannot match,
so :func:`check` accepts a semantic score from the caller (cosine of sentence
embeddings); this module computes no embeddings itself.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rag.text import detect_lang, tokens

_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
_MARKER_RE = re.compile(r"\[\d+\]")
_LATIN_RE = re.compile(r"[A-Za-z]")

# a claim counts as supported when this share of its (weighted) content is in the source
MIN_SUPPORT = 0.5
MIN_SUPPORT_CROSS = 0.82  # claim vs its translation 0.83-0.88, vs other sentences <= 0.81 (e5-small)


@functools.lru_cache(maxsize=8192)
def token_set(text: str) -> frozenset[str]:
    """Lexical tokens of ``text`` (cached: source sentences are scored again and again)."""
    return frozenset(tokens(_MARKER_RE.sub(" ", text)))


def numbers(text: str) -> set[str]:
    """Numbers written in ``text`` ("1,020" and "1020" are the same number)."""
    return {n.replace(",", "") for n in _NUMBER_RE.findall(_MARKER_RE.sub(" ", text))}


def weight(tok: str) -> float:
    """How much a token says about the topic: numbers and Latin names most, short words least."""
    if any(ch.isdigit() for ch in tok):
        return 2.0
    if _LATIN_RE.search(tok):
        return 1.5
    if len(tok) == 1:
        return 0.5  # one-syllable Korean nouns ("팀", "곳") are weak evidence
    return 1.0


def overlap(
    claim: Iterable[str], source: frozenset[str], context: Iterable[str] = (), context_weight: float = 0.3
) -> float:
    """Weighted share of the ``claim`` tokens that occur in ``source`` (0..1).

    ``context`` tokens (e.g. names a follow-up question borrowed from earlier
    turns) count with ``context_weight`` of their usual weight: they say what
    the question is about, the question's own words say what it asks.
    """
    toks = set(claim)
    weights = {t: weight(t) for t in toks}
    for t in set(context) - toks:
        weights[t] = context_weight * weight(t)
    total = sum(weights.values())
    if total == 0:
        return 0.0
    return sum(w for t, w in weights.items() if t in source) / total


@dataclass(frozen=True)
class Support:
    supported: bool
    best: int  # index of the best-matching source sentence (-1 when there is none)
    score: float  # lexical overlap, or the semantic score when words cannot match


def check(claim: str, sources: Sequence[str], semantic: Sequence[float] | None = None) -> Support:
    """Whether one of ``sources`` (the sentences of the cited passage) supports ``claim``.

    Supported means: every number of the claim appears in the passage, and the
    best source sentence covers at least ``MIN_SUPPORT`` of the claim's content
    tokens (or, across languages, reaches ``MIN_SUPPORT_CROSS`` in ``semantic``,
    the caller's claim-to-sentence cosines, one per source).
    """
    if not sources:
        return Support(False, -1, 0.0)
    claim_toks = token_set(claim)
    scores = [overlap(claim_toks, token_set(s)) for s in sources]
    best = max(range(len(sources)), key=lambda i: scores[i])
    passage = " ".join(sources)
    nums_ok = numbers(claim) <= numbers(passage)
    cross = detect_lang(claim) != detect_lang(passage)
    if cross and semantic is not None and len(semantic) == len(sources):
        sem_best = max(range(len(sources)), key=lambda i: semantic[i])
        ok = nums_ok and (semantic[sem_best] >= MIN_SUPPORT_CROSS or scores[best] >= MIN_SUPPORT)
        return Support(ok, sem_best, float(semantic[sem_best]))
    if not claim_toks:
        return Support(False, best, 0.0)
    return Support(nums_ok and scores[best] >= MIN_SUPPORT, best, scores[best])
