"""Chunking: a :class:`~rag.records.Document` -> sentence-packed passages.

What it does: splits the document into sentences (:func:`rag.text.split_sentences`),
cuts any sentence longer than the budget at whitespace, and packs consecutive
sentences into passages of at most ``max_tokens`` tokens (as counted by the
caller's ``count_tokens``, normally the embedding model's tokenizer). Each
passage repeats the last ``overlap`` sentences of the one before it and ends at
a paragraph break once it is at least half full. A passage's text is exactly
``doc.text[start:end]`` (whitespace and newlines between its sentences
included), and ``chunk_id`` is ``"<doc_id>#0000"``, the same on every run.

What it deliberately does not do: read files, normalise text (offsets point
into ``doc.text`` as given) or embed anything. It is pure and deterministic.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable

from rag.records import Chunk, Document
from rag.text import detect_lang, split_sentences

Counter = Callable[[str], int]

_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
_WORD = re.compile(r"[^\W_]+")
_SYMBOL = re.compile(r"[^\w\s]")
_PARAGRAPH = re.compile(r"\n[ \t\r]*\n")


def approx_tokens(text: str) -> int:
    """Model-token estimate when the caller has no tokenizer, including 2 special tokens.

    Measured on the seed article with the bundled multilingual-e5 tokenizer: about
    0.64 tokens per Hangul syllable, 1.35 per English word and 1 per symbol; the
    factors below round up so the estimate errs on the long side (a word of more
    than five letters counts one token per four letters).
    """
    hangul = len(_HANGUL.findall(text))
    rest = _HANGUL.sub(" ", text) if hangul else text
    words = sum(max(1.4, len(w) / 4) for w in _WORD.findall(rest))  # long words cost more
    return math.ceil(0.7 * hangul + words + len(_SYMBOL.findall(rest))) + 2


# No tokenizer packs more characters than this into one token: a piece of ``budget`` tokens is
# searched for within ``budget * _CHARS_PER_TOKEN`` characters, which keeps cutting linear.
_CHARS_PER_TOKEN = 32
# Whitespace-free runs this long (a pasted blob, a hash, a page without spaces) are cut by tokens
# directly: Kiwi's sentence splitter takes about 80 us per character on them (1 MB: minutes).
_LONG_RUN = re.compile(r"\S{1000,}")


def _fit(text: str, start: int, stop: int, budget: int, count: Counter) -> int:
    """An end in ``(start, stop]`` with ``count(text[start:end]) <= budget``, near the largest: guessed
    from the token density and shrunk until it fits (a few counts of about ``budget`` tokens each)."""
    end = stop
    n = count(text[start:end])
    while n > budget and end - start > 1:
        end = start + max(1, int((end - start) * budget / n * 0.97))
        n = count(text[start:end])
    return end


def _split_long(text: str, start: int, end: int, budget: int, count: Counter) -> list[tuple[int, int]]:
    """Cut one over-long sentence at whitespace (at characters for a single huge word)."""
    pieces: list[tuple[int, int]] = []
    span = budget * 4  # characters tried first; then 5/4 of the last piece (density changes slowly)
    while start < end:
        cut = _fit(text, start, min(end, start + span), budget, count)
        span = min(budget * _CHARS_PER_TOKEN, max(16, (cut - start) * 5 // 4))
        if cut < end:
            breaks = [start + m.end() for m in re.finditer(r"\S(?=\s)", text[start : cut + 1])]
            cut = breaks[-1] if breaks else cut
        pieces.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    return pieces


def _sentences(text: str, a: int, b: int, lang: str | None) -> list[tuple[int, int]]:
    if not text[a:b].strip():
        return []
    return [(a + s, a + e) for s, e in split_sentences(text[a:b], lang)]


def _units(text: str, lang: str | None, budget: int, count: Counter) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _LONG_RUN.finditer(text):
        spans += _sentences(text, pos, m.start(), lang)
        spans.append((m.start(), m.end()))
        pos = m.end()
    spans += _sentences(text, pos, len(text), lang)
    units: list[tuple[int, int]] = []
    for s, e in spans:
        long = e - s > budget * _CHARS_PER_TOKEN or count(text[s:e]) > budget
        units.extend(_split_long(text, s, e, budget, count) if long else [(s, e)])
    return units


def _pack(
    text: str, units: list[tuple[int, int]], budget: int, overlap: int, count: Counter
) -> list[tuple[int, int]]:
    """Group unit indices into passages ``(first, last)``; see the module docstring for the rules."""
    base = count("")  # special tokens every passage pays once
    costs = [max(1, count(text[s:e]) - base) for s, e in units]
    breaks = [
        i > 0 and bool(_PARAGRAPH.search(text, units[i - 1][1], units[i][0])) for i in range(len(units))
    ]
    groups: list[tuple[int, int]] = []
    i, n, new = 0, len(units), 0  # ``new``: first unit not yet in any passage
    while i < n:
        j, total = i, base + costs[i]
        while j + 1 < n:
            if breaks[j + 1] and total >= budget / 2 and j >= new:
                break
            if total + costs[j + 1] > budget:
                break
            j += 1
            total += costs[j]
        while j > i and count(text[units[i][0] : units[j][1]]) > budget:
            j -= 1  # the real counter is not additive: trust it over the sum
        groups.append((i, j))
        if j == n - 1:
            break
        new = j + 1
        k = max(i + 1, j + 1 - overlap)
        while k <= j and base + sum(costs[k : j + 2]) > budget:
            k += 1  # drop overlap that leaves no room for the next sentence
        i = k
    return groups


def chunk(
    doc: Document,
    max_tokens: int = 160,
    overlap: int = 1,
    count_tokens: Counter | None = None,
) -> list[Chunk]:
    """Passages of ``doc`` with ``doc.text[c.start:c.end] == c.text`` and ids ``"<doc_id>#0000"``.

    ``count_tokens`` should be the embedding model's tokenizer length (special
    tokens included); without it :func:`approx_tokens` is used. ``overlap`` is a
    number of sentences. An empty document has no chunks.
    """
    return chunk_with_sentences(doc, max_tokens, overlap, count_tokens)[0]


def _memo(count: Counter) -> Counter:
    """``count`` remembering its answers for one document: packing asks about each unit twice."""
    seen: dict[str, int] = {}

    def counted(text: str) -> int:
        n = seen.get(text)
        if n is None:
            n = seen[text] = count(text)
        return n

    return counted


def chunk_with_sentences(
    doc: Document, max_tokens: int = 160, overlap: int = 1, count_tokens: Counter | None = None,
) -> tuple[list[Chunk], list[list[tuple[int, int]]]]:
    """:func:`chunk`, plus each passage's sentence spans relative to the passage text (the
    units it was packed from), so callers need not split the passage into sentences again."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    text = doc.text
    if not text.strip():
        return [], []
    count = _memo(count_tokens or approx_tokens)
    lang = doc.lang or detect_lang(text)
    units = _units(text, doc.lang or None, max_tokens, count)
    # the metadata header (see corpus.metadata_header) is packed on its own
    groups = [[u for u in units if u[0] < doc.body_start], [u for u in units if u[0] >= doc.body_start]]
    spans = [
        (g[a][0], g[b][1]) for g in groups if g for a, b in _pack(text, g, max_tokens, max(0, overlap), count)
    ]
    chunks = [
        Chunk(f"{doc.doc_id}#{n:04d}", doc.doc_id, text[start:end], start, end, lang)
        for n, (start, end) in enumerate(spans)
    ]
    starts = [u[0] for u in units]  # sorted: units follow the text
    inside = [units[bisect.bisect_left(starts, a) : bisect.bisect_right(starts, b)] for a, b in spans]
    return chunks, [[(s - a, e - a) for s, e in us if e <= b] for (a, b), us in zip(spans, inside, strict=True)]
