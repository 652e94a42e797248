"""Evidence for one question: retrieved passages cut into scored source sentences.

:func:`gather` resolves a follow-up, retrieves passages, splits them into
sentences with document offsets (merging the duplicates of overlapping
passages), scores each sentence against the question and decides whether the
evidence is strong enough to answer at all. The answer writers in
:mod:`rag.answer.compose` and :mod:`rag.answer.llm_answer` only format what it found.

Abstention looks at passages, with absolute cosines of the question vector
(:mod:`rag.answer.abstain`).

Sentences are then ranked by

- ``ask``: weighted share of the question's asked words (content words other
  than its names and question words) found in the sentence;
- ``cos``: cosine of the question with the sentence's passage (stored vectors);
- ``sem``: cosine of the question with the sentence itself (the index's
  sentence vectors; across languages, sentences without one are embedded, the
  ``SEM_TOP`` best candidates);
- ``fit``: whether the sentence holds the kind of answer asked for (a number,
  a date, a name, a reason);
- ``lex`` (all of the question's words) and ``spec`` (its words weighted by
  rarity among the retrieved sentences) are measured too; ``lex`` admits
  supporting quotes, neither ranks (weights 0, chosen on whole sets with
  ``bench/answer_rules.py``).

A Korean question word counts as held when the sentence has it as a token or as
written (Kiwi cuts compounds differently in different contexts).

:meth:`Evidence.select` picks the lead (the best sentence; a close one of the same
article that holds the asked words when the best holds none; a close one that
holds the asked type and attribute when the best does not) and its supporting
quotes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.answer.abstain import decide
from rag.answer.background import background_similarity
from rag.answer.followup import resolve
from rag.answer.nearmiss import (
    asked_attribute_missing,
    asked_words,
    counted,
    counted_across,
    latin_subject,
    measured,
    names_subject,
    subject_names,
)
from rag.answer.support import answer_type, fits, overlap, token_set, warm_tokens, weight
from rag.answer.vectors import (
    contextual_sentences,
    embed_sentences,
    memoized,
    sentence_spans,
    stored_sentence_vectors,
)
from rag.config import Settings
from rag.ingest.corpus import HEADER_LABELS
from rag.records import Hit, Turn
from rag.search.retrieve import Filters, Retriever
from rag.text import detect_lang

SEM_TOP = 8  # sentences embedded for a question in another language than its passages (8 = 12 on seed+dialogues)
W_LEX, W_SEM, W_COS = 0.0, 4.0, 2.0  # sentence ranking: cosines differ in the second decimal; W_LEX 0: the
# asked words (W_ASK) rank better than all the question's words (bench/answer_rules.py, notes/issue-14.md)
W_ASK = 0.3  # the words that say what is asked (not the names), on top of ``lex``
W_HIT = 0.3  # the retriever's fused score (0..1, relative): its ranking knows both languages
W_SPEC = 0.0  # the rare question words (``specific``)
W_FIT = 0.4  # bonus for a sentence holding the kind of answer asked for (a number, a date, a name, a reason)
# W_LEX/W_ASK/W_FIT/W_SPEC: grid over KorQuAD (447), the dated set (52), seed (13), Belebele ko/en refusals
# (bench/answer_rules.py; table in notes/issue-14.md): W_LEX 0 / W_ASK 0.3 keeps the lead of KorQuAD at .82
# and brings the dated set's plain questions from .61 to .87
MEAN_SAMPLE = 4096  # passages used to estimate the index's average cosine with a question
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
    ask: float = 0.0  # share of the asked words (not the names) the sentence holds
    sem: float | None = None
    spec: float = 0.0  # the question's words it holds, weighted by their rarity among the sources
    sem_used: float = 0.0  # the sentence cosine the ranking used (``sem``, else an estimate from ``cos``)
    own: float | None = None  # cosine of the sentence encoded on its own, where ``sem`` is contextual
    fit: float = 0.0
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
    baseline: dict[str, float] = field(default_factory=dict)  # typical cosine with text, per language
    subject: str = ""  # the question's first name, as written (what it asks about)
    want: str = ""  # the kind of answer asked for (rag.answer.support.answer_type)
    extra: dict[str, Any] = field(default_factory=dict)

    def select(self, k: int) -> list[Source]:
        """The lead sentence (the best one), then at most ``k - 1`` supporting sentences in source order.

        A supporting sentence scores within ``SELECT_MARGIN`` of the lead and shares at least
        ``SUPPORT_LEX`` of the question's words (same language) or, across languages, has
        its own cosine within ``SUPPORT_SEM`` of the lead's: a sentence that merely sits
        in a retrieved passage supports nothing.
        """
        ranked = sorted(self.sources, key=lambda s: -s.score)
        if not ranked:
            return []
        lead = self.lead(ranked)
        rest = [s for s in ranked if s is not lead]
        support = [
            s
            for s in rest[: max(1, k) - 1]
            if s.score >= lead.score - SELECT_MARGIN and _supports(s, lead, self.lang, self.subject)
        ]
        for s in rest:  # the lead's neighbour that holds the asked words ("…의견이 제기되었다. 대표적인 예가 …")
            if len(support) >= max(1, k) - 1:
                break
            if s not in support and _neighbour(s, lead) and (s.ask >= NEIGHBOUR_ASK or self._completes(s, lead)):
                support.append(s)
        return [lead, *sorted(support, key=lambda s: (s.hit.chunk.doc_id, s.start))]

    def _completes(self, s: Source, lead: Source) -> bool:
        """Whether ``s`` holds at least ``NEIGHBOUR_ADDS`` (weighted share) of the question's own words
        that the lead lacks: the lead restates the question, ``s`` holds the part it asks about
        ("… 교환이 불가능하다." then "이 문제를 해결하기 위해 … NPC가 등장하였다." for "…하자 등장한 것은?")."""
        if not NEIGHBOUR_ADDS or s.lang != self.lang:
            return False
        own = token_set(self.question)
        missing = own - _held(lead.text, own)
        total = sum(weight(t) for t in own)
        added = sum(weight(t) for t in _held(s.text, missing))
        return bool(total) and added / total >= NEIGHBOUR_ADDS

    def lead(self, ranked: list[Source]) -> Source:
        """The best sentence (:meth:`asking`); for a question asking for a number, an amount or a
        date, the best one within ``PROMOTE_MARGIN`` of it that holds one, when the best does not
        and it is about the same thing (in the best sentence's passage, or naming the asked subject)."""
        top = self.asking(ranked, self.about_subject(ranked))
        if self.answers_type(top):
            return top
        for s in ranked[1:PROMOTE_TOP]:
            if s.score < top.score - PROMOTE_MARGIN:
                break
            about = s.hit.chunk.chunk_id == top.hit.chunk.chunk_id or (self.subject and _has(s.text, self.subject))
            if about and self.answers_type(s):
                return s
        return top

    def asking(self, ranked: list[Source], top: Source) -> Source:
        """``top``, or when it holds none of the words that say what is asked (``ask``), the best
        sentence within ``ASK_MARGIN`` that holds ``ASK_HIGH`` of them, of the same article or naming
        the subject (itself or by its article's title), in the question's language ("행정권은 누구에게
        있었는가?": "… 웨스트민스터 체제를 …" scored best, "그 때 당시의 행정권은 총독에 있었다." 0.16
        below)."""
        if top.ask >= ASK_LOW or top.lang != self.lang:
            return top
        for s in ranked[:PROMOTE_TOP]:
            if s.score < top.score - ASK_MARGIN:
                break
            about = s.hit.chunk.doc_id == top.hit.chunk.doc_id or (
                self.subject and (_has(s.text, self.subject) or _has(s.hit.title, self.subject))
            )
            if s is not top and about and s.ask >= ASK_HIGH and s.lang == self.lang and self.answers_type(s):
                return s
        return top

    def about_subject(self, ranked: list[Source]) -> Source:
        """The best sentence; across languages, the best one of a passage naming the question's
        Latin-script subject ("Naver Cloud" -> "네이버클라우드") when the best one's passage does not
        and it scores within ``SUBJECT_MARGIN`` (else :func:`rag.answer.nearmiss.gap` refuses)."""
        top = ranked[0]
        name = latin_subject(self.resolved) if top.lang != self.lang else ""
        if not name or not SUBJECT_MARGIN:
            return top
        named: dict[str, bool] = {}
        for s in ranked:
            if s.score < top.score - SUBJECT_MARGIN:
                break
            cid = s.hit.chunk.chunk_id
            if cid not in named:
                named[cid] = names_subject(name, f"{s.hit.title}\n{s.hit.chunk.text}")
            if named[cid]:
                return s
        return top

    def answers_type(self, s: Source) -> bool:
        """Whether ``s`` holds the kind of answer asked for (with the asked counter: "몇 명" -> "342명")
        and states the attribute asked about, if it is one of the common ones ("직원", "revenue")."""
        if asked_attribute_missing(self.resolved, s.text):
            return False
        if self.want not in TYPED:
            return True
        if not s.fit:
            return False
        if self.want != "number":
            return True
        if s.lang != self.lang:  # "how many teams" over a Korean sentence: "15개팀"
            passage = f"{s.hit.title}\n{s.hit.chunk.text}"
            return counted_across(self.resolved, s.text) and measured(self.resolved, s.text, [passage], cross=True)
        return counted(self.resolved, s.text) and measured(self.resolved, s.text)


SELECT_MARGIN = 0.3  # a second or third quote must score within this of the lead
SUPPORT_LEX = 0.4  # ... and share this much of the question's (weighted) words
SUPPORT_SEM = 0.02  # ... or, across languages, come this close to the lead's own cosine
NEIGHBOUR_ASK = 0.4  # the sentence next to the lead is quoted when it holds this share of the asked words
NEIGHBOUR_ADDS = 0.05  # ... or this share of the question's words that the lead lacks (one word, weighted)
TYPED = frozenset({"number", "time", "money"})  # answer types the lead must hold (nearmiss.gap refuses otherwise)
PROMOTE_MARGIN = 0.8  # a sentence holding the asked type becomes the lead when it scores within this of the best
PROMOTE_TOP = 8  # ... among this many best sentences
ASK_MARGIN = 0.2  # a sentence of the best one's article holding most of the asked words leads when within
ASK_HIGH = 0.75  # this of the best and the best holds none of them (ASK_LOW); grid in notes/issue-14-r5.md
ASK_LOW = 0.01
SUBJECT_MARGIN = 1.0  # across languages, a sentence of a passage naming the subject leads when within this


def _neighbour(s: Source, lead: Source) -> bool:
    return s.hit.chunk.chunk_id == lead.hit.chunk.chunk_id and abs(s.index - lead.index) == 1


def _supports(s: Source, lead: Source, lang: str, subject: str) -> bool:
    same_passage = s.hit.chunk.chunk_id == lead.hit.chunk.chunk_id
    if subject and _has(lead.text, subject) and not _has(s.text, subject) and not (
        same_passage or _has(s.hit.title, subject)  # there the subject need not be named again
    ):
        # about another party than the one asked about ("카카오는 ..." for a 코난 question); in the lead's
        # own passage, or in an article whose title names the subject, a sentence need not name it again
        # ("푸시캣 돌스의 …" then "두 번째 싱글로 …")
        return False
    if s.lang == lang:  # shares the question's words, or the asked words next to the lead
        return s.lex >= SUPPORT_LEX or (same_passage and max(s.ask, s.spec) >= SUPPORT_LEX)
    if s.own is not None and lead.own is not None:  # the sentences on their own (``_own_cosines``)
        return s.own >= lead.own - SUPPORT_SEM
    return s.sem is not None and lead.sem is not None and s.sem >= lead.sem - SUPPORT_SEM


def _held(text: str, words: frozenset[str]) -> frozenset[str]:
    """The ``words`` that ``text`` holds as tokens or, for Korean words of two syllables or more, as
    written: Kiwi cuts a compound one way in a question and another in a sentence ("타이틀곡은" ->
    "타이틀곡", "타이틀곡인" -> "타이틀" + "곡")."""
    toks = token_set(text)
    compact = re.sub(r"\s+", "", text)
    return frozenset(
        w for w in words if w in toks or (len(w) >= 2 and _HANGUL_WORD_RE.fullmatch(w) and w in compact)
    )


_HANGUL_WORD_RE = re.compile(r"[가-힣]+")


def _has(text: str, name: str) -> bool:
    """Whether ``text`` names ``name``; a Latin-script name as a word ("KT" is not in "SKT")."""
    if not re.search(r"[^\sA-Za-z0-9.&-]", name):
        words = r"\s*".join(re.escape(w) for w in name.split())
        return re.search(rf"(?<![A-Za-z0-9]){words}(?![A-Za-z0-9])", text, re.I) is not None
    return re.sub(r"\s+", "", name).casefold() in re.sub(r"\s+", "", text).casefold()


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
    ev.subject = next(iter(subject_names(resolved, cross=False)), "")
    if resolved != question:
        ev.extra["resolved"] = True
    if not resolved.strip():
        ev.reason = "empty question"
        return ev
    retriever = memoized(retriever)
    ev.hits = retriever.search(resolved, k=settings.top_k, filters=filters)
    if not ev.hits:
        ev.reason = "no passages (empty index, or filters that exclude every article)"
        return ev
    embedder: Any = retriever.embedder
    ev.qvec = embedder.encode_queries([resolved])[0]
    # only the hits' vectors and a sample are read: a store need not hold the index in memory
    cos = [float(v @ ev.qvec) for v in retriever.passage_vectors([h.chunk.chunk_id for h in ev.hits])]
    best = ev.hits[max(range(len(cos)), key=lambda i: cos[i])].chunk
    # the question's average cosine with the passages in the best passage's language (cosines
    # across languages run lower), estimated on a sample of a large index
    sample = retriever.sample_vectors(best.lang or "", MEAN_SAMPLE)
    mean = float((sample @ ev.qvec).mean()) if len(sample) else 0.0
    from rag.answer.meta import meta_question

    ev.meta = meta_question(resolved, ev.hits, retriever.doc_chunks(ev.hits[0].chunk.doc_id))
    if ev.meta is not None:
        ev.abstain, ev.reason = False, "metadata"
        return ev
    nearest, by_lang = background_similarity(embedder, settings, ev.qvec)
    # sentence scores subtract the question's typical cosine with text of the sentence's language,
    # which makes passages in both languages comparable (measured on the background set, so it
    # works for an index of any size)
    ev.baseline = by_lang
    stored = stored_sentence_vectors(retriever, ev.hits)
    sent_best = max((float(v @ ev.qvec) for v in stored.values()), default=max(cos))
    same = (best.lang or detect_lang(best.text)) == ev.lang
    ev.abstain, ev.reason, ev.extra["scores"] = decide(cos, mean, nearest, same, settings.min_answer_score, sent_best)
    if not ev.abstain:
        ev.sources = _sources(ev.hits, cos)
        _score(ev, embedder, stored)
        if contextual_sentences(retriever):
            _own_cosines(ev, embedder)
    return ev


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
            if _is_header(text, hit.title):
                continue  # the headline and metadata line answer nothing by themselves
            lang = detect_lang(text) or ch.lang
            out.append(Source(hit, i, a, b, start, end, text, lang, cos=c))
    return out


_WORDY_RE = re.compile(r"\w")
# the metadata line rag.ingest.corpus puts under the headline ("매체: ... | 기자: ...", "Outlet: ... | Author: ...")
_META_LINE_RE = re.compile(
    "^(" + "|".join(re.escape(label) for labels in HEADER_LABELS.values() for label in labels.values()) + r")\s*:"
)


def _is_header(text: str, title: str) -> bool:
    text = text.strip()
    if _META_LINE_RE.match(text):
        return True
    if title and text.startswith(title.strip()):
        rest = text[len(title.strip()) :].strip()
        return not rest or bool(_META_LINE_RE.match(rest))
    return False


def _score(ev: Evidence, embedder: Any, stored: dict[str, np.ndarray]) -> None:
    """Rank the source sentences (module docstring); only cross-language questions need sentence
    vectors: the index's own (``stored``) or, for sentences it has none of, embedded now."""
    warm_tokens([ev.question, ev.resolved, *(s.text for s in ev.sources)])
    own = token_set(ev.question)
    wants = ev.want = answer_type(ev.resolved)
    word_shares(ev)
    for s in ev.sources:
        wordy = len(_WORDY_RE.findall(s.text)) >= MIN_CHARS
        s.fit = fits(wants, s.text, ev.resolved) if wordy else 0.0
        s.score = W_LEX * s.lex + W_COS * (s.cos - _base(ev, s)) + W_FIT * s.fit + W_HIT * s.hit.score
    specific(ev, own)
    cross = [s for s in ev.sources if s.lang != ev.lang and len(_WORDY_RE.findall(s.text)) >= MIN_CHARS]
    for s in cross:
        if s.text in stored:
            s.sem = float(stored[s.text] @ ev.qvec)
    top = sorted((s for s in cross if s.sem is None), key=lambda s: -s.score)[:SEM_TOP]
    if top:
        for s, v in zip(top, embed_sentences(embedder, [s.text for s in top]), strict=True):
            s.sem = float(v @ ev.qvec)
    for s in ev.sources:
        if s.lang == ev.lang and s.text in stored:
            s.sem = float(stored[s.text] @ ev.qvec)
        if s.sem is not None:
            sem = s.sem
        elif s.lang == ev.lang:
            sem = s.cos  # words can be compared: the passage's cosine is enough
        else:
            sem = s.cos - 0.1  # another language and not embedded: assume weaker than its passage
        s.sem_used = sem
    rescore(ev)


def _own_cosines(ev: Evidence, embedder: Any) -> None:
    """``own`` of the best ``SEM_TOP`` sentences in another language than the question: each encoded
    on its own (cached per process). The index's sentence vectors (``rag.model.pooled``) have read
    their passage, so sentences of one passage come closer to each other than on their own, and the
    cross-language support rule (``SUPPORT_SEM``, tuned on sentences encoded alone) would let a
    neighbour that only shares the topic into the answer."""
    cross = sorted((s for s in ev.sources if s.lang != ev.lang and s.sem is not None), key=lambda s: -s.score)
    top = cross[:SEM_TOP]
    for s, v in zip(top, embed_sentences(embedder, [s.text for s in top]), strict=True):
        s.own = float(v @ ev.qvec)


def word_shares(ev: Evidence) -> None:
    """``lex`` and ``ask`` of every source: the weighted share of the question's words (its asked
    words) the sentence holds, as tokens or, for Korean words, as written (:func:`_held`)."""
    own = token_set(ev.question)
    context = token_set(ev.resolved) - own  # borrowed from earlier turns: weighs less
    asked = asked_words(ev.resolved)
    wanted = own | context | frozenset(asked)
    for s in ev.sources:
        if len(_WORDY_RE.findall(s.text)) < MIN_CHARS:
            s.lex = s.ask = 0.0
            continue
        toks = token_set(s.text) | _held(s.text, wanted)
        s.lex = overlap(own, toks, context)
        s.ask = overlap(asked, toks) if asked else 0.0


def specific(ev: Evidence, own: frozenset[str]) -> None:
    """``spec``: the share of the question's words a sentence holds, each weighted by how rare it is
    among the retrieved sentences. Words every retrieved sentence shares name the topic ("소토마요르",
    "K-AI"); the rare ones name the asked detail ("기준", "마감", "대안"), which the answering sentence
    holds and a sentence that merely restates the topic does not."""
    sets = [token_set(s.text) for s in ev.sources]
    n = len(sets)
    idf = {t: math.log((n + 1) / (sum(t in ts for ts in sets) + 0.5)) * weight(t) for t in own}
    total = sum(v for v in idf.values() if v > 0)
    for s, ts in zip(ev.sources, sets, strict=True):
        s.spec = sum(v for t, v in idf.items() if v > 0 and t in ts) / total if total else 0.0


def rescore(ev: Evidence) -> None:
    """Each source's ranking score from its measured parts (the weights are this module's ``W_*``)."""
    for s in ev.sources:
        base = _base(ev, s)  # makes cosines of both languages comparable
        s.score = W_LEX * s.lex + W_SEM * (s.sem_used - base) + W_COS * (s.cos - base) + W_FIT * s.fit
        s.score += W_HIT * s.hit.score + W_ASK * s.ask + W_SPEC * s.spec


def _base(ev: Evidence, s: Source) -> float:
    lang = s.hit.chunk.lang or s.lang
    return ev.baseline.get(lang, ev.baseline.get("", 0.0))
