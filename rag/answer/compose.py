"""Grounded answers: extractive by default, an optional LLM, abstention, citations.

The pipeline for one question:

1. resolve a follow-up against the history (:mod:`rag.answer.followup`);
2. retrieve passages (:class:`rag.search.retrieve.Retriever`), then cut them into
   source sentences with document offsets, merging the duplicates that
   overlapping passages produce;
3. score every sentence against the question: overlap of morphemes, numbers and
   names (:mod:`rag.answer.support`), the absolute cosine of the question with the
   sentence's passage, and with the sentence itself for the best few;
4. abstain when the evidence is too weak (thresholds calibrated on whole sets,
   see ``docs/answers.md``), else
5. quote at most ``max_quotes`` sentences in source order, each followed by its
   ``[n]`` marker, or let the LLM write the answer from numbered passages and
   check every sentence it wrote (:mod:`rag.answer.llm_answer`). Any LLM failure falls
   back to the extractive answer with a ``notice``; nothing here raises for it.

Questions about the article itself (outlet, reporter, date) are answered from
the document's metadata, citing the credit line when the text has one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence

from rag.answer import nearmiss, shortspan
from rag.answer.evidence import Evidence, Source, gather
from rag.config import Settings
from rag.errors import LLMError
from rag.records import Answer, Citation, Sentence, Turn
from rag.search.retrieve import Filters, Retriever
from rag.text import has_hangul

log = logging.getLogger(__name__)

ABSTAIN = {
    "ko": "기사에서 관련 근거를 찾지 못했습니다.",
    "en": "I could not find evidence for this in the articles.",
}
# said when the quoted sentences are in another language than the question; never translated
SOURCE_LANG_NOTE = {
    ("en", "ko"): "The source is in Korean; the relevant sentences are quoted as written:",
    ("ko", "en"): "출처 기사가 영어로 되어 있어 해당 문장을 원문 그대로 인용합니다:",
}
NOTICE_LLM_FAILED = {
    "ko": "LLM 응답을 받지 못해 기사 문장을 그대로 인용한 답변을 보여 드립니다.",
    "en": "The LLM did not answer, so this answer quotes the articles directly.",
}
NOTICE_LLM_UNVERIFIED = {
    "ko": "LLM 답변을 기사로 확인할 수 없어 기사 문장을 그대로 인용한 답변을 보여 드립니다.",
    "en": "The LLM answer could not be checked against the articles, so this answer quotes them directly.",
}


def answer(
    retriever: Retriever,
    question: str,
    history: Sequence[Turn] = (),
    settings: Settings | None = None,
    filters: Filters | None = None,
    question_time: bool = True,
) -> Answer:
    """Answer one question from the indexed articles; never raises for LLM problems.

    Args:
        history: earlier turns, oldest first; used to resolve follow-up questions.
        settings: defaults to the retriever's settings (``RAG_LLM_*`` turn the LLM on).
        filters: restrict retrieval to an outlet or a date range (their dates win over the question's).
        question_time: False ignores the question's time words ("지난주"; see :mod:`rag.answer.timeline`).
    """
    final: Answer | None = None
    for event in _run(retriever, question, history, settings, filters, stream=False, question_time=question_time):
        if event["type"] == "answer":
            final = event["answer"]
    assert final is not None
    return final


def stream_answer(
    retriever: Retriever,
    question: str,
    history: Sequence[Turn] = (),
    settings: Settings | None = None,
    filters: Filters | None = None,
    question_time: bool = True,
) -> Iterator[dict]:
    """Like :func:`answer`, as events: ``{"type": "delta", "text"}`` pieces while the
    answer is produced, then exactly one ``{"type": "answer", "answer": Answer}``.

    The final answer is authoritative: after an LLM failure or post-check it can
    differ from the concatenated deltas, and a client should show it instead.
    """
    yield from _run(retriever, question, history, settings, filters, stream=True, question_time=question_time)


def _run(
    retriever: Retriever, question: str, history: Sequence[Turn], settings: Settings | None,
    filters: Filters | None, stream: bool, question_time: bool = True,
) -> Iterator[dict]:
    """:func:`_answer_events` within the question's time scope (rag.answer.timeline); dates named in the answer."""
    from rag.answer import timeline

    settings = settings or retriever.settings
    published = [m.get("published", "") for m in retriever.index.docs.values()]
    filters, ts = timeline.scope(question, filters, settings.now, question_time, published)
    asked = timeline.without_time_words(question, ts)
    for event in _answer_events(retriever, asked, history, settings, filters, stream):
        if event["type"] == "answer":
            event = {"type": "answer", "answer": timeline.finish(event["answer"], ts, retriever.index.docs, question)}
        yield event


def _answer_events(
    retriever: Retriever,
    question: str,
    history: Sequence[Turn],
    settings: Settings | None,
    filters: Filters | None,
    stream: bool,
) -> Iterator[dict]:
    settings = settings or retriever.settings
    ev = gather(retriever, question, history, settings, filters)
    if ev.abstain:
        result = abstention(ev)
        yield {"type": "delta", "text": result.answer}
        yield {"type": "answer", "answer": result}
        return
    from rag.answer.llm import LLMClient

    client = LLMClient.from_settings(settings) if ev.meta is None else None
    notice = ""
    if client is not None:
        from rag.answer import llm_answer

        try:
            llm_result = yield from llm_answer.generate(client, ev, retriever, stream, ABSTAIN[ev.lang])
        except LLMError as e:
            llm_result, notice = None, NOTICE_LLM_FAILED[ev.lang]
            ev.extra["llm_error"] = str(e)
            log.warning("LLM answer failed, answering extractively: %s", e)
        except Exception as e:  # a bug in the optional path must not cost the user the answer
            llm_result, notice = None, NOTICE_LLM_FAILED[ev.lang]
            ev.extra["llm_error"] = f"{type(e).__name__}: {e}"
            log.exception("LLM answer failed unexpectedly, answering extractively")
        else:
            if llm_result is None:
                notice = NOTICE_LLM_UNVERIFIED[ev.lang]
        if llm_result is not None:
            yield {"type": "answer", "answer": llm_result}
            return
    result = extractive(ev, settings, notice)
    for piece in _pieces(result):
        yield {"type": "delta", "text": piece}
    yield {"type": "answer", "answer": result}


def _pieces(a: Answer) -> list[str]:
    """The answer text cut after each marker, so a stream shows it sentence by sentence.

    The pieces concatenate to exactly ``a.answer``.
    """
    text = a.answer
    cuts = [m.end() for m in re.finditer(r"\[\d+\]\s*|:\n", text)] + [len(text)]
    out, prev = [], 0
    for cut in cuts:
        if cut > prev:
            out.append(text[prev:cut])
            prev = cut
    return out


# ------------------------------------------------------------------ extractive


def extractive(ev: Evidence, settings: Settings, notice: str = "") -> Answer:
    """Quote the best source sentences, in source order, each followed by its marker."""
    if ev.meta is not None:
        return _meta_answer(ev, notice)
    chosen = ev.select(settings.max_quotes)
    if not chosen:
        return abstention(ev, notice)
    lead = chosen[0]
    missing = nearmiss.gap(
        ev.resolved,
        lead.text,
        lead.sem,
        # the headline names what a passage is about ("구리야마 히데키" above "…치료를 받았다")
        [f"{h.title}\n{h.chunk.text}" for h in ev.hits],
        # passages in another language may name the subject in their own script ("Busan" for "부산")
        cross=lead.lang != ev.lang or any((h.chunk.lang or ev.lang) != ev.lang for h in ev.hits),
        lead_passage=f"{lead.hit.title}\n{lead.hit.chunk.text}",
        # the lead's article elsewhere: whether it names the subject in another passage
        same_doc=[h.chunk.text for h in ev.hits if h.chunk.doc_id == lead.hit.chunk.doc_id and h is not lead.hit],
    )
    if missing is not None:
        about = _about_subject(ev, missing.subject) if missing.kind == "fact" else None
        if about is None:
            ev.extra["near_miss"] = missing.kind
            return abstention(ev, notice, f"the asked {missing.kind} is not in the retrieved passages")
        return qualified(ev, about, missing, notice)
    groups = [[lead], *_merge_adjacent(chosen[1:])]  # the lead is quoted alone and first
    citations: list[Citation] = []
    sentences: list[Sentence] = []
    texts: list[str] = []
    short = _short(ev, lead)
    facts = _facts_line(ev, lead, short)
    if facts:
        texts.append(facts)
        sentences.append(Sentence(facts, (1,), True))
    note = _lang_note(ev.lang, groups)
    if note:
        texts.append(note)
        sentences.append(Sentence(note, (), True))
    for n, group in enumerate(groups, 1):
        first, last = group[0], group[-1]
        hit = first.hit
        quote = hit.chunk.text[first.local_start : last.local_end]
        citations.append(_citation(n, hit, first.start, first.start + len(quote), quote))
        texts.append(f"{quote} [{n}]")
        sentences.append(Sentence(f"{quote} [{n}]", (n,), True))
    head = len([t for t in (facts, note) if t])
    text = "\n".join([*texts[:head], " ".join(texts[head:])])
    extra = dict(ev.extra)
    if short is not None:
        extra["short"] = short
    return Answer(
        question=ev.question,
        lang=ev.lang,
        answer=text,
        abstained=False,
        citations=tuple(citations),
        sentences=tuple(sentences),
        mode="extractive",
        notice=notice,
        resolved_question=ev.resolved,
        extra=extra,
    )


def _short(ev: Evidence, lead: Source) -> dict | None:
    """The short answer inside the lead sentence in document offsets (``text == doc[start:end]``)."""
    found = shortspan.short_span(ev.resolved, lead.text)
    if found is None:
        return None
    return {"text": found.text, "start": lead.start + found.start, "end": lead.start + found.end}


# the facts an English reader can use in a Korean sentence: numbers, dates, Latin-script names
_LATIN_FACT_RE = re.compile(r"[A-Za-z][A-Za-z0-9&.:+-]*(?:\s+[A-Z0-9][A-Za-z0-9&.:+-]*)*|\d[\d,.]*(?:\s*%)?")
FACTS_LABEL = {"en": "In the Korean source: {facts}", "ko": "영어 원문에 나온 사실: {facts}"}


def _facts_line(ev: Evidence, lead: Source, short: dict | None) -> str:
    """For a question in another language than the lead sentence: its language-independent
    facts first (the short answer when it is one, else numbers and Latin-script names), cited."""
    if lead.lang == ev.lang or ev.lang not in FACTS_LABEL:
        return ""
    english = shortspan.in_english(short["text"]) if short is not None else ""
    if english and not has_hangul(english):
        facts = [english]
    else:
        asked = ev.resolved.casefold()
        facts = []
        for m in _LATIN_FACT_RE.finditer(lead.text):
            f = m.group().strip(" .,:")
            if len(f) >= 2 and f.casefold() not in asked and f not in facts:
                facts.append(f)
        facts = facts[:MAX_FACTS]
    if not facts:
        return ""
    return FACTS_LABEL[ev.lang].format(facts=", ".join(facts)) + " [1]"


MAX_FACTS = 4


# ------------------------------------------------------------------ near misses

NEAR_MISS = {
    "ko": "기사에는 {subject}에 관해 아래 내용이 있지만, 질문하신 {fact} 나와 있지 않습니다.",
    "en": "The articles mention {subject} as quoted below, but not {fact}.",
}
_FACT_WORDS = {
    "ko": {"number": "수치는", "money": "금액은", "time": "시기는", "name": "이름은", "reason": "이유는", "": "내용은"},
    "en": {
        "number": "the number asked for",
        "money": "the amount asked for",
        "time": "the date asked for",
        "name": "the name asked for",
        "reason": "the reason asked for",
        "": "what was asked",
    },
}


def _about_subject(ev: Evidence, subject: str) -> Source | None:
    """The best source sentence that names the asked subject (None without a subject)."""
    if not subject:
        return None
    key = re.sub(r"\s+", "", subject).casefold()
    found = [s for s in ev.sources if key in re.sub(r"\s+", "", s.text).casefold()]
    return max(found, key=lambda s: s.score) if found else None


def qualified(ev: Evidence, about: Source, missing: nearmiss.Gap, notice: str = "") -> Answer:
    """ "The articles say this about the subject, not the asked fact", citing what they say."""
    lang = ev.lang if ev.lang in NEAR_MISS else "en"
    head = NEAR_MISS[lang].format(subject=missing.subject, fact=_FACT_WORDS[lang][missing.want])
    hit = about.hit
    quote = hit.chunk.text[about.local_start : about.local_end]
    text = f"{head}\n{quote} [1]"
    return Answer(
        question=ev.question,
        lang=ev.lang,
        answer=text,
        abstained=False,
        citations=(_citation(1, hit, about.start, about.start + len(quote), quote),),
        sentences=(Sentence(head, (), True), Sentence(f"{quote} [1]", (1,), True)),
        mode="extractive",
        notice=notice,
        resolved_question=ev.resolved,
        extra={**ev.extra, "qualified": True, "near_miss": missing.kind, "reason": "the asked fact is not stated"},
    )


def _merge_adjacent(chosen: list[Source]) -> list[list[Source]]:
    """Neighbouring sentences of one passage become one quote with one marker."""
    groups: list[list[Source]] = []
    for s in chosen:
        prev = groups[-1][-1] if groups else None
        if (
            prev is not None
            and prev.hit.chunk.chunk_id == s.hit.chunk.chunk_id
            and s.index == prev.index + 1
            and "\n\n" not in s.hit.chunk.text[prev.local_end : s.local_start]
        ):
            groups[-1].append(s)
        else:
            groups.append([s])
    return groups


def _lang_note(lang: str, groups: list[list[Source]]) -> str:
    source_langs = {s.lang for g in groups for s in g if s.lang and s.lang != lang}
    if len(source_langs) == 1:
        return SOURCE_LANG_NOTE.get((lang, next(iter(source_langs))), "")
    return ""


def _citation(n: int, hit: object, start: int, end: int, quote: str) -> Citation:
    from rag.records import Hit

    assert isinstance(hit, Hit)
    return Citation(
        n=n,
        doc_id=hit.chunk.doc_id,
        chunk_id=hit.chunk.chunk_id,
        title=hit.title,
        url=hit.url,
        quote=quote,
        start=start,
        end=end,
        outlet=hit.outlet,
        author=hit.author,
        published=hit.published,
        passage=hit.chunk.text,
        passage_start=hit.chunk.start,
    )


def abstention(ev: Evidence, notice: str = "", reason: str = "") -> Answer:
    """The "the articles do not say" answer in the question's language; cites nothing.
    ``extra["reason"]`` says why (``rag ask`` prints it)."""
    text = ABSTAIN.get(ev.lang, ABSTAIN["en"])
    reason = reason or (ev.reason if ev.abstain else "no source sentence to quote")
    return Answer(
        question=ev.question,
        lang=ev.lang,
        answer=text,
        abstained=True,
        citations=(),
        sentences=(Sentence(text, (), True),),
        mode="extractive",
        notice=notice,
        resolved_question=ev.resolved,
        extra={**ev.extra, "reason": reason},
    )


# ------------------------------------------------------------------ metadata

_META_TEXT = {
    ("outlet", "ko"): "이 기사를 낸 매체는 {v}입니다.",
    ("outlet", "en"): "The article was published by {v}.",
    ("author", "ko"): "이 기사를 쓴 기자는 {v}입니다.",
    ("author", "en"): "The article was written by {v}.",
    ("published", "ko"): "이 기사의 발행일은 {v}입니다.",
    ("published", "en"): "The article was published on {v}.",
}


def _meta_answer(ev: Evidence, notice: str) -> Answer:
    assert ev.meta is not None
    field, value, hit, span = ev.meta
    sentence = _META_TEXT[(field, ev.lang if ev.lang in {"ko", "en"} else "en")].format(v=value)
    if span is not None:
        start, end = span
        quote = hit.chunk.text[start - hit.chunk.start : end - hit.chunk.start]
    else:  # the value is only in the metadata: cite the document with an empty span
        start = end = hit.chunk.start
        quote = ""
    text = f"{sentence} [1]"
    return Answer(
        question=ev.question,
        lang=ev.lang,
        answer=text,
        abstained=False,
        citations=(_citation(1, hit, start, end, quote),),
        sentences=(Sentence(text, (1,), True),),
        mode="extractive",
        notice=notice,
        resolved_question=ev.resolved,
        extra={**ev.extra, "metadata": field},
    )
