"""Text primitives: normalisation, language detection, sentences and lexical tokens.

What it does:

- :func:`normalize` makes the canonical form every character offset points into
  (NFC, ``\\n`` newlines, no invisible characters, no trailing spaces);
- :func:`detect_lang` / :func:`hangul_ratio` tell Korean from English by script;
- :func:`split_sentences` returns ``(start, end)`` spans into the text it was
  given: Kiwi's sentence splitter for Korean, a rule-based splitter otherwise;
  blank lines, list items and headings always end a sentence;
- :func:`tokens` / :func:`tokens_batch` produce the lexical tokens BM25 indexes:
  Kiwi content morphemes (lemmas for verbs and adjectives) for Hangul, lower-cased
  words minus stopwords with a light plural stemmer for Latin script. Latin words
  and numbers inside Korean text are tokenised by the same rules as English text,
  so an English query term matches an English word in a Korean article.

What it deliberately does not do: read files, strip boilerplate (``rag.ingest.corpus``)
or count model tokens (``rag.ingest.chunking`` takes a counter from the caller).
Kiwi is imported lazily and created once per process.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
import unicodedata
from collections.abc import Iterable
from typing import Any

KO_THRESHOLD = 0.3  # share of Hangul among letters from which a text counts as Korean

_HANGUL_RE = re.compile("[\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7a3\ud7b0-\ud7ff]")
# zero-width space/non-joiner, word joiner, BOM, soft hyphen; ZWJ (U+200D) stays for emoji sequences
_INVISIBLE_RE = re.compile("[\u200b\u200c\u2060\ufeff\u00ad]")
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRAILING_WS_RE = re.compile(r"[ \t\u00a0\u3000]+\n")
_MANY_BLANKS_RE = re.compile(r"\n{3,}")

# ---------------------------------------------------------------- normalisation


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


def normalize(text: str) -> str:
    """Canonical text all offsets point into; idempotent.

    NFC; ``\\r\\n``/``\\r``/U+2028/U+2029 -> ``\\n``; zero-width characters, BOM,
    soft hyphens and stray control characters removed; no-break spaces become
    spaces; trailing spaces on lines removed; three or more newlines collapse to
    one blank line; leading/trailing whitespace of the whole text removed.
    """
    if not text:
        return ""
    t = unicodedata.normalize("NFC", text)
    t = t.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    t = _INVISIBLE_RE.sub("", t)
    t = _CONTROL_RE.sub("", t)
    t = t.replace("\u00a0", " ")
    t = _TRAILING_WS_RE.sub("\n", t + "\n")
    t = _MANY_BLANKS_RE.sub("\n\n", t)
    return t.strip()


# ---------------------------------------------------------------- language


def hangul_ratio(text: str) -> float:
    """Share of Hangul characters among the letters of ``text`` (0.0 without letters)."""
    letters = sum(1 for ch in text if ch.isalpha())
    if not letters:
        return 0.0
    return len(_HANGUL_RE.findall(text)) / letters


def has_hangul(text: str) -> bool:
    """Whether ``text`` contains any Hangul (syllables or jamo)."""
    return _HANGUL_RE.search(text) is not None


def detect_lang(text: str) -> str:
    """``"ko"`` when Hangul makes up >= ``KO_THRESHOLD`` of the letters, ``"en"`` for
    other letters (the product handles only these two), ``""`` without letters."""
    if not any(ch.isalpha() for ch in text):
        return ""
    return "ko" if hangul_ratio(text) >= KO_THRESHOLD else "en"


# ---------------------------------------------------------------- Kiwi


_KIWI_LOCK = threading.Lock()


def kiwi() -> Any:
    """The process-wide Kiwi instance (loads its model on first use, ~3 s). Made once even when
    several threads ask at once (indexing chunks documents two at a time); using it from several
    threads is safe (Kiwi's author, bab2min/Kiwi#145)."""
    with _KIWI_LOCK:
        return _load_kiwi()


@functools.lru_cache(maxsize=1)
def _load_kiwi() -> Any:
    from kiwipiepy import Kiwi

    # the multi-word proper-noun dictionary doubles the load time (3 s -> 7 s) and only
    # glues names like "뉴욕 타임스" into one token, which BM25 does not need
    return Kiwi(num_workers=-1, load_multi_dict=False)


# ---------------------------------------------------------------- sentences

# a line that starts a new unit even without a blank line before it
_HARD_LINE_RE = re.compile(r"\n(?=[ \t]*(?:[-*+][ \t]|[•▲△■□●○◆◇▶►※]|\d{1,3}[.)][ \t]|#{1,6}[ \t]|>))")
_HEADING_LINE_RE = re.compile(r"^#{1,6}[ \t].*$", re.M)
_BLANK_LINE_RE = re.compile(r"\n[ \t\r]*\n")

_TERMINATOR_RE = re.compile(r"(?:[.!?]+|…+|[。！？]+)[\"'”’»」』)\]]*")
_NEXT_WORD_RE = re.compile(r"\s*(\S[^\W_]*)")
_LIST_NUMBER_RE = re.compile(r"\d{1,3}|[ivxIVX]{1,4}|[A-Za-z]")
_ABBREVIATIONS = _wordset(
    """mr mrs ms dr prof sr jr st mt ft vs etc inc ltd co corp dept gov gen sen rep col lt sgt capt cmdr
    adm rev hon pres supt jan feb mar apr jun jul aug sep sept oct nov dec no nos fig figs vol pp p op cit
    approx est al e.g i.e cf viz ca ave blvd rd"""
)
_SENTENCE_STARTERS = _wordset(
    """the a an he she it they we i you this that these those there but and so yet in on at as if
    his her its their our my after before when while however meanwhile"""
)


def _blocks(text: str) -> list[tuple[int, int]]:
    """Spans of units that never share a sentence: paragraphs, list items, headings."""
    cuts = {0, len(text)}
    for rx in (_BLANK_LINE_RE, _HARD_LINE_RE):
        for m in rx.finditer(text):
            cuts.add(m.start())
            cuts.add(m.end())
    for m in _HEADING_LINE_RE.finditer(text):
        cuts.add(m.start())
        cuts.add(m.end())
    return [(a, b) for a, b in itertools.pairwise(sorted(cuts)) if text[a:b].strip()]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _is_boundary(block: str, m: re.Match[str], start: int, stop: int | None = None) -> bool:
    """Whether the terminator ``m`` really ends the sentence begun at ``start`` (``stop``: end of region)."""
    stop = len(block) if stop is None else stop
    end, term = m.end(), m.group()
    if term == "." and _LIST_NUMBER_RE.fullmatch(block[start : m.start()].strip()):  # "1." "iv." "a."
        return False
    if end < stop and not block[end].isspace():
        return term[0] in "。！？"  # CJK full stops need no space after them
    nxt_m = _NEXT_WORD_RE.match(block, end, stop)
    if nxt_m is None:
        return True
    after = nxt_m.group(1)
    if term.startswith(".") and not term.startswith(".."):
        word_m = re.search(r"([^\W\d_]+(?:\.[^\W\d_]+)*)$", block[max(start, m.start() - 40) : m.start()])
        word = word_m.group(1) if word_m else ""
        if word.lower() in _ABBREVIATIONS:
            return False
        if len(word) == 1 and word.isupper():  # an initial: "J. Smith"
            return False
        if "." in word:  # dotted acronym: "U.S." ends a sentence only before a typical starter
            return after.lower() in _SENTENCE_STARTERS and after[0].isupper()
    return not after[0].islower()


def _rule_sentences(block: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _TERMINATOR_RE.finditer(block):
        if _is_boundary(block, m, start):
            spans.append((start, m.end()))
            start = m.end()
    spans.append((start, len(block)))
    return spans


def _kiwi_sentences(blocks: list[str]) -> list[list[tuple[int, int]]]:
    out: list[list[tuple[int, int]]] = []
    for block, sents in zip(blocks, kiwi().split_into_sents(blocks, return_tokens=False), strict=True):
        spans: list[tuple[int, int]] = []
        for s in sents:
            start, end = int(s.start), int(s.end)
            if block[start:end] != s.text:  # defensive: offsets must index the block
                found = block.find(s.text, spans[-1][1] if spans else 0)
                if found < 0:
                    return [_rule_sentences(b) for b in blocks]
                start, end = found, found + len(s.text)
            spans.append((start, end))
        out.append(_split_latin(block, _repair(block, spans)) if spans else [(0, len(block))])
    return out


_ENDS_SENTENCE_RE = re.compile(r"(?:[.!?。！？]+|…+)[\"'”’»」』)\]]*\s*$")
_LAST_STOP_RE = re.compile(r".*(?:[.!?。！？]+|…+)[\"'”’»」』)\]]*(?=\s+\S)", re.S)


def _split_latin(block: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Kiwi keeps "... today. 오픈AI가 ..." together: apply the rules after Latin words only,
    so Korean quotations such as “좋다. 정말 좋다”라며 stay whole."""
    out: list[tuple[int, int]] = []
    for s, e in spans:
        start = s
        for m in _TERMINATOR_RE.finditer(block, s, e):
            before = block[m.start() - 1] if m.start() > s else ""
            if before.isascii() and before.isalnum() and m.end() < e and _is_boundary(block, m, start, e):
                out.append((start, m.end()))
                start = m.end()
        out.append((start, e))
    return out


def _repair(block: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Fix Kiwi cuts inside a word: "했다. ‘모두를 위한 AI’ | 를 비전으로 ..." is re-cut after
    "했다." (the last stop before the bad cut), or merged when there is no such stop."""
    fixed = [spans[0]]
    for s, e in spans[1:]:
        ps, pe = fixed[-1]
        glued = pe == s and s > 0 and not block[s - 1].isspace() and not block[s].isspace()
        if not glued or _ENDS_SENTENCE_RE.search(block, ps, pe):
            fixed.append((s, e))
            continue
        stop = _LAST_STOP_RE.match(block, ps, pe)
        if stop:
            fixed[-1] = (ps, stop.end())
            fixed.append((stop.end(), e))  # trimmed later
        else:
            fixed[-1] = (ps, e)
    return fixed


def _merge_fragments(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Fold pieces without a letter or digit (a stray "😀." or "”") into the previous sentence."""
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and not any(ch.isalnum() for ch in text[s:e]):
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def split_sentences(text: str, lang: str | None = None) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` with ``text[start:end]`` the trimmed sentence.

    Paragraph breaks (blank lines), list items and Markdown headings always end a
    sentence. Blocks that read as Korean (or merely contain Hangul when ``lang ==
    "ko"``) go to Kiwi, which keeps quotations such as ``“...다.”고 밝혔다`` whole; other
    blocks use rules that respect abbreviations (Mr., U.S.), decimals and initials.
    """
    blocks = _blocks(text)
    korean = [has_hangul(text[a:b]) if lang == "ko" else detect_lang(text[a:b]) == "ko" for a, b in blocks]
    ko_blocks = [text[a:b] for (a, b), k in zip(blocks, korean, strict=True) if k]
    ko_spans = iter(_kiwi_sentences(ko_blocks) if ko_blocks else [])
    result: list[tuple[int, int]] = []
    for (a, b), is_ko in zip(blocks, korean, strict=True):
        local = next(ko_spans) if is_ko else _rule_sentences(text[a:b])
        spans = [_trim(text, a + s, a + e) for s, e in local]
        result.extend(_merge_fragments(text, [(s, e) for s, e in spans if e > s]))
    return result


# ---------------------------------------------------------------- tokens

STOPWORDS_EN = _wordset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most my
    myself no nor not of off on once only or other our ours ourselves out over own same she should so some
    such than that the their theirs them themselves then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your yours
    yourself yourselves s t don doesn didn isn aren wasn weren won wouldn shouldn couldn also"""
)
# morphemes that carry no topic (copula, light verbs, existence)
STOPWORDS_KO = frozenset({"하다", "되다", "이다", "있다", "없다", "않다", "같다"})
_KO_TAGS = frozenset({"NNG", "NNP", "NR", "VV", "VA", "XR", "SH"})
_LEMMA_TAGS = frozenset({"VV", "VA"})
# Latin words and numbers ("3.5", "1,000" stay whole); Hangul and CJK ideographs are left to Kiwi
_WORD_RE = re.compile(
    r"\d+(?:[.,]\d+)+|(?:[a-z]\.){2,}|[^\W_\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3\u3400-\u4dbf\u4e00-\u9fff]+"
)


_NO_STEM = _wordset("news series species always perhaps lens whereas texas paris athens")


def _stem(word: str) -> str:
    """Light English plural/possessive stemmer: "companies" -> "company", "models" -> "model"."""
    if len(word) <= 3 or not word.isalpha() or word in _NO_STEM or word.endswith(("ics", "ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def _latin_tokens(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for m in _WORD_RE.finditer(text.lower()):
        w = m.group()
        if w.endswith("."):  # dotted acronym "u.s." -> "us"
            w = w.replace(".", "")
        if w not in STOPWORDS_EN:
            out.append((m.start(), _stem(w)))
    return out


def _ko_tokens(text: str, toks: Iterable[Any]) -> list[str]:
    found = _latin_tokens(text)
    for t in toks:
        tag = str(t.tag).split("-", 1)[0]
        if tag not in _KO_TAGS:
            continue
        form = t.lemma if tag in _LEMMA_TAGS else t.form
        if form not in STOPWORDS_KO:
            found.append((int(t.start), form))
    found.sort(key=lambda p: p[0])
    return [w for _, w in found]


def tokens(text: str, lang: str | None = None) -> list[str]:
    """Lexical tokens of ``text`` for BM25, in text order.

    Text containing Hangul goes through Kiwi whatever ``lang`` says (nothing else
    can segment it); Latin words and numbers are handled by the same rules in both
    paths. ``lang`` is accepted for symmetry with :func:`split_sentences`.
    """
    del lang
    if not has_hangul(text):
        return [w for _, w in _latin_tokens(text)]
    return _ko_tokens(text, kiwi().tokenize(text))


def tokens_batch(texts: Iterable[str]) -> list[list[str]]:
    """:func:`tokens` for many texts; Korean ones are analysed by Kiwi in one batch."""
    items = list(texts)
    out: list[list[str]] = [[] for _ in items]
    ko_idx = [i for i, t in enumerate(items) if has_hangul(t)]
    korean = set(ko_idx)
    for i, t in enumerate(items):
        if i not in korean:
            out[i] = [w for _, w in _latin_tokens(t)]
    if ko_idx:
        analysed = kiwi().tokenize(items[i] for i in ko_idx)
        for i, toks in zip(ko_idx, analysed, strict=True):
            out[i] = _ko_tokens(items[i], toks)
    return out


def everyday_texts() -> list[str]:
    """The shipped everyday texts no article answers (``rag/data/background.txt``): the yardstick
    for abstention cosines and the ONNX export's probe texts."""
    from importlib import resources

    text = resources.files("rag").joinpath("data/background.txt").read_text(encoding="utf-8")
    return [x.strip() for x in text.splitlines() if x.strip() and not x.lstrip().startswith("#")]
