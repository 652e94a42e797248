"""Accuracy of answers over dated articles that update each other (issue 15).

Indexes ``tests/data/timeline/articles.jsonl`` (24 dated and undated Korean and
English articles: five K-AI teams, later four; a budget raised; export figures
revised; a new chief executive; a prize winner corrected) and asks
``tests/data/timeline/questions.jsonl`` (62 questions, 34 about time) with
``RAG_NOW=2025-08-13``. A question counts as correct when the first citation is
one of ``expect_docs`` and the answer text contains one of ``answer_any``, and,
for questions marked ``"conflict"`` (the articles disagree), when the answer
also names the earlier report (``extra.conflict``); an unanswerable one when
the answer abstains. Baselines in the
same run: the question's time words ignored (``question_time=False``; dates
and conflict ordering still on), and answers as before issue 15 (no time
scope, no dates named, no conflict ordering).

    python bench/timeline_eval.py [--index DIR] > timeline.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "timeline"
NOW = "2025-08-13"


def correct(q: dict[str, Any], a: Any) -> bool:
    """One question's verdict (module docstring)."""
    if not q["answerable"]:
        return bool(a.abstained)
    if a.abstained or not a.citations:
        return False
    first = min(a.citations, key=lambda c: c.n)
    if q.get("conflict") and "conflict" not in a.extra:
        return False
    return first.doc_id in q["expect_docs"] and any(s in a.answer for s in q["answer_any"])


def _plain_answer(retriever: Any, question: str, settings: Any) -> Any:
    """The answer as before issue 15: no time scope, no dates named, no conflict ordering."""
    from rag.answer.compose import _answer_events

    events = _answer_events(retriever, question, (), settings, None, False)
    return next(e["answer"] for e in events if e["type"] == "answer")


def run(retriever: Any, settings: Any, questions: list[dict[str, Any]], question_time: bool | None = True
        ) -> dict[str, Any]:
    """Accuracy overall, for time / plain questions and per language, plus the wrong ones.
    ``question_time=None``: answers as before issue 15 (the baseline)."""
    from rag.answer.compose import answer
    from rag.text import detect_lang

    rows = []
    for q in questions:
        a = (_plain_answer(retriever, q["question"], settings) if question_time is None
             else answer(retriever, q["question"], settings=settings, question_time=question_time))
        first = min(a.citations, key=lambda c: c.n).doc_id if a.citations else ""
        rows.append({"id": q["id"], "ok": correct(q, a), "about_time": q["about_time"],
                     "lang": detect_lang(q["question"]) or "en", "first": first, "abstained": a.abstained,
                     "conflict": bool(q.get("conflict"))})

    def acc(rs: list[dict[str, Any]]) -> dict[str, Any]:
        return {"n": len(rs), "accuracy": round(sum(r["ok"] for r in rs) / len(rs), 3) if rs else None}

    return {
        "all": acc(rows),
        "time": acc([r for r in rows if r["about_time"]]),
        "plain": acc([r for r in rows if not r["about_time"]]),
        "ko": acc([r for r in rows if r["lang"] == "ko"]),
        "en": acc([r for r in rows if r["lang"] == "en"]),
        "conflict": acc([r for r in rows if r["conflict"]]),
        "wrong": [{k: r[k] for k in ("id", "first", "abstained")} for r in rows if not r["ok"]],
    }


def load_questions() -> list[dict[str, Any]]:
    with (DATA / "questions.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> int:
    from rag.config import Settings
    from rag.search.retrieve import Retriever
    from rag.store.index import build_index

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", help="index folder (default: a temporary one)")
    args = p.parse_args(argv)
    index = args.index or str(Path(tempfile.mkdtemp(prefix="rag-timeline-")) / "index")
    settings = Settings.from_env(index_dir=index, now=NOW)
    build_index(settings, [DATA / "articles.jsonl"], index, progress=False)
    retriever = Retriever.open(settings, index)
    questions = load_questions()
    out = {"now": NOW, "questions": len(questions),
           "with_time": run(retriever, settings, questions, True),
           "time_words_ignored": run(retriever, settings, questions, False),
           "before_issue_15": run(retriever, settings, questions, None)}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
