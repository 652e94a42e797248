"""Follow-up questions: rewrite a question that leans on earlier turns into a standalone one.

Retrieval sees one string, so "그 회사의 모회사는 어디야?" or "What about KT?" must
carry the names the conversation already settled. The rules, applied to the
latest user turn (earlier user turns are resolved first, in order):

- ellipsis ("KT는?", "What about Kakao?", "And KT?"): the new name replaces the
  name of the previous question ("카카오의 자체 개발 LLM 이름은 뭐야?" ->
  "KT의 자체 개발 LLM 이름은 뭐야?"); without a name to replace, the new topic
  replaces the old topic ("탈락한 곳은?" after "최종 선발된 컨소시엄은 어디야?");
- anaphora ("그 회사", "이 모델", "거기", "it", "its", "that company"): the
  pronoun or determiner is replaced by the antecedent: the names of the
  previous question (the user's words come first) and the one new name the
  cited answer gives, when it gives exactly one; after a
  "which/who/어디/누구" question, or one without names, the first new name in
  the cited part of the previous answer that best matches that question (the
  answer of "올해 2월 출범한 곳은 어디야?" introduces the company that "그 회사"
  means). The other names an answer lists (a consortium's partners) are never
  taken for the subject;
- other follow-up signals (a leading "그럼", "And", "also", "누가 그렇게 말했어?")
  or a short question without any name: the previous question's names, or the
  previous question itself when it has none, are added.

A question that names its own subject and shows none of these signals is left
as it is. No LLM is involved: the rules are cheap, deterministic and testable.
Names are Kiwi proper nouns, Latin-script names and acronyms, and short quoted
titles (‘믿:음 2.0’).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.records import Turn
from rag.text import has_hangul, kiwi

# acronyms that are ordinary nouns in this domain, never the subject being asked about
COMMON_ACRONYMS = frozenset(
    "ai llm sllm gpu cpu api it ceo cto ax ux ui ml nlp moe stem ip pc tv ok vs usd krw etc".split()  # noqa: SIM905
)
_EN_STARTERS = frozenset(
    """what which who whom whose when where why how is are was were do does did can could will would should
    shall may might and or but so also then tell give list name please i the a an in on at of for to by
    according about if yes no ok""".split()  # noqa: SIM905
)
_QUOTED_RE = re.compile(r"[‘'“\"「『]([^‘’'“”\"「」『』\n]{1,25})[’'”\"」』]")
_EN_NAME_RE = re.compile(r"[A-Z][\w&.'’-]*(?:\s+(?:of\s+|for\s+|&\s+)?[A-Z0-9][\w&.'’-]*)*")
_POSSESSIVE_RE = re.compile(r"['’]s?$")
_MARKER_RE = re.compile(r"\[\d+\]")

# ---- follow-up signals
_KO_DETERMINER_RE = re.compile(r"(?:^|(?<=\s))(그|이|저|해당)\s+(?=[가-힣A-Za-z])")
_KO_PRONOUN_RE = re.compile(r"(?:^|(?<=\s))(그곳|거기|그것|그거|이것|이곳|그들|그녀|그분|이분|걔|얘)")
_KO_SIGNAL_RE = re.compile(r"^\s*(그럼|그러면|그리고|그래서|그런데|또|그렇다면)\b|그렇게|그런|이런|그때|당시|또한?\s")
_KO_ELLIPSIS_RE = re.compile(r"^\s*(?:그럼|그러면|그리고|그렇다면)?\s*(.+?)\s*(?:은|는|도|의 경우는|쪽은)\s*[?？]?\s*$")
_DOC_NOUNS_RE = re.compile(r"^(기사|글|보도|뉴스|article|story|report|passage|text)")
_EN_ABOUT_RE = re.compile(r"^\s*(?:and\s+|so\s+)?(?:what|how)\s+about\s+(.+?)\s*[?.!]*\s*$", re.I)
_EN_AND_RE = re.compile(r"^\s*and\s+([^?]{1,40}?)\s*\?\s*$", re.I)
_EN_PRONOUN_RE = re.compile(r"\b(it|its|they|them|their|he|him|his|she|her)\b", re.I)
_EN_DEMONSTRATIVE_RE = re.compile(
    r"\b(?:that|this|the|these|those)\s+(company|firm|team|consortium|model|organi[sz]ation|group|"
    r"startup|agency|institution|person|one|companies|firms|teams|models)\b",
    re.I,
)
_ASKS_FOR_NAME_RE = re.compile(
    r"어디|누구|어느|어떤\s*(회사|기업|곳|팀|기관)|\b(which|who|whom)\b|\bwhat\s+(company|firm|team|organi[sz]ation)\b",
    re.I,
)
_EN_SIGNAL_RE = re.compile(r"^\s*(and|also|so|then|what else)\b|\b(also|too|else|instead)\b", re.I)
MAX_SHORT_TOKENS = 3  # a question with at most this many content words and no name is elliptical


def resolve(question: str, history: Sequence[Turn] = ()) -> str:
    """The standalone form of ``question`` given the earlier turns (unchanged without history)."""
    question = question.strip()
    pairs = _pairs(history)
    if not pairs:
        return question
    prev_q, prev_a = "", ""
    for q, a in pairs:  # earlier questions may be follow-ups themselves
        prev_q, prev_a = _resolve_one(q, prev_q, prev_a), a
    return _resolve_one(question, prev_q, prev_a)


def _pairs(history: Sequence[Turn]) -> list[tuple[str, str]]:
    """(user question, assistant answer) pairs in order; a missing answer is ""."""
    out: list[tuple[str, str]] = []
    for t in history:
        role = (t.role or "").lower()
        if role == "user" and t.content.strip():
            out.append((t.content.strip(), ""))
        elif role == "assistant" and out and not out[-1][1]:
            out[-1] = (out[-1][0], t.content)
    return out


def _resolve_one(question: str, prev_q: str, prev_a: str) -> str:
    if not prev_q:
        return question
    antecedent = _antecedent(prev_q, prev_a)

    replaced = _replace_anaphora(question, antecedent)
    if replaced != question:
        return replaced

    fragment = _ellipsis(question)
    if fragment is not None:
        return _substitute(fragment, prev_q, names(prev_q))

    own = names(question)
    short = not own and len(_content(question)) <= MAX_SHORT_TOKENS
    if short or _has_signal(question):
        context = " ".join(names(prev_q)[:2]) or prev_q  # the user's own words before the answer's
        return f"{context} {question}" if has_hangul(question) else f"{question} ({context})"
    return question


def _antecedent(prev_q: str, prev_a: str) -> str:
    """What "it" / "그 회사" most likely means after ``prev_q`` was answered with ``prev_a``."""
    q_names = names(prev_q)
    a_names = [n for n in names(_focus(prev_a, prev_q)) if n not in q_names and n not in prev_q]
    # "which company ...?" -> the company the answer named first (its subject); otherwise the user's
    # own names, plus the answer's name when it named exactly one: an answer that lists partners
    # ("코난테크놀로지는 ▲사이냅소프트 ▲알체라 ...") does not change whom the conversation is about
    asks_for_name = bool(_ASKS_FOR_NAME_RE.search(prev_q)) and bool(a_names) and not _owner(prev_q, q_names)
    # the one thing the answer named ("KT의 대표 LLM은?" -> ‘믿:음 2.0’), never a list of partners
    single = a_names if len(a_names) == 1 else []
    chosen = a_names[:1] if asks_for_name or not q_names else q_names[:2] + single
    if chosen:
        return " ".join(chosen)
    topic = _ko_topic(prev_q) if has_hangul(prev_q) else ""
    return topic.strip() or prev_q


_OWNER_AFTER_RE = re.compile(r"^(?:['’]s\b|\s*(?:의|은|는|이|가)?\s*(?:컨소시엄|consortium|팀|team)|의\s)", re.I)


def _owner(question: str, q_names: list[str]) -> bool:
    """Whether the question asks about members of a named party ("KT 컨소시엄에는 어떤 기관이?",
    "Who joined KT's consortium?"): then the answer's names are its partners, not a new subject."""
    for n in q_names:
        i = question.find(n)
        if i >= 0 and _OWNER_AFTER_RE.match(question[i + len(n) :]):
            return True
    return False


def _ellipsis(question: str) -> str | None:
    """The new topic of "X는?" / "What about X?" / "And X?", or None."""
    m = _EN_ABOUT_RE.match(question) or _EN_AND_RE.match(question)
    if m and m.group(1).split()[0].lower() not in _EN_STARTERS:
        return m.group(1)
    m = _KO_ELLIPSIS_RE.match(question)
    if m and len(_content(question)) <= MAX_SHORT_TOKENS and not _has_predicate(m.group(1)):
        return m.group(1)
    return None


def _substitute(fragment: str, prev_q: str, prev_names: list[str]) -> str:
    new = names(fragment)
    if new and prev_names:
        first, last = fragment.find(new[0]), fragment.find(new[-1]) + len(new[-1])
        span = fragment[first:last] if 0 <= first < last else new[0]
        return prev_q.replace(prev_names[0], span, 1)
    if has_hangul(prev_q):
        topic = _ko_topic(prev_q)
        if topic:
            return fragment.strip() + prev_q[len(topic) :]
    return f"{fragment.strip()} {prev_q}"


def _replace_anaphora(question: str, antecedent: str) -> str:
    out = question
    if has_hangul(question):

        def det(m: re.Match[str]) -> str:
            rest = out[m.end() :]
            return m.group(0) if _DOC_NOUNS_RE.match(rest) else antecedent + " "

        out = _KO_DETERMINER_RE.sub(det, out)
        out = _KO_PRONOUN_RE.sub(lambda _m: antecedent, out)  # a function: no template escapes
    out = _EN_DEMONSTRATIVE_RE.sub(lambda _m: antecedent, out)

    def pron(m: re.Match[str]) -> str:
        w = m.group(1).lower()
        return f"{antecedent}'s" if w in {"its", "their", "his", "her"} else antecedent

    return _EN_PRONOUN_RE.sub(pron, out)


def _has_signal(question: str) -> bool:
    return bool(_KO_SIGNAL_RE.search(question) or _EN_SIGNAL_RE.search(question))


def _focus(answer: str, question: str) -> str:
    """The cited part of an answer that best matches its question (a line without a marker is a
    note, not a claim); ties go to the first."""
    cited = [line for line in answer.splitlines() if _MARKER_RE.search(line)]
    pieces = [p for p in re.split(r"(?<=\])\s+", " ".join(cited)) if p.strip()] if cited else [answer]
    if len(pieces) == 1:
        return pieces[0]
    from rag.text import tokens

    wanted = set(tokens(question))
    return max(pieces, key=lambda p: len(wanted & set(tokens(p))))


def _content(text: str) -> list[str]:
    from rag.text import tokens

    return tokens(text)


def _has_predicate(fragment: str) -> bool:
    if not has_hangul(fragment):
        return False
    toks = kiwi().tokenize(fragment)
    return any(str(t.tag).startswith(("VV", "VA")) and t.form not in {"하", "되"} for t in toks)


def _ko_topic(question: str) -> str:
    """The part of a Korean question before its first topic particle (은/는)."""
    for t in kiwi().tokenize(question):
        if str(t.tag) == "JX" and t.form in {"은", "는"}:
            return question[: int(t.start)]
    return ""


def names(text: str) -> list[str]:
    """Names in ``text`` in order: quoted titles, proper nouns, Latin names and acronyms."""
    found: list[tuple[int, str]] = [(m.start(1), m.group(1).strip()) for m in _QUOTED_RE.finditer(text)]
    if has_hangul(text):
        found.extend(_ko_names(text))
    else:
        found.extend(_en_names(text))
    out: list[str] = []
    for _, n in sorted(found):
        if n and n not in out and not any(n in o for o in out):
            out.append(n)
    return out


def _ko_names(text: str) -> list[tuple[int, str]]:
    runs: list[tuple[int, int]] = []
    for t in kiwi().tokenize(text):
        tag = str(t.tag)
        start, end = int(t.start), int(t.start) + int(t.len)
        if tag == "SL" and not _latin_name(t.form):
            continue  # Latin words that are not names ("the", "source") end a run and start none
        if tag in {"NNP", "SL", "SH"} or (tag == "SN" and runs and runs[-1][1] == start):
            if runs and text[runs[-1][1] : start] in {"", " ", "-"}:
                runs[-1] = (runs[-1][0], end)
            else:
                runs.append((start, end))
    out = []
    for a, b in runs:
        name = text[a:b]
        words = re.findall(r"[\w]+", name)
        if all(_common(w) or w.lower() in _EN_STARTERS or w.isdigit() for w in words):
            continue
        if not has_hangul(name) and not any(ch.isupper() or ch.isdigit() for ch in name):
            continue
        out.append((a, name))
    return out


def _latin_name(word: str) -> bool:
    return any(ch.isupper() or ch.isdigit() for ch in word) and word.lower() not in _EN_STARTERS


def _common(word: str) -> bool:
    w = word.lower()
    return w in COMMON_ACRONYMS or (w.endswith("s") and w[:-1] in COMMON_ACRONYMS)


def _en_names(text: str) -> list[tuple[int, str]]:
    out = []
    for m in _EN_NAME_RE.finditer(text):
        words = m.group().split()
        start = m.start()
        while words and (words[0].lower().strip("'’") in _EN_STARTERS):
            start += len(words[0]) + 1
            words = words[1:]
        if not words:
            continue
        name = _POSSESSIVE_RE.sub("", " ".join(words).rstrip(".,"))
        if _common(name) or len(name) < 2:
            continue
        out.append((start, name))
    return out
