"""Frozen records that cross module boundaries.

Documents come out of ``corpus``, chunks out of ``chunking``, hits out of
``retrieve`` and answers out of ``answer``. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One article. ``text`` is the NFC-normalised body all offsets point into."""

    doc_id: str
    text: str
    title: str = ""
    url: str = ""
    published: str = ""  # ISO date (YYYY-MM-DD...) or "" when the article does not say
    outlet: str = ""
    author: str = ""
    lang: str = ""  # "ko", "en", ... ("" = detect)
    source: str = ""  # path (and line) the document was read from
    sha256: str = ""  # of the normalised title + text + metadata
    body_start: int = 0  # text before this offset is the metadata header (title, outlet, author, date)
    also: str = ""  # other outlets that published the same story (rag.ingest.dedup)

    def meta(self) -> dict[str, str]:
        """Document metadata without the body, as stored beside chunks."""
        d = asdict(self)
        d.pop("text")
        return d


@dataclass(frozen=True)
class Chunk:
    """A passage: ``document.text[start:end] == text`` exactly."""

    chunk_id: str  # "<doc_id>#0003"
    doc_id: str
    text: str
    start: int
    end: int
    lang: str = ""


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its document's metadata."""

    rank: int
    score: float
    chunk: Chunk
    title: str = ""
    url: str = ""
    outlet: str = ""
    author: str = ""
    published: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "doc_id": self.chunk.doc_id,
            "chunk_id": self.chunk.chunk_id,
            "title": self.title,
            "text": self.chunk.text,
            "start": self.chunk.start,
            "end": self.chunk.end,
        }


@dataclass(frozen=True)
class Citation:
    """A cited source span: ``quote == document.text[start:end]``."""

    n: int
    doc_id: str
    chunk_id: str
    title: str
    url: str
    quote: str
    start: int
    end: int
    outlet: str = ""
    author: str = ""
    published: str = ""
    passage: str = ""  # the whole chunk, for the UI's side panel
    passage_start: int = 0  # document offset of ``passage``
    also: str = ""  # the same story from other outlets (the cited one published it first)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Sentence:
    """One answer sentence, the markers it carries and whether a source backs it."""

    text: str
    citations: tuple[int, ...] = ()
    supported: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "citations": list(self.citations), "supported": self.supported}


@dataclass(frozen=True)
class Answer:
    """A grounded answer; ``[n]`` markers in ``answer`` refer to ``citations[].n``."""

    question: str
    lang: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    sentences: tuple[Sentence, ...] = ()
    id: str = ""
    mode: str = "extractive"  # or "llm"
    notice: str = ""  # e.g. why the LLM answer fell back to extractive
    resolved_question: str = ""  # the question after follow-up resolution
    time: dict[str, Any] | None = None  # publication dates searched (rag.answer.timeline.TimeScope + "label")
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "lang": self.lang,
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": [c.to_json() for c in self.citations],
            "sentences": [s.to_json() for s in self.sentences],
            "mode": self.mode,
            "notice": self.notice,
            "resolved_question": self.resolved_question,
            # "이렇게 이해했습니다: ..." / "Understood as: ..." when a follow-up was rewritten, else ""
            "understood_as": understood_as(self.question, self.resolved_question, self.lang),
            "short": self.extra.get("short"),  # {"text","start","end"}: the answer inside the lead quote
            "qualified": bool(self.extra.get("qualified")),  # "the articles say X, not the asked fact"
            "time": self.time,
        }


@dataclass(frozen=True)
class Turn:
    """One previous turn of a conversation (``role`` is "user" or "assistant")."""

    role: str
    content: str


UNDERSTOOD_AS = {"ko": "이렇게 이해했습니다: {q}", "en": "Understood as: {q}"}


def understood_as(question: str, resolved: str, lang: str) -> str:
    """The line that shows a rewritten follow-up ("" when the question was asked as typed)."""
    if not resolved or resolved.strip() == question.strip():
        return ""
    return UNDERSTOOD_AS.get(lang, UNDERSTOOD_AS["en"]).format(q=resolved)
