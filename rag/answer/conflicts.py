"""Conflicting reports: quotes from dated articles that give different numbers for the same thing.

News updates itself: "5개 팀 선정" on 2025-08-01, "4개 팀으로 줄어" on 2025-08-08.
When an extractive answer quotes both, :func:`order_conflicts` leads with the
newest article and says that an earlier report (date, outlet) said otherwise,
citing both. Two quotes conflict when they come from different documents with
different publication days and either count the same unit ("팀", "곳", "%",
"teams") with different numbers, or answer a who/which question with different
names for the same role (a new chief executive, a corrected prize winner:
:func:`names_disagree`). Names are compared only when the question asks for a
name, both sentences share a role word ("대표", "대상", "chief executive",
"won") and mention what the question names, and each names someone the other
does not, so two people quoted side by side for different things are not taken
for a disagreement.
"""

from __future__ import annotations

import re
from dataclasses import replace

from rag.records import Answer, Citation, Sentence

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# a number and the unit word after it: "5개 팀" -> (5, 팀), "4 teams" -> (4, teams), "30%" -> (30, %)
_QUANTITY = re.compile(r"(\d+(?:[.,]\d+)?)\s*(?:개|명|곳|건)?\s*(%|[가-힣]+|[A-Za-z]+)")
_UNIT_STOP = {"년", "월", "일", "시", "분", "the", "of", "and", "in", "on", "to", "at", "by"}
_EARLIER = {
    "ko": "앞서 {day} {who} 보도는 다르게 전했습니다: {quote}",
    "en": "An earlier report by {who} ({day}) said otherwise: {quote}",
}
_LATEST = {
    "ko": "가장 최근인 {day} {who} 보도에 따르면 {quote}",
    "en": "The latest report, by {who} ({day}), says: {quote}",
}


_NUMBER_WORDS = {
    w: str(i) for i, names in enumerate(
        [("zero",), ("one", "a single"), ("two",), ("three",), ("four",), ("five",), ("six",), ("seven",),
         ("eight",), ("nine",), ("ten",), ("eleven",), ("twelve",)]) for w in names
}
_NUMBER_WORD_RE = re.compile(r"(?i)\b(" + "|".join(_NUMBER_WORDS) + r")\b")


def quantities(text: str) -> dict[str, set[str]]:
    """Unit -> the numbers the text gives for it (dates and times are not quantities)."""
    out: dict[str, set[str]] = {}
    text = _NUMBER_WORD_RE.sub(lambda m: _NUMBER_WORDS[m.group(1).lower()], text)
    for value, unit in _QUANTITY.findall(text):
        unit = unit.lower()
        unit = re.sub(r"(으로|로|이|가|은|는|을|를|의|에|과|와|만|도)$", "", unit) or unit
        if unit in _UNIT_STOP or unit.rstrip("s") in _UNIT_STOP:
            continue
        out.setdefault(unit.rstrip("s") if unit.isascii() else unit, set()).add(value.replace(",", ""))
    return out


def disagree(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` give different numbers for a unit both count."""
    qa, qb = quantities(a), quantities(b)
    return any(qa[u] != qb[u] and not (qa[u] & qb[u]) for u in qa.keys() & qb.keys())


# a role or a prize that one person, team or company holds at a time: the heads of an organisation, winners
_ROLE = re.compile(
    r"(?i)대표|사장|회장|의장|위원장|장관|총장|감독|최고경영자|대상|우승|최우수상|1위|당선"
    r"|chief executive|\bceo\b|\bchair(?:man|woman|person)?\b|\bpresident\b|\bminister\b|\bwinner\b"
    r"|\bwon\b|\bwins?\b|\baward\b|\bprize\b|\bwent to\b"
)


# "미리내팀", "오로라 팀": a team's name that Kiwi does not tag as a proper noun ("참가팀", "우승팀" are not names)
_TEAM = re.compile(r"(?<![\w가-힣])(?!(?:참가|우승|수상|본선|결선|선정|상위|하위|각|전체|나머지|다른|한|두|세|네)\s*팀)"
                   r"([가-힣A-Za-z][가-힣A-Za-z0-9]{1,15})\s?팀(?=[이가은는을를의과와도]|으로|로|\b|\s|$)")


def _fold(text: str) -> str:
    return re.sub(r"\s+", "", text).casefold()


def names_disagree(question: str, a: str, b: str) -> bool:
    """True when ``a`` and ``b`` answer a who/which question with different names for the same role
    ("김하늘을 새 대표이사로" / "박준서를 신임 대표이사로"; "went to MediLens" / "went to Farmind"): the
    question asks for a name, both sentences name a role word in common and every name the question
    gives, and each names someone the other does not."""
    from rag.answer.nearmiss import answer_type, names

    if answer_type(question) != "name":
        return False
    roles_a = {m.group(0).lower() for m in _ROLE.finditer(a)}
    if not roles_a & {m.group(0).lower() for m in _ROLE.finditer(b)}:
        return False
    asked = [_fold(n) for n in names(question)]
    if not all(n in _fold(a) and n in _fold(b) for n in asked):
        return False  # not both about what the question names

    def own(text: str, other: str) -> set[str]:
        found = [*names(text), *_TEAM.findall(text)]
        return {n for n in map(_fold, found)
                if n not in _fold(other) and not any(q in n or n in q for q in asked)}

    return bool(own(a, b) and own(b, a))


def _day(c: Citation) -> str:
    return c.published[:10] if _ISO_DAY.fullmatch(c.published[:10]) else ""


def order_conflicts(a: Answer) -> Answer:
    """Newest report first and earlier conflicting ones named, when quotes of dated articles disagree."""
    if a.abstained or a.mode != "extractive" or len(a.citations) < 2:
        return a
    dated = sorted((c for c in a.citations if _day(c)), key=lambda c: (_day(c), -c.n), reverse=True)
    newest, older = None, []
    for cand in dated:  # the newest quote that an earlier article contradicts
        older = [c for c in dated if c.doc_id != cand.doc_id and _day(c) < _day(cand)
                 and (disagree(cand.quote, c.quote) or names_disagree(a.question, cand.quote, c.quote))]
        if older:
            newest = cand
            break
    if newest is None:
        return a
    lang = a.lang if a.lang in _LATEST else "en"
    older.sort(key=lambda c: _day(c), reverse=True)
    order = [newest, *older, *[c for c in a.citations if c is not newest and c not in older]]
    renumber = {c.n: i for i, c in enumerate(order, 1)}
    new_cites = tuple(replace(c, n=renumber[c.n]) for c in order)
    sentences = [Sentence(_LATEST[lang].format(day=_day(newest), who=_who(newest),
                                               quote=f"{newest.quote} [1]"), (1,), True)]
    for c in older:
        n = renumber[c.n]
        sentences.append(Sentence(_EARLIER[lang].format(day=_day(c), who=_who(c), quote=f"{c.quote} [{n}]"), (n,),
                                  True))
    for c in order[1 + len(older):]:
        sentences.append(Sentence(f"{c.quote} [{renumber[c.n]}]", (renumber[c.n],), True))
    conflict = {"newest": newest.doc_id, "earlier": [c.doc_id for c in older]}
    # the short answer ("short") pointed into the previous first quote: it no longer leads
    return replace(a, answer=" ".join(s.text for s in sentences), citations=new_cites, sentences=tuple(sentences),
                   extra={**{k: v for k, v in a.extra.items() if k != "short"}, "conflict": conflict})


def _who(c: Citation) -> str:
    return c.outlet or c.title or c.doc_id
