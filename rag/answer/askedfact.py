"""What a sentence must hold to state the asked fact: the asked counter, measure or attribute.

A question asking "몇 개 기관" is answered by "18개 기관", not by "5개 팀"; "how old" by an age,
"how many GPUs" over a Korean article by a sentence naming the GPUs; "How many employees does KT
have?" by a sentence about employees, in either language. :mod:`rag.answer.nearmiss` refuses a
lead that fails these checks and :class:`rag.answer.evidence.Evidence` prefers one that passes.
Word lists are hand-written and cover common news attributes only; they were chosen on whole
sets (``bench/answer_rules.py``, ``notes/issue-14.md``, ``notes/issue-14-r3.md``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.text import has_hangul

_KO_NUMERALS = "한|두|세|네|다섯|여섯|일곱|여덟|아홉|열|스무|수십|수백|수천|여러"
_COUNTERS = "개국|개|명|곳|종|팀|건|대|척|권|마리|채|기관|번째|번|차례|배|위|가지|세|살|회|층|편|점|표|석"


_HOW_MANY_RE = re.compile(r"몇\s*([가-힣]{1,2}?)(?:\s|의|이|인|가|은|는|을|를|에|로|$)(?:\s*([가-힣]{2,}))?")


def counted(question: str, sentence: str) -> bool:
    """For "몇 개 기관", "몇 명": whether ``sentence`` counts with the same counter ("18개 기관",
    "세 명"), and when the question names what is counted right after the counter, that word
    follows the number closely. True when the question has no such counter."""
    m = _HOW_MANY_RE.search(question)
    if not m or not m.group(1):
        return True
    counter, noun = m.group(1), m.group(2)
    if question[m.end(1) : m.end(1) + 1] not in {" ", "의"}:
        noun = None  # "몇 명이 사망했나": a verb follows the particle, not what is counted
    if counter not in _COUNTERS.split("|"):
        return True  # "몇 시였는가", "몇 점": only the usual counters are checked
    unit = "(?:명|인)" if counter == "명" else re.escape(counter)  # "7인조" counts people too
    number = rf"(?:\d[\d,.]*|{_KO_NUMERALS})\s*(?:[억만천조]\s*)?{unit}"
    if counter == "번째":  # "몇 번째 아들" is answered by "여덟째 아들" too
        number += rf"|(?<![가-힣])(?:{_KO_ORDINALS})째"
    found = list(re.finditer(number, sentence))
    if not found:
        return False
    if not noun or len(noun) < 2:
        return True
    stem = noun[:2]  # what is counted, after the number ("18개 기관") or before it ("법률가 342명")
    return any(stem in sentence[max(0, f.start() - 10) : f.end() + 8] for f in found)


_KO_ORDINALS = "첫|둘|셋|넷|다섯|여섯|일곱|여덟|아홉|열"
# what an English "how many X" counts, and the Korean counters a Korean sentence counts it with
_EN_COUNTED = (
    (
        r"people|persons|employees|workers|staff|members|students|residents|victims|soldiers|passengers|"
        r"players|researchers|experts|children|men|women|users|visitors|participants|athletes",
        r"명|인(?![가-힣])",
    ),
    (r"teams", r"팀"),
    (
        r"companies|firms|businesses|institutions|organi[sz]ations|agencies",
        r"곳|개사|개\s*(?:기업|회사|기관|단체|업체)|기관",
    ),
    (r"countries|nations", r"개국|개\s*(?:나라|국가)|국"),
)
_EN_COUNTED_RE = tuple((re.compile(rf"\bhow\s+many\s+(?:\w+\s+)?(?:{q})\b", re.I), c) for q, c in _EN_COUNTED)


def counted_across(question: str, sentence: str) -> bool:
    """For an English "how many people / teams / companies / countries" over a Korean sentence:
    whether it counts with a Korean counter for them ("342명", "5개팀", "18개 기관"). True otherwise."""
    if not has_hangul(sentence):
        return True
    for asks, counter in _EN_COUNTED_RE:
        if asks.search(question):
            number = rf"(?:\d[\d,.]*|{_KO_NUMERALS})\s*(?:[억만천]\s*)?(?:개\s*)?(?:{counter})"
            return re.search(number, sentence) is not None
    return True
_EN_NUMBER = (
    r"\d[\d,.]*|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
    r"hundreds?|thousands?|millions?|billions?|dozens?)\b"
)
_EN_HOW_MANY_RE = re.compile(r"\bhow\s+many\s+([a-z]+)", re.I)
_PEOPLE = r"people|persons|killed|dead|died|injured|victims|residents|inhabitants|men|women|children|workers"
# questions that ask for a measure, and what a sentence must hold to answer them
_MEASURES = (
    (
        re.compile(r"\bhow\s+old\b|\bwhat\s+age\b|나이|몇\s*살", re.I),
        re.compile(
            rf"\d+\s*(?:years?|-year|세|살)|\baged?\s+\d+|(?:{_KO_NUMERALS}|서른|마흔|쉰|예순|일흔|여든|아흔)\s*살",
            re.I,
        ),
    ),
    (
        re.compile(r"\bhow\s+(?:tall|high)\b|\bheight\b|높이|키는", re.I),
        re.compile(r"\d[\d,.]*\s*(?:m|metres?|meters?|feet|ft|foot|cm|km|미터|피트|센티|킬로)(?![a-z])", re.I),
    ),
    (
        re.compile(r"\bhow\s+fast\b|\bspeed\b|속도|풍속|속력", re.I),
        re.compile(
            r"\d[\d,.]*\s*(?:km/h|kph|mph|knots?|miles?\s+(?:per|an)\s+hour|kilomet\w*\s+(?:per|an)\s+hour|m/s|"
            r"킬로미터|마일|노트)",
            re.I,
        ),
    ),
    (
        re.compile(r"\bpopulation\b|인구", re.I),
        re.compile(
            r"(?:population|inhabitants|residents|인구)\D{0,30}\d|\d[\d,.]*\s*(?:million\s+)?(?:inhabitants|residents)",
            re.I,
        ),
    ),
)


_EN_ADJECTIVES = frozenset(
    "different other more major new total separate individual distinct big small large".split()  # noqa: SIM905
)


def measured(question: str, sentence: str, passages: Sequence[str] | None = None, cross: bool = False) -> bool:
    """For "how old / how tall / what speed / population" and "how many X" questions: whether the
    sentence holds that measure ("32세", "2.35m", "150 km/h") or a number next to X ("6 people").
    ``cross`` (an English question, a Korean sentence): X only has to be in the sentence when the
    ``passages`` write it in Latin script ("How many GPUs" -> "AMD GPU 기반 인프라")."""
    for asks, holds in _MEASURES:
        if asks.search(question):
            return bool(holds.search(sentence))
    m = _EN_HOW_MANY_RE.search(question)
    if not m:
        return True
    words = question[m.start(1) :].split()
    noun = next((w for w in words[:3] if w.lower() not in _EN_ADJECTIVES), words[0]).strip("?.,").lower()
    stem = re.escape(noun[: max(3, min(len(noun) - 2, 6))])
    if passages is not None and not re.search(stem, " ".join(passages), re.I):
        return True  # the articles never name what is counted ("competitors" / "skiers"): cannot check
    if cross:  # Korean numbers and counters cannot be matched to X: X itself must be there
        return bool(re.search(stem, sentence, re.I))
    near = rf"(?:{_EN_NUMBER})\W+(?:\w+\W+){{0,3}}?(?:{stem}|{_PEOPLE if noun == 'people' else stem})"
    return bool(re.search(near, sentence, re.I))


# Attributes a question can ask for, each with how a question asks for it and how a sentence states it,
# in both languages (so an English question can be checked against a Korean sentence). A lead that
# states none of the asked attribute's words does not answer ("How many employees does KT have?" ->
# "KT는 … 18개 기관으로 구성했었다"). Only these common news attributes are checked; a question
# asking for anything else is not refused by this rule.
_ATTRIBUTE_WORDS = (  # (how a question asks, how a sentence states it)
    (
        r"직원|임직원|종업원|\bemployees?\b|\bstaff\b|\bworkforce\b",
        r"직원|임직원|인력|종업원|근로자|employ|staff|workforce|workers",
    ),
    (
        r"매출|영업이익|순이익|\brevenues?\b|\bsales\b|\bprofits?\b|\bearnings\b",
        r"매출|영업이익|순이익|실적|수익|revenue|sales|profit|earning|turnover",
    ),
    (
        r"투자|지원금|펀딩|\binvest\w*|\bfunding\b|\braised?\b|\bgrants?\b",
        r"투자|유치|지원금|자금|펀딩|예산|억원|invest|fund|rais|capital|grant|budget|won\b|dollars?",
    ),
    (
        r"설립|창립|창업|창설|\bfounded\b|\b(?:was|were|been)\s+(?:\w+\s+)?established\b",
        r"설립|창립|출범|창업|창설|세운|세웠|found|establish|set\s+up|launch|creat",
    ),
    (
        r"대표는|대표이사|ceo|회장|사장|수장|\bchief\s+executive\b|\bhead\s+of\b|\bleads?\b(?!\s+to\b)|"
        r"\bchairman\b|\bfounder\b",
        r"대표|ceo|회장|사장|수장|이끄|이끌|창업자|설립자|chief|head|lead|chair|founder|president",
    ),
    (
        r"파라미터|매개변수|\bhow\s+many\s+parameters\b|\bparameters?\s+(?:does|do|did|has|have)\b",
        r"파라미터|매개변수|parameter|\d+(?:\.\d+)?\s*[BbMm]\b",
    ),
    (r"출시|\breleased?\b|\blaunch\w*", r"출시|공개|발표|선보|출범|내놓|release|launch|unveil|introduc|publish"),
    (r"인구|\bpopulation\b", r"인구|population|inhabitant|resident"),
    (  # a model's name is asked for ("the name of LG AI Research's model", "what model did X submit")
        r"모델\s*(?:의\s*)?(?:이름|명)|\bname\s+of\b.*\bmodel|\bmodel['’]?s?\s+name|\b(?:what|which)\s+(?:\w+\s+)?models?\b",
        r"모델|model|LLM|‘",
    ),
    (
        r"사망|숨진|\bdied\b|\bkilled\b|\bdeaths?\b",
        r"사망|숨진|숨졌|희생|사상자|목숨|died|killed|dead|death|fatalit|lives",
    ),
)
_ATTRIBUTES = tuple((re.compile(q, re.I), re.compile(t, re.I)) for q, t in _ATTRIBUTE_WORDS)
ATTRIBUTE_CHECK = True


def asked_attribute_missing(question: str, lead: str) -> bool:
    """Whether ``question`` asks for one of the common attributes (above) that ``lead`` never states."""
    return ATTRIBUTE_CHECK and any(q.search(question) and not t.search(lead) for q, t in _ATTRIBUTES)
