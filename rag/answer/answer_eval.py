"""Answer metrics: accuracy, abstention rates, follow-up retrieval, over JSONL sets.

- :func:`evaluate_answers` (``rag eval --answers``): for each query an answer is
  produced; an answerable query is *correct* when the answer is not an
  abstention and contains one of its ``answer_any`` (or ``answers``) strings;
  ``"answerable": false`` queries are correct when the answer abstains or is
  qualified ("the articles say X about the subject, not the asked fact").
  Also reported: ``first_sentence`` (a gold answer in the first quoted
  sentence), ``citations_per_answer``, ``quotes_with_gold`` (share of quotes
  holding a gold answer or evidence string), ``short_rate``/``short_in_gold``
  (the highlighted short span, and whether it lies inside a gold answer or
  holds one) and ``refused_rate`` (abstained or qualified).
- :func:`evaluate_dialogues` (``python -m rag.answer.answer_eval dialogues FILE``): each
  line is ``{"id","lang","turns":[{"question","evidence"}]}``; every turn after
  the first is asked with the real earlier turns (questions and the answers this
  system gave) as history, and counts as a hit when one of the top-3 retrieved
  passages for the resolved question contains one of its ``evidence`` strings.

Both report per language. This module only measures; it changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.answer.compose import answer
from rag.config import Settings
from rag.records import Answer, Turn
from rag.search.retrieve import Retriever
from rag.text import detect_lang


def _contains(a: Answer, golds: Sequence[str]) -> bool:
    text = a.answer.casefold()
    return any(g and g.casefold() in text for g in golds)


def _holds(text: str, strings: Sequence[str]) -> bool:
    folded = text.casefold()
    return any(s and s.casefold() in folded for s in strings)


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    graded = [r for r in ans if r["golds"]]
    out: dict[str, Any] = {"n": len(rows)}
    out["answerable"] = {
        "n": len(ans),
        "abstain_rate": _rate(sum(r["abstained"] for r in ans), len(ans)),
        "graded": len(graded),
        "accuracy": _rate(sum(r["correct"] for r in graded), len(graded)),
    }
    with_ev = [r for r in ans if r["evidence_cited"] is not None]
    if with_ev:  # a citation quotes one of the query's evidence strings
        out["answerable"]["evidence_cited"] = _rate(sum(r["evidence_cited"] for r in with_ev), len(with_ev))
    answered = [r for r in graded if not r["abstained"]]
    if answered:
        out["answerable"]["qualified_rate"] = _rate(sum(r["qualified"] for r in ans), len(ans))
        # a false refusal: abstained, or qualified as "the asked fact is not there"
        out["answerable"]["refused_rate"] = _rate(sum(r["abstained"] or r["qualified"] for r in ans), len(ans))
        # the gold answer in the first quoted sentence (the lead), over graded answerable questions
        out["answerable"]["first_sentence"] = _rate(sum(r["first_hit"] for r in graded), len(graded))
        quotes = sum(r["quotes"] for r in answered)
        out["answerable"]["citations_per_answer"] = round(quotes / len(answered), 3)
        # share of quotes that hold a gold answer or an evidence string
        out["answerable"]["quotes_with_gold"] = _rate(sum(r["quotes_gold"] for r in answered), quotes)
        shorts = [r for r in answered if r["short"] is not None]
        out["answerable"]["short_rate"] = _rate(len(shorts), len(answered))
        out["answerable"]["short_in_gold"] = _rate(sum(r["short_ok"] for r in shorts), len(shorts))
    out["unanswerable"] = {
        "n": len(una),
        "abstain_rate": _rate(sum(r["abstained"] for r in una), len(una)),
        # refused, or answered with "the articles say X about the subject, not the asked fact"
        "refused_or_qualified": _rate(sum(r["abstained"] or r["qualified"] for r in una), len(una)),
    }
    return out


def evaluate_answers(retriever: Retriever, queries: list[dict[str, Any]], settings: Settings,
                     question_time: bool = True) -> dict[str, Any]:
    """Accuracy and abstention rates, overall and per question language.

    Args:
        queries: ``{"id","question", "answerable"?, "answer_any"? | "answers"?, "lang"?}`` dicts.
    """
    rows: list[dict[str, Any]] = []
    times: list[float] = []
    for q in queries:
        question = str(q.get("question", ""))
        t0 = time.perf_counter()
        a = answer(retriever, question, settings=settings, question_time=question_time)
        times.append(time.perf_counter() - t0)
        golds = [str(g) for g in (q.get("answer_any") or q.get("answers") or [])]
        answerable = bool(q.get("answerable", True))
        qualified = bool(a.extra.get("qualified"))
        correct = (
            (not a.abstained and not qualified and _contains(a, golds)) if answerable else (a.abstained or qualified)
        )
        evidence = [str(e) for e in (q.get("evidence") or [])]
        quotes = [c.quote for c in a.citations] if not a.abstained else []
        short = a.extra.get("short")
        rows.append(
            {
                "qualified": bool(a.extra.get("qualified")),
                "first_hit": bool(quotes) and not a.extra.get("qualified") and _holds(quotes[0], golds),
                "quotes": len(quotes),
                "quotes_gold": sum(_holds(t, golds + evidence) for t in quotes),
                "short": short,
                "short_ok": short is not None and any(short["text"] in g or g in short["text"] for g in golds),
                "evidence_cited": (not a.abstained and any(e in c.quote for c in a.citations for e in evidence))
                if evidence
                else None,
                "id": str(q.get("id", len(rows) + 1)),
                "lang": q.get("lang") or detect_lang(question),
                "answerable": answerable,
                "abstained": a.abstained,
                "golds": golds,
                "correct": correct,
            }
        )
    result = _summary(rows)
    langs = sorted({r["lang"] for r in rows})
    result["by_lang"] = {lang: _summary([r for r in rows if r["lang"] == lang]) for lang in langs}
    result["wrong"] = [r["id"] for r in rows if (r["golds"] or not r["answerable"]) and not r["correct"]][:50]
    if times:
        ms = sorted(t * 1000 for t in times)
        result["latency_ms"] = {
            "p50": round(ms[len(ms) // 2], 1),
            "p95": round(ms[int(0.95 * (len(ms) - 1))], 1),
        }
    return result


def evaluate_dialogues(
    retriever: Retriever, dialogues: list[dict[str, Any]], settings: Settings, k: int = 3
) -> dict[str, Any]:
    """Share of follow-up turns whose evidence is in the top ``k`` passages (see module docstring)."""
    from rag.answer.evidence import gather

    rows: list[dict[str, Any]] = []
    for d in dialogues:
        history: list[Turn] = []
        for i, turn in enumerate(d["turns"]):
            question = turn["question"]
            if i > 0:
                ev = gather(retriever, question, history, settings)
                top = ev.hits[:k] if ev.hits else retriever.search(ev.resolved, k=k)
                hit = any(e in h.chunk.text for h in top for e in turn.get("evidence", []))
                rows.append(
                    {
                        "id": f"{d['id']}#{i + 1}",
                        "lang": d.get("lang") or detect_lang(question),
                        "hit": hit,
                        "resolved": ev.resolved,
                    }
                )
            a = answer(retriever, question, history, settings)
            history += [Turn("user", question), Turn("assistant", a.answer)]

    def summary(rs: list[dict[str, Any]]) -> dict[str, Any]:
        return {"n": len(rs), f"hit@{k}": _rate(sum(r["hit"] for r in rs), len(rs))}

    langs = sorted({r["lang"] for r in rows})
    return {
        "dialogues": len(dialogues),
        "followups": summary(rows),
        "by_lang": {lang: summary([r for r in rows if r["lang"] == lang]) for lang in langs},
        "misses": [{"id": r["id"], "resolved": r["resolved"]} for r in rows if not r["hit"]],
    }


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rag.answer.answer_eval {answers|dialogues} FILE [--index DIR]``: JSON to stdout."""
    p = argparse.ArgumentParser(prog="python -m rag.answer.answer_eval", description=main.__doc__)
    p.add_argument("kind", choices=["answers", "dialogues"])
    p.add_argument("file")
    p.add_argument("--index", help="index folder (default: RAG_INDEX_DIR or ./index)")
    args = p.parse_args(argv)
    settings = Settings.from_env(index_dir=args.index)
    retriever = Retriever.open(settings, settings.index_dir)
    rows = _read_jsonl(args.file)
    fn = evaluate_answers if args.kind == "answers" else evaluate_dialogues
    json.dump(fn(retriever, rows, settings), sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
