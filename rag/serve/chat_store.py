"""The chat page's conversation as JSON, for the browser's localStorage (``gr.BrowserState``).

Only what is needed to rebuild the page is kept: each answered question with its
``Answer`` (``Answer.to_json()``, passages included so the source panel still
works after a reload). Messages are re-rendered on load, in the page language of
that moment. Errors are not kept. Pure functions, no Gradio import.
"""

from __future__ import annotations

from typing import Any

from rag.records import Answer, Citation, Sentence

VERSION = 1
MAX_TURNS = 50  # older answers are dropped first: localStorage holds about 5 MB per origin


def answer_from_json(data: dict[str, Any]) -> Answer:
    """The inverse of ``Answer.to_json()``; raises ``KeyError``/``TypeError``/``ValueError`` on bad input."""
    cites = tuple(Citation(**{k: v for k, v in c.items() if k in Citation.__dataclass_fields__})
                  for c in data.get("citations", ()))
    sents = tuple(Sentence(str(s["text"]), tuple(int(n) for n in s.get("citations", ())),
                           bool(s.get("supported", True))) for s in data.get("sentences", ()))
    return Answer(question=str(data["question"]), lang=str(data.get("lang", "")), answer=str(data["answer"]),
                  abstained=bool(data["abstained"]), citations=cites, sentences=sents,
                  id=str(data.get("id") or ""), mode=str(data.get("mode", "extractive")),
                  notice=str(data.get("notice", "")), resolved_question=str(data.get("resolved_question", "")),
                  extra={k: data[k] for k in ("short", "qualified") if data.get(k)})


def dump(answers: list[Answer]) -> dict[str, Any]:
    """What goes into localStorage: the last ``MAX_TURNS`` answers."""
    return {"v": VERSION, "answers": [a.to_json() for a in answers[-MAX_TURNS:]]}


def load(data: Any) -> list[Answer]:
    """The answers of a stored conversation; ``[]`` for nothing, another version or a damaged value."""
    if not isinstance(data, dict) or data.get("v") != VERSION or not isinstance(data.get("answers"), list):
        return []
    out = []
    for item in data["answers"]:
        try:
            out.append(answer_from_json(item))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # one damaged answer does not lose the rest
    return out
