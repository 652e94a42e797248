"""Questions about the article itself: which outlet, which reporter, what date.

"이 기사를 쓴 매체는 어디인가?" or "Who wrote this article?" is answered by the
document's metadata (front matter, HTML meta tags, a credit line such as
"글. 바이라인네트워크"), not by a sentence of the body. The answer cites the span of
the body where the value is written when there is one (usually the credit line),
else the document with an empty span. The article meant is the one of the best
retrieved passage. A question must name the article ("이 기사", "this article")
or use a news-only word (매체, 기자, outlet, reporter) to count: "Who wrote Pride
and Prejudice?" is not a question about the indexed article.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from rag.records import Chunk, Hit

_ARTICLE_RE = re.compile(
    r"(이|해당|본|위|그)\s*기사|기사(를|의|는|가)|\b(this|the)\s+(article|story|report|piece)\b", re.I
)
_FIELDS: tuple[tuple[str, re.Pattern[str], bool], ...] = (
    # field, pattern, pattern alone is enough (a news-only word)
    (
        "outlet",
        re.compile(
            r"매체|언론사|신문사|방송사|\b(outlet|news\s*(site|outlet|organi[sz]ation)|newspaper|"
            r"publication|publisher)\b",
            re.I,
        ),
        True,
    ),
    ("author", re.compile(r"기자|작성자|\b(reporter|journalist|byline)\b", re.I), True),
    (
        "author",
        re.compile(
            r"누가\s*(썼|작성)|쓴\s*(사람|이)|글쓴이|필자|저자|\b(who\s+wrote|written\s+by|author)\b", re.I
        ),
        False,
    ),
    (
        "outlet",
        re.compile(r"어디(서|에서)\s*(보도|냈|발행|실)|\b(published\s+by|which\s+(site|media))\b", re.I),
        False,
    ),
    (
        "published",
        re.compile(
            r"언제\s*(보도|발행|나온|게재|작성|쓰)|발행일|게재일|보도\s*날짜|"
            r"\b(when\s+was\s+(it|this|the)\b.*\b(published|written)|publication\s+date)\b",
            re.I,
        ),
        False,
    ),
)


MetaAnswer = tuple[str, str, Hit, "tuple[int, int] | None"]


def meta_question(question: str, hits: list[Hit], chunks: Sequence[Chunk]) -> MetaAnswer | None:
    """``(field, value, hit, span)`` when ``question`` asks for metadata the best hit's article has.

    ``chunks`` are all indexed passages: the one that writes the value is cited.
    """
    if not hits:
        return None
    about_article = bool(_ARTICLE_RE.search(question))
    for name, pattern, alone in _FIELDS:
        if not pattern.search(question) or not (alone or about_article):
            continue
        hit = hits[0]
        value = str(getattr(hit, name, "") or "").strip()
        if not value:
            return None  # the article does not say: let the normal path abstain
        hit, span = _span(value, hit, chunks)
        return name, value, hit, span
    return None


def _span(value: str, hit: Hit, chunks: Sequence[Chunk]) -> tuple[Hit, tuple[int, int] | None]:
    """The passage of the same article that writes ``value``, as a hit, and the value's span.

    A labelled header line ("매체: 바이라인네트워크", "Outlet: ...") is preferred, then
    the first place the value is written.
    """
    doc_chunks = [c for c in chunks if c.doc_id == hit.chunk.doc_id]
    for pattern in (re.compile(r"[\w ]{1,20}:\s*" + re.escape(value)), re.compile(re.escape(value))):
        for ch in doc_chunks:
            m = pattern.search(ch.text)
            if m:
                return replace(hit, chunk=ch), (ch.start + m.start(), ch.start + m.end())
    return hit, None
