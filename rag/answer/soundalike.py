"""Latin-script names found in Hangul text by how they sound ("Upstage" ~ "업스테이지").

An English question over Korean articles names its subject in Latin script
("Naver Cloud", "Mathpresso"), the articles in Hangul ("네이버클라우드",
"매스프레소"). Both are reduced to a consonant skeleton of the sound classes
Korean transliteration keeps apart (k, t, p, s, j, r, m, n, ng; vowels, h,
w and y dropped, an English r after a vowel silent as in "Naver" -> "네이버",
ㄹㄹ one r as in "Cloud" -> "클라우드"),
and a name is found where its skeleton starts a Hangul word's skeleton.

Only positive evidence is used (:mod:`rag.answer.nearmiss`): a name whose
skeleton is found in one retrieved passage but not in the lead's passage marks
the lead as being about something else. Transliterations vary too much for the
absence of a match to mean anything (measured on Belebele en2ko, see
``notes/issue-14-r3.md``).
"""

from __future__ import annotations

import functools
import re

# Hangul jamo -> sound class; initial and final consonants in Unicode order
_INITIAL = ("k", "k", "n", "t", "t", "r", "m", "p", "p", "s", "s", "", "j", "j", "j", "k", "t", "p", "")
_FINAL = (
    "", "k", "k", "ks", "n", "nj", "n", "t", "r", "rk", "rm", "rp", "rs", "rt", "rp", "r",
    "m", "p", "ps", "t", "t", "n", "t", "t", "k", "t", "p", "",
)  # fmt: skip
_EN_RULES = (
    (r"(.)\1", r"\1"),  # doubled letters ("Mathpresso")
    (r"ph", "p"),
    (r"th", "s"),
    (r"ck", "k"),
    (r"sh", "s"),
    (r"ch", "j"),
    (r"gh", ""),
    (r"qu?", "k"),
    (r"x", "ks"),
    (r"c(?=[eiy])", "s"),
    (r"c", "k"),
    (r"g(?=[eiy])", "j"),
    (r"ng(?![aeiou])", "n"),  # "Samsung" -> 삼성 (a final ㅇ sounds like ng)
    (r"ng", "nk"),  # "Singapore" -> 싱가포르
    (r"(?<=[aeiou])r(?![aeiouy])", ""),  # "Naver" -> 네이버, "works" -> 웍스
)
_EN_CLASSES = str.maketrans("bpfvdtkgszjlrmn", "ppppttkksjjrrmn")
MIN_SKELETON = 2  # shorter skeletons ("Ai") match too much; two sounds must make a whole word


@functools.lru_cache(maxsize=4096)
def latin_skeleton(word: str) -> str:
    """The sound skeleton of a Latin-script word ("Upstage" -> "pstj")."""
    w = re.sub(r"[^a-z]", "", word.lower())
    for rx, repl in _EN_RULES:
        w = re.sub(rx, repl, w)
    return "".join(ch for ch in w.translate(_EN_CLASSES) if ch in "ptksjrmn")


@functools.lru_cache(maxsize=16384)
def hangul_skeleton(word: str) -> str:
    """The sound skeleton of a Hangul word ("업스테이지" -> "pstj")."""
    out = []
    for ch in word:
        code = ord(ch) - 0xAC00
        if 0 <= code < 11172:
            out.append(_INITIAL[code // 588] + _FINAL[code % 28])
    return re.sub("r+", "r", "".join(out))  # an English l is written ㄹㄹ ("Cloud" -> 클라우드)


_PARTICLE_RE = re.compile(r"(?:에서는|에서|에는|으로|까지|부터|처럼|보다|의|은|는|이|가|을|를|에|와|과|도|로|만)$")


@functools.lru_cache(maxsize=16384)
def _word_skeletons(text: str) -> tuple[tuple[str, str], ...]:
    """(skeleton, skeleton without the particle) of each Hangul word of ``text``."""
    return tuple(
        (hangul_skeleton(w), hangul_skeleton(_PARTICLE_RE.sub("", w) or w)) for w in re.findall(r"[가-힣]+", text)
    )


def found(name: str, text: str) -> bool:
    """Whether the Latin-script ``name`` sounds like a Hangul word of ``text``: the skeleton of the
    whole name, or of its first word, starts a word's skeleton ("Naver Cloud" -> "네이버클라우드");
    a two-sound skeleton ("Kakao" -> "kk") must be the whole word's, particle removed ("카카오는")."""
    keys = [latin_skeleton(w) for w in re.findall(r"[A-Za-z]+", name)]
    keys = ["".join(keys), *keys[:1]]  # the whole name and its first word ("Naver", not "Cloud")
    long_keys = {k for k in keys if len(k) > MIN_SKELETON}
    short_keys = {k for k in keys if len(k) == MIN_SKELETON}
    return any(
        any(full.startswith(k) for k in long_keys) or bare in short_keys for full, bare in _word_skeletons(text)
    )
