"""Evidence for one question: retrieved passages cut into scored source sentences.

:func:`gather` resolves a follow-up, retrieves passages, splits them into
sentences with document offsets (merging the duplicates of overlapping
passages), scores each sentence against the question and decides whether the
evidence is strong enough to answer at all. The answer writers in
:mod:`rag.answer` and :mod:`rag.llm_answer` only format what it found.

Scores (all absolute, so one threshold works for every query):

- ``lex``: weighted share of the question's morphemes, numbers and names found
  in the sentence (:func:`rag.support.overlap`);
- ``cos``: cosine of the question with the sentence's passage (stored vectors);
- ``sem``: cosine of the question with the sentence itself, computed for the
  ``SEM_TOP`` best sentences only (embedding is the expensive step on CPU).

The abstention thresholds in :data:`CALIBRATION` were chosen on whole sets
(seed questions, Belebele ko/en, the off-topic set): see ``docs/answers.md``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.config import Settings
from rag.followup import resolve
from rag.records import Hit, Turn
from rag.retrieve import Filters, Retriever
from rag.support import overlap, token_set
from rag.text import detect_lang, split_sentences


@dataclass(frozen=True)
class Calibration:
    """Abstention thresholds; see ``docs/answers.md`` for how they were measured."""

    min_cos: float = 0.80  # question vs best passage, below: nothing in the articles is about it
    min_sem: float = 0.80  # question vs best sentence, cross-language evidence
    min_lex: float = 0.34  # same-language evidence: share of the question's content in one sentence
    strong_sem: float = 0.86  # a sentence this close to the question counts without word overlap


CALIBRATION = Calibration()
SEM_TOP = 6  # sentences embedded per question (about 4 ms each on 2 CPU cores)
W_LEX, W_SEM, W_COS = 1.0, 4.0, 2.0  # sentence ranking: semantic distances are small numbers
MIN_CHARS = 6  # shorter "sentences" (a stray "글." or a bullet) are never quoted alone


@dataclass
class Source:
    """One source sentence of a retrieved passage."""

    hit: Hit
    index: int  # sentence number inside the passage
    local_start: int  # offsets into the passage text
    local_end: int
    start: int  # offsets into the document text
    end: int
    text: str
    lang: str
    cos: float = 0.0
    lex: float = 0.0
    sem: float | None = None
    score: float = 0.0


@dataclass
class Evidence:
    question: str
    resolved: str
    lang: str
    hits: list[Hit]
    sources: list[Source]
    abstain: bool = True
    reason: str = ""
    meta: tuple[str, str, Hit, tuple[int, int] | None] | None = None  # field, value, hit, span
    qvec: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def select(self, k: int) -> list[Source]:
        """The ``k`` best sentences (score close to the best), in source order."""
        ranked = sorted(self.sources, key=lambda s: -s.score)
        if not ranked:
            return []
        best = ranked[0].score
        chosen = [s for s in ranked[: max(1, k)] if s.score >= best - SELECT_MARGIN]
        return sorted(chosen, key=lambda s: (s.hit.chunk.doc_id, s.start))


SELECT_MARGIN = 0.6  # a second or third quote must score within this of the best one


def gather(
    retriever: Retriever,
    question: str,
    history: Sequence[Turn] = (),
    settings: Settings | None = None,
    filters: Filters | None = None,
) -> Evidence:
    """Retrieve, split, score and decide (see the module docstring)."""
    settings = settings or retriever.settings
    resolved = resolve(question, history)
    lang = detect_lang(question) or detect_lang(resolved) or "en"
    ev = Evidence(question, resolved, lang, [], [])
    if resolved != question:
        ev.extra["resolved"] = True
    if not resolved.strip():
        ev.reason = "empty question"
        return ev
    ev.hits = retriever.search(resolved, k=settings.top_k, filters=filters)
    if not ev.hits:
        ev.reason = "no passages"
        return ev
    embedder: Any = retriever.embedder
    ev.qvec = embedder.encode_queries([resolved])[0]
    rows = _rows(retriever)
    vecs = retriever.index.vectors()
    cos = [float(vecs[rows[h.chunk.chunk_id]] @ ev.qvec) for h in ev.hits]
    ev.sources = _sources(ev.hits, cos)
    from rag.meta import meta_question

    ev.meta = meta_question(resolved, ev.hits, retriever.index.chunks)
    if ev.meta is not None:
        ev.abstain, ev.reason = False, "metadata"
        return ev
    _score(ev, embedder)
    _decide(ev, max(cos))
    return ev


def _rows(retriever: Retriever) -> dict[str, int]:
    index = retriever.index
    key = id(index)
    cached = _ROWS.get(key)
    if cached is None or cached[0] is not index:
        cached = (index, {c.chunk_id: i for i, c in enumerate(index.chunks)})
        _ROWS.clear()  # one index per process is the common case; never grow without bound
        _ROWS[key] = cached
    return cached[1]


_ROWS: dict[int, tuple[Any, dict[str, int]]] = {}


@functools.lru_cache(maxsize=4096)
def sentence_spans(text: str, lang: str) -> tuple[tuple[int, int], ...]:
    """Sentence spans of a passage (cached: the same passages come back for many questions)."""
    return tuple(split_sentences(text, lang or None))


def _sources(hits: list[Hit], cos: list[float]) -> list[Source]:
    """Sentences of the hits; a sentence seen in an earlier (better) hit is not repeated."""
    seen: list[tuple[str, int, int]] = []
    out: list[Source] = []
    for hit, c in zip(hits, cos, strict=True):
        ch = hit.chunk
        for i, (a, b) in enumerate(sentence_spans(ch.text, ch.lang)):
            text = ch.text[a:b]
            start, end = ch.start + a, ch.start + b
            if any(d == ch.doc_id and start < e and s < end for d, s, e in seen):
                continue  # the same sentence (or part of it) from an overlapping passage
            seen.append((ch.doc_id, start, end))
            lang = detect_lang(text) or ch.lang
            out.append(Source(hit, i, a, b, start, end, text, lang, cos=c))
    return out


_WORDY_RE = re.compile(r"\w")


def _score(ev: Evidence, embedder: Any) -> None:
    q = token_set(ev.resolved)
    for s in ev.sources:
        s.lex = overlap(q, token_set(s.text)) if len(_WORDY_RE.findall(s.text)) >= MIN_CHARS else 0.0
        s.score = W_LEX * s.lex + W_COS * s.cos
    top = sorted(ev.sources, key=lambda s: -s.score)[:SEM_TOP]
    top = [s for s in top if len(_WORDY_RE.findall(s.text)) >= MIN_CHARS]
    if top:
        svecs = embedder.encode_passages([s.text for s in top])
        for s, v in zip(top, svecs, strict=True):
            s.sem = float(v @ ev.qvec)
    for s in ev.sources:
        sem = s.sem if s.sem is not None else s.cos - 0.1  # unembedded: assume weaker than its passage
        s.score = W_LEX * s.lex + W_SEM * sem + W_COS * s.cos


def _decide(ev: Evidence, best_cos: float) -> None:
    cal = CALIBRATION
    embedded = [s for s in ev.sources if s.sem is not None]
    best_sem = max((s.sem for s in embedded if s.sem is not None), default=0.0)
    same = [s for s in ev.sources if s.lang == ev.lang]
    best_lex = max((s.lex for s in same), default=0.0)
    ev.extra["scores"] = {"cos": round(best_cos, 4), "sem": round(best_sem, 4), "lex": round(best_lex, 4)}
    if best_cos < cal.min_cos:
        ev.abstain, ev.reason = True, "passages not about the question"
    elif best_lex >= cal.min_lex or best_sem >= cal.strong_sem:
        ev.abstain, ev.reason = False, "evidence"
    elif not same and best_sem >= cal.min_sem:
        ev.abstain, ev.reason = False, "cross-language evidence"
    else:
        ev.abstain, ev.reason = True, "no sentence matches the question"
