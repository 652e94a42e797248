"""Near misses: does the lead sentence hold the asked fact about the asked subject?

A question names a subject ("삼성SDS", "LG AI연구원", "KT") and asks for a fact
about it (a name, a number, a date, "the model's name"). Retrieval always
returns the closest passages, so a question about a subject the articles do not
cover, or about a detail of a covered subject that they do not state, still gets
sentences that look related. :func:`gap` tells the answerer when to refuse:

- ``subject``: the question's first name (its topic) occurs in no retrieved
  passage or headline (Hangul names allow transliteration variants; Latin names
  match by word; across languages only Latin-script acronyms such as "KT", "SDS"
  can be checked);
- ``fact``: the lead comes from a passage that does not name the subject and
  holds none of the asked words (or, for a number/date/amount question, only
  the first), or while another retrieved passage of its article does name it;
  across languages, while another retrieved passage names the English subject
  as written or by sound (:mod:`rag.answer.soundalike`), or without an asked
  word the Korean passages write in Latin script ("GPU"); it states none of the
  words of a common asked attribute (employees, revenue, funding, founding,
  leader, parameters, release, population, deaths, models; both languages); it
  holds nothing of the asked type (a number for "몇/how many", an amount for
  "얼마/how much ... invest", a date for "언제/when"), not with the asked counter
  ("몇 개 기관" -> "18개 기관", "how many teams" -> "15개팀") or measure ("how
  old", "how many people"): :mod:`rag.answer.askedfact`; or an "X의 이름"
  question's lead names X without the asked attribute word.

:class:`rag.answer.evidence.Evidence` uses the same checks to pick a lead that
answers before :func:`gap` is asked. The short answer inside the lead sentence
is :mod:`rag.answer.shortspan`'s. Thresholds and rules are chosen on whole sets
(``bench/answer_rules.py``; the numbers are in ``notes/issue-14.md`` and ``notes/issue-14-r3.md``).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer import soundalike
from rag.answer.askedfact import asked_attribute_missing, counted, counted_across, measured
from rag.answer.followup import names as _all_names
from rag.answer.support import answer_type, fits, token_set
from rag.text import has_hangul

# words that say how a question asks, not what it asks about
_GENERIC = frozenset(
    """이름 것 무엇 뭐 얼마 언제 어디 누구 어떻다 어느 몇 곳 때 점 경우 내용 무슨 묻다 알다 말하다 대하 관하다
    다음 지문 따르다 설명 옳다 맞다 틀리다 정확하다 사실 정보 언급 나오다 제시 해당 가장 중 예 제외
    true false correct following statement mention mentioned describe described
    name kind type many much long year date time call called who what which where when how
    according passage text article""".split()  # noqa: SIM905
)
_QUESTION_WORD_RE = re.compile(r"^(누가|누구|왜|언제|어디|무엇|어느|몇)")
_ACRONYM_RE = re.compile(r"\b[A-Z][A-Z0-9]{1,}\b")
_GENERIC_ACRONYMS = frozenset({"ai", "llm", "gpu"})  # in every passage: they name no one

FACT_SEM = 0.86  # a lead sentence without any asked word still answers when its own cosine is this high


@dataclass(frozen=True)
class Gap:
    """Why the quoted sentences do not answer: ``kind`` is "subject" or "fact"."""

    kind: str
    subject: str  # the asked subject as written in the question ("" when it names none)
    want: str  # the kind of answer asked for ("number", "time", "money", "name" or "")


_TRAILING_PARTICLE_RE = re.compile(
    r"(?:에서는|에서|에는|으로|까지|부터|처럼|보다|의|은|는|이|가|을|를|에|와|과|도|로|만|['’]s?)$"
)


def _whole_word(question: str, name: str) -> str:
    """The name with the rest of its written word ("LG AI" -> "LG AI연구원"), particles removed."""
    i = question.find(name)
    if i < 0:
        return name
    j = i + len(name)
    while j < len(question) and not question[j].isspace() and question[j] not in "?？.,!\"”“'’)(":
        j += 1
    return _TRAILING_PARTICLE_RE.sub("", question[i:j]) or name


@functools.lru_cache(maxsize=8192)
def _cached_names(text: str) -> tuple[str, ...]:
    return tuple(_all_names(text))


def names(text: str) -> list[str]:
    """:func:`rag.answer.followup.names`, cached: the same question and sentences are checked several times."""
    return list(_cached_names(text))


@functools.lru_cache(maxsize=4096)
def asked_words(question: str) -> frozenset[str]:
    """The question's content words other than its names and question words."""
    subject: set[str] = set()
    for n in names(question):
        subject |= token_set(_whole_word(question, n))
    return frozenset(t for t in token_set(question) if t not in subject and t.lower() not in _GENERIC)


TYPED_SUBJECT = True  # a number/date question's lead must come from a passage that names its subject
def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text).casefold()


def subject_names(question: str, cross: bool) -> list[str]:
    """Names the answer must be about; across languages only acronyms written the same in both."""
    # a quoted fragment with punctuation or a long run is not a name ('지문에 따르면, 티벳 명상')
    found = [
        _whole_word(question, n)
        for n in names(question)
        if len(re.sub(r"\W", "", n)) >= 2 and len(n) <= 20  # not a stray letter ("B" of "2.6B")
        and not re.search(r"[,\"“”]", n)
        and not _QUESTION_WORD_RE.match(n)
        and not _sentence_start(question, n)
    ]
    if cross:
        return [a for n in found for a in _ACRONYM_RE.findall(n) if a.lower() not in _GENERIC_ACRONYMS]
    return found


def gap(
    question: str,
    lead: str,
    lead_sem: float | None,
    passages: Sequence[str],
    cross: bool,
    fact_sem: float = FACT_SEM,
    lead_passage: str = "",
    same_doc: Sequence[str] = (),
) -> Gap | None:
    """The reason ``lead`` (the best source sentence) does not answer ``question``, or None.
    ``lead_passage`` is the passage the lead comes from (the subject may be named there only),
    ``same_doc`` the other retrieved passages of its article."""
    want = answer_type(question)
    subjects = subject_names(question, cross)
    subject = subjects[0] if subjects else ""
    if subjects:
        text = " ".join(passages)
        # the first name is what the question is about ("엔씨소프트는 K-AI 사업에서 ...?")
        if not _present(subjects[0], text):
            return Gap("subject", subject, want)
    if (
        not cross
        and subject
        and lead_passage
        and not _present(subject, lead_passage)
        and not asked_words(question) & token_set(lead)
    ):  # the articles name the subject, but not where the lead is, and the lead has no asked word
        return Gap("fact", subject, want)
    if (
        SUBJECT_ELSEWHERE
        and not cross
        and subject
        and lead_passage
        and not _present(subject, lead_passage)
        and any(_present(subject, p) for p in (same_doc if SUBJECT_ELSEWHERE == 1 else passages))
    ):  # the article names the subject in another passage, not in the quoted one ("NC AI는 어떤 GPU를
        # 사용하나?" -> Motif's AMD GPU sentence)
        return Gap("fact", subject, want)
    if (
        TYPED_SUBJECT
        and subject  # across languages an acronym ("How many institutions joined SKT's consortium?")
        and want in {"number", "time", "money"}
        and lead_passage
        and not _present(subject, lead_passage)
    ):  # a number or a date from a passage about something else ("솔트룩스의 루시아3는 파라미터가 몇 개?"
        # -> "첫 모델로 26억개 매개변수를 가진 ‘모티프 2.6B’")
        return Gap("fact", subject, want)
    if cross and _heard_elsewhere(question, passages, lead_passage, want):
        # "How much did Naver Cloud invest?" -> Moreh's 300억원: 네이버클라우드 is in another passage
        return Gap("fact", subject_names(question, cross=False)[0], want)
    if cross and LATIN_ASKED and _latin_asked_missing(question, lead, passages):
        return Gap("fact", subject or latin_subject(question), want)
    if asked_attribute_missing(question, lead):
        return Gap("fact", subject, want)
    if want in {"number", "time", "money"} and not fits(want, lead, question):
        return Gap("fact", subject, want)
    if want == "number" and not (
        counted_across(question, lead) and measured(question, lead, [lead_passage], cross=True)
        if cross
        else counted(question, lead) and measured(question, lead, passages)
    ):  # across languages: measures, Latin-script counted words ("how many GPUs") and the usual counters
        return Gap("fact", subject, want)
    if not cross and subject and _NAMED_ATTRIBUTE_RE.search(question) and _present(subject, lead):
        # the lead is about the subject but says nothing of what is asked ("LG AI연구원이 공개한
        # 모델의 이름은?" -> the list of winners)
        asked = asked_words(question)
        if asked and not asked & token_set(lead) and (lead_sem is None or lead_sem < fact_sem):
            return Gap("fact", subject, want)
    return None


SUBJECT_ELSEWHERE = 1.0  # same language: 0 off, 1 the lead's article names the subject elsewhere, 2 any passage
SOUND_SUBJECT = 2.0  # across languages, the subject heard in another passage: 0 off, 1 typed questions, 2 all


def latin_subject(question: str) -> str:
    """The distinctive words of the question's first Latin-script name ("Naver Cloud", "NC"), or ""."""
    names_ = [n for n in subject_names(question, cross=False) if not has_hangul(n)]
    if not names_:
        return ""
    words = [w for w in re.findall(r"[A-Za-z]+", names_[0]) if w.lower() not in _TITLE_WORDS | _GENERIC_ACRONYMS]
    return " ".join(words)


def names_subject(name: str, passage: str) -> bool:
    """Whether ``passage`` names the Latin-script ``name``: written as it is ("KT", "iPod"), or, unless
    it starts with an acronym, by sound in Hangul ("Naver Cloud" -> "네이버클라우드")."""
    if _latin_present(name, passage):
        return True
    return not name.split()[0].isupper() and soundalike.found(name, passage)


LATIN_ASKED = 1.0  # across languages, an asked word the Korean passages write in Latin must be in the lead


def _latin_asked_missing(question: str, lead: str, passages: Sequence[str]) -> bool:
    """Whether an asked word of the English ``question`` (not its subject) that the retrieved Korean
    passages write in Latin script ("GPU", "K-AI") is missing from the Korean ``lead``: that word
    can be matched as written, so a lead without it is about something else."""
    if has_hangul(question) or not has_hangul(lead):
        return False  # only an English question over a Korean lead
    subject = {w.lower() for w in re.findall(r"[A-Za-z]+", latin_subject(question))}
    text = " ".join(passages)
    for w in re.findall(r"[A-Za-z][A-Za-z0-9-]*[A-Z0-9]", question):  # "GPU", "K-AI", "H5N1": as written
        if w.lower() in subject or w.lower() == "ai" or not (w.isupper() or re.search(r"[\d-]", w)):
            continue
        rx = rf"(?<![A-Za-z0-9]){re.escape(w.rstrip('s') if len(w) > 3 else w)}"
        if re.search(rx, text, re.I) and not re.search(rx, lead, re.I):
            return True
    return False


def _heard_elsewhere(question: str, passages: Sequence[str], lead_passage: str, want: str) -> bool:
    """Whether the Latin-script subject of ``question`` is named in some retrieved passage but not in
    the lead's (:func:`names_subject`; only positive matches count, so a subject found nowhere
    decides nothing)."""
    if not SOUND_SUBJECT or not lead_passage or (SOUND_SUBJECT == 1 and want not in {"number", "time", "money"}):
        return False
    if has_hangul(question):  # a Korean question's subject is checked as written (``gap``)
        return False
    name = latin_subject(question)
    if not name or names_subject(name, lead_passage):
        return False
    return any(names_subject(name, p) for p in passages)


# "X의 **모델** 이름은?": the question names the attribute it wants, which the lead must mention
# (measured on Belebele ko, a general "no asked word in the lead" rule refused 6% of answerable
# multiple-choice questions, so only questions that name the attribute are checked)
_NAMED_ATTRIBUTE_RE = re.compile(r"[가-힣]+의?\s*이름|\bname\s+of\b", re.I)
PRESENT_SHARE = 0.51  # at least this share of a name's character pairs must occur in the passages


def _present(name: str, raw: str) -> bool:
    """Whether ``name`` occurs in the text ``raw``, allowing spelling variants of transliterations
    ("알버트 무창가" / "알버트 무찬가", "베튼" / "배튼", "고양이과" / "고양잇과") and, for Latin-script
    names, one of its distinctive words ("Hurricane Felicia" / "Felicia", "Iraqi" / "Iraq")."""
    if not has_hangul(name):
        return _latin_present(name, raw)
    key, text = _fold(_norm(name)), _fold(_norm(raw))
    if key in text:
        return True
    if re.search(r"[A-Za-z0-9]", key):
        return False  # "LG AI연구원" is not "LG전자": mixed names are matched whole
    pairs = [key[i : i + 2] for i in range(len(key) - 1)]
    return bool(pairs) and sum(p in text for p in pairs) / len(pairs) >= PRESENT_SHARE


def _sentence_start(question: str, name: str) -> bool:
    """A single capitalised word opening an English question is its grammar, not a name
    ("Following the explosion, …", "Based on the passage, …", "During …")."""
    return (
        not has_hangul(name)
        and question.lstrip().startswith(name)
        and " " not in name
        and name[1:].islower()
    )


_TITLE_WORDS = frozenset(
    "the of and mr mrs ms dr st king queen prince president hurricane storm saint".split()  # noqa: SIM905
)


def _latin_present(name: str, raw: str) -> bool:
    """A Latin-script name is present when one of its words is, as a word: acronyms exactly
    ("SKT" is not "KT"), longer words by their stem ("Iraqi" -> "Iraq")."""
    words = [w for w in re.findall(r"[A-Za-z0-9]+", name) if w.lower() not in _TITLE_WORDS | _GENERIC_ACRONYMS]
    if not words:
        return True  # nothing distinctive to look for
    for w in words:
        if w.isupper() or any(ch.isdigit() for ch in w) or len(w) <= 4:
            rx = rf"(?<![A-Za-z0-9]){re.escape(w)}(?:s|es)?(?![A-Za-z0-9])"
            flags = 0 if w.isupper() else re.I
        else:
            rx, flags = rf"(?<![A-Za-z]){re.escape(w[: max(4, len(w) - 2)])}", re.I
        if re.search(rx, raw, flags):
            return True
        if len(w) >= 7:  # a misspelling ("Antartica"): a word of the text that differs by little
            near = {t for t in re.findall(rf"\b{re.escape(w[0])}[A-Za-z]{{5,}}", raw, re.I)}
            if any(difflib.SequenceMatcher(None, w.lower(), t.lower()).ratio() >= FUZZY for t in near):
                return True
    return False


FUZZY = 0.85  # similarity of a long Latin word to a word of the passages that counts as the same name


def _fold(text: str) -> str:
    """Hangul vowels that transliterations mix up made one (ㅐ/ㅔ, ㅒ/ㅖ), "Il"/"II" alike."""
    out = []
    for ch in text.replace("ii", "il"):
        code = ord(ch) - 0xAC00
        if 0 <= code < 11172:
            lead, vowel, tail = code // 588, (code % 588) // 28, code % 28
            vowel = {1: 5, 3: 7}.get(vowel, vowel)
            ch = chr(0xAC00 + lead * 588 + vowel * 28 + tail)
        out.append(ch)
    return "".join(out)
