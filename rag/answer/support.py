"""Does a source sentence back a claim? Lexical evidence: content morphemes, numbers, names.

Used in two places: the extractive answerer scores source sentences against the
question with :func:`overlap`, and the LLM answerer checks each generated
sentence against the passage it cites with :func:`check`. Both work on Kiwi
morphemes (Korean) and stemmed words (English) from :mod:`rag.text`, so "떨어진"
matches "떨어져" and "models" matches "model".

Across languages (an English claim citing a Korean passage) words cannot match,
so :func:`check` accepts a semantic score from the caller (cosine of sentence
embeddings); this module computes no embeddings itself.

:func:`answer_type` and :func:`fits` tell what kind of answer a question asks
for (a number, a date, a name) and whether a sentence holds one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rag.text import detect_lang, tokens_batch

_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
_MARKER_RE = re.compile(r"\[\d+\]")
_LATIN_RE = re.compile(r"[A-Za-z]")

# a claim counts as supported when this share of its (weighted) content is in the source
MIN_SUPPORT = 0.5
MIN_SUPPORT_CROSS = 0.82  # claim vs its translation 0.83-0.88, vs other sentences <= 0.81 (e5-small)


_TOKENS: dict[str, frozenset[str]] = {}
TOKEN_CACHE = 16384  # texts whose tokens are kept (source sentences come back again and again)


def token_set(text: str) -> frozenset[str]:
    """Lexical tokens of ``text``, markers removed (cached)."""
    found = _TOKENS.get(text)
    if found is None:  # not warmed (or the cache was just cleared by another thread)
        found = frozenset(tokens_batch([_MARKER_RE.sub(" ", text)])[0])
        _TOKENS[text] = found
    return found


def warm_tokens(texts: Iterable[str]) -> None:
    """Tokenise the texts not cached yet in one Kiwi batch (about twice as fast as one by one)."""
    todo = [t for t in dict.fromkeys(texts) if t not in _TOKENS]
    if not todo:
        return
    if len(_TOKENS) + len(todo) > TOKEN_CACHE:
        _TOKENS.clear()
    for text, toks in zip(todo, tokens_batch([_MARKER_RE.sub(" ", t) for t in todo]), strict=True):
        _TOKENS[text] = frozenset(toks)


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


# what kind of answer a question wants, and how to recognise a sentence that has one
_WANTS = (
    # "when" asks for a time only as the question word ("When did …", "…, when could …"), not as a
    # conjunction ("what happens when a nucleus is split?", "When playing the accordion, which …")
    (
        "time",
        re.compile(
            r"언제|며칠|몇\s*(년|월|일)|\bwhat\s+(year|date|time|month|day)\b|"
            r"\bwhen\s+(did|does|do|is|are|was|were|will|would|should|could|can|might|may|has|have|had|shall)\b",
            re.I,
        ),
    ),
    (
        "money",
        re.compile(
            r"(얼마|규모).*(투자|유치|매출|금액|비용|가격|자금|예산)|(투자|유치|매출|금액|비용|가격|자금|예산).*(얼마|규모)|"
            r"\bhow\s+much\b.*\b(invest|cost|spend|spent|pay|paid|rais|fund|revenue|price|earn|budget)|"
            r"\b(invest|cost|spend|spent|pay|paid|rais|fund|revenue|price|earn|budget)\w*\b.*\bhow\s+much\b",
            re.I,
        ),
    ),
    (
        "number",
        re.compile(
            r"몇|얼마|규모|\bhow\s+(many|much|long|big|large|old|tall|high|fast|far|deep|wide|heavy)\b|"
            r"\bwhat\s+(percentage|number|age|height|(?:\w+\s+)?speed)\b",
            re.I,
        ),
    ),
    ("reason", re.compile(r"이유|원인|왜|\bwhy\b|\breasons?\b|\bcause\b", re.I)),
    ("name", re.compile(r"어디|누구|어느|이름|\bname\b|\bwhich\b|\bwho(m|se)?\b|\bwhere\b", re.I)),
)
_TIME_RE = re.compile(
    r"\d+\s*(년|월|일|시|세기)|세기|년대|시대|시절|무렵|당시|때|낮|밤|아침|저녁|오전|오후|봄|여름|가을|겨울|계절|현재|시점|기간|동안|철|올해|지난해|작년|내년|하반기|상반기|(이번|지난|다음)\s*(달|주)|초|말에|"
    r"\b(19|20)\d\d\b|\b(January|February|March|April|May|June|July|August|September|October|November|"
    r"December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|yesterday|today|tomorrow|"
    r"after|before|during|while|until|since|once|when|season|century|decade|era|period|morning|evening|"
    r"night|week|month|year|spring|summer|autumn|fall|winter)\b",
    re.I,
)
_DIGIT_RE = re.compile(r"\d")
# numbers written as words: "two tunnels", "a dozen", "세 곳", "다섯 개 팀" (a digit-only check missed them)
_NUMBER_WORD_RE = re.compile(
    r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|"
    r"million|billion|dozen|dozens|half|twice|single|both)\b|"
    r"(?<![가-힣])(한|두|세|네|다섯|여섯|일곱|여덟|아홉|열|스무|스물)\s*(개|곳|명|팀|군데|가지|번|차례|개사|건|대|척|배)|"
    r"(?<![가-힣])(첫|둘|셋|넷|다섯|여섯|일곱|여덟|아홉|열)\s*째|(?<![가-힣])수\s*(십|백|천|만)",
    re.I,
)
_REASON_RE = re.compile(
    r"때문|이유|원인|(으로|로)\s*인해|탓|덕분|\bbecause\b|\bdue\s+to\b|\bowing\s+to\b|\bsince\b", re.I
)
_MONEY_RE = re.compile(r"\d[\d,.]*\s*[억만천조]*\s*(원|달러)|[$€£]\s*\d|\d\s*(dollars?|won|euros?)\b", re.I)


# the noun a Korean question ends on names the kind of answer: "…지명수배 된 날은?", "…확립한 년도는?",
# "…지적한 사람은?", "…시위를 벌인 곳은?" (measured on KorQuAD: about a third of its questions ask this way)
_HEAD_RE = re.compile(
    r"([가-힣]+?)\s*(?:은|는|이|가)?\s*(?:무엇|언제|누구|어디)?\s*(?:인가요|인가|입니까|이에요|예요|야|일까)?\s*[?？.]?\s*$"
)
_HEAD_KINDS = (
    (
        "time",
        re.compile(
            r"(년도|연도|날짜|일자|날|해|시기|시점|일시|연대|기간|"
            r"(마감|시작|출시|개막|폐막|발매|개봉|창립|설립|시행|선고|투표|선거|기념|생|발표|공개|종료|출범)일)$"
        ),
    ),
    ("money", re.compile(r"(액수|금액|비용|가격|예산)$")),
    ("number", re.compile(r"^(기록|점수|순위|인원|횟수|개수|숫자|비율|높이|길이|무게|나이|수)$")),
    (
        "name",
        re.compile(
            r"^(사람|인물|이름|명칭|제목|곳|장소|지역|나라|국가|도시|단체|기관|회사|기업|팀|가수|배우|후보|"
            r"선수|대통령|총리|작가|감독|학자|교수|정치인|국왕|왕|회장|대표|의장|장군|백작|앨범|노래|책|영화)$"
        ),
    ),
)


def answer_type(question: str) -> str:
    """ "time", "money", "number", "reason", "name" or "" for the kind of answer ``question`` asks for."""
    m = _HEAD_RE.search(question.strip())
    if m and not re.search(r"(?:몇|어떤|무슨)\s*$", question.strip()[: m.start(1)]):
        # the closing noun wins ("몇 천명의 학생들이 시위를 벌인 곳은?" asks for a place), unless it is
        # the counter of "몇" ("터널은 몇 곳인가?" asks for a number) or asks for a kind ("어떤 회사인가?")
        for kind, rx in _HEAD_KINDS:
            if rx.search(m.group(1)):
                return kind
    for kind, rx in _WANTS:
        if rx.search(question):
            return kind
    return ""


def fits(kind: str, sentence: str, question: str) -> float:
    """1.0 when ``sentence`` holds something of the wanted kind that the question does not."""
    if kind == "number":
        if numbers(sentence) - numbers(question):  # a number the question does not already hold
            return 1.0
        asked = {m.group(0).lower() for m in _NUMBER_WORD_RE.finditer(question)}
        return 1.0 if {m.group(0).lower() for m in _NUMBER_WORD_RE.finditer(sentence)} - asked else 0.0
    if kind == "money":
        return 1.0 if _MONEY_RE.search(sentence) and fits("number", sentence, question) else 0.0
    if kind == "time":
        return 1.0 if _TIME_RE.search(sentence) else 0.0
    if kind == "reason":
        return 1.0 if _REASON_RE.search(sentence) else 0.0
    if kind == "name":
        return 1.0 if set(_names(sentence)) - set(_names(question)) else 0.0
    return 0.0


@functools.lru_cache(maxsize=8192)
def _names(text: str) -> tuple[str, ...]:
    from rag.answer.followup import names

    return tuple(names(text))
