"""Replay the extractive answer step over whole sets, to choose the lead / support / near-miss rules.

Retrieval and sentence scoring run once per question (``gather``, the expensive
part); the result is cached under ``--cache`` (pickles, one per set, keyed by the
code's sentence scoring, so delete them after changing :mod:`rag.answer.evidence`'s
scoring). Each ``--set`` is then answered with the current rules and, with
``--grid``, with every combination of the listed weights. Prints one JSON object
per set: gold in answer, gold in the first quote, citations per answer, quotes
holding gold or evidence, refusals (abstained / qualified) for answerable
questions, refused-or-qualified for unanswerable ones.

    python bench/answer_rules.py --set kq=../shared/eval/korquad/queries.jsonl:/tmp/kq \\
        --set seed=../shared/eval/seed/questions.jsonl:/tmp/seed [--grid W_FIT=0.2,0.4 W_ASK=0,0.3]

A set whose file name contains "timeline" is graded like ``bench/timeline_eval.py``
(first citation's document and an ``answer_any`` string), with ``RAG_NOW=2025-08-13``.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer import askedfact, nearmiss, timeline  # noqa: E402
from rag.answer import evidence as evmod  # noqa: E402
from rag.answer.compose import abstention, extractive  # noqa: E402
from rag.answer.support import answer_type, fits, token_set, warm_tokens  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.search.retrieve import Retriever  # noqa: E402

TIMELINE_NOW = "2025-08-13"


def _read(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def gather_set(queries: list[dict[str, Any]], index: str, now: str) -> tuple[list[Any], dict[str, Any]]:
    """``(question, Evidence, TimeScope)`` per query, as ``compose.answer`` would gather them."""
    settings = Settings.from_env(index_dir=index, now=now)
    retriever = Retriever.open(settings, index)
    published = [m.get("published", "") for m in retriever.index.docs.values()]
    out = []
    for q in queries:
        question = q["question"]
        filters, ts = timeline.scope(question, None, settings.now, True, published)
        asked = timeline.without_time_words(question, ts)
        ev = evmod.gather(retriever, asked, (), settings, filters)
        out.append((question, ev, ts))
    return out, retriever.index.docs


def refit(ev: Any) -> None:
    """The asked answer type and each sentence's fit, as :func:`rag.answer.evidence.gather` computes them."""
    if ev.abstain:
        return
    ev.want = answer_type(ev.resolved)
    for s in ev.sources:
        wordy = len(evmod._WORDY_RE.findall(s.text)) >= evmod.MIN_CHARS
        s.fit = fits(ev.want, s.text, ev.resolved) if wordy else 0.0
    warm_tokens([ev.question, ev.resolved, *(s.text for s in ev.sources)])
    evmod.word_shares(ev)
    evmod.specific(ev, token_set(ev.question))


def answer_one(question: str, ev: Any, ts: Any, docs: dict[str, Any], settings: Settings) -> Any:
    ev = copy.copy(ev)
    ev.extra = dict(ev.extra)
    if ev.abstain:
        a = abstention(ev)
    else:
        evmod.rescore(ev)
        a = extractive(ev, settings)
    return timeline.finish(a, ts, docs, question)


def _holds(text: str, strings: list[str]) -> bool:
    t = text.casefold()
    return any(s and s.casefold() in t for s in strings)


def grade(queries: list[dict[str, Any]], answers: list[Any], timeline_set: bool) -> dict[str, Any]:
    ans = [(q, a) for q, a in zip(queries, answers, strict=True) if q.get("answerable", True)]
    una = [(q, a) for q, a in zip(queries, answers, strict=True) if not q.get("answerable", True)]
    n = len(ans) or 1
    out: dict[str, Any] = {"n": len(queries), "answerable": len(ans)}
    correct = first = quotes = quotes_gold = answered = 0
    abst = qual = 0
    wrong: list[str] = []
    for q, a in ans:
        golds = [str(g) for g in (q.get("answer_any") or q.get("answers") or [])]
        ev_strings = [str(e) for e in q.get("evidence") or []]
        qualified = bool(a.extra.get("qualified"))
        abst += a.abstained
        qual += qualified
        if a.abstained or qualified:
            wrong.append(q["id"])
            continue
        answered += 1
        cites = sorted(a.citations, key=lambda c: c.n)
        quotes += len(cites)
        quotes_gold += sum(_holds(c.quote, golds + ev_strings) for c in cites)
        if timeline_set:
            ok = bool(cites) and cites[0].doc_id in q["expect_docs"] and any(s in a.answer for s in golds)
        else:
            ok = _holds(a.answer, golds)
        correct += ok
        first += bool(cites) and _holds(cites[0].quote, golds)
        if not ok:
            wrong.append(q["id"])
    if ans:
        out.update(
            in_answer=round(correct / n, 4),
            first=round(first / n, 4),
            cites=round(quotes / max(answered, 1), 3),
            quotes_gold=round(quotes_gold / max(quotes, 1), 4),
            refused=round((abst + qual) / n, 4),
            abstained=abst,
            qualified=qual,
        )
        if timeline_set:
            plain = [(q, a) for q, a in ans if not q.get("about_time")]
            out["plain"] = round(sum(q["id"] not in wrong for q, _ in plain) / max(len(plain), 1), 3)
    if una:
        out["unanswerable"] = len(una)
        out["refused_or_qualified"] = round(
            sum(a.abstained or bool(a.extra.get("qualified")) for _, a in una) / len(una), 4
        )
        out["not_refused"] = [q["id"] for q, a in una if not (a.abstained or a.extra.get("qualified"))]
    out["wrong"] = wrong
    return out


def _set_param(name: str, value: float) -> None:
    for mod in (evmod, nearmiss, askedfact):
        if hasattr(mod, name):
            setattr(mod, name, value)
            return
    raise SystemExit(f"unknown parameter {name}: not in rag.answer.evidence or rag.answer.nearmiss")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", action="append", required=True, help="NAME=QUERIES.jsonl:INDEX_DIR")
    p.add_argument("--cache", default="/tmp/answer-rules-cache")
    p.add_argument("--grid", nargs="*", default=[], help="NAME=v1,v2,... (module constants)")
    p.add_argument("--wrong", action="store_true", help="list the ids of wrong answers")
    args = p.parse_args(argv)
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    sets = []
    for spec in args.set:
        name, rest = spec.split("=", 1)
        qpath, index = rest.rsplit(":", 1)
        queries = _read(qpath)
        tl = "timeline" in qpath
        now = TIMELINE_NOW if tl else ""
        cache = Path(args.cache) / f"{name}.pkl"
        if cache.exists():
            gathered, docs = pickle.loads(cache.read_bytes())
        else:
            t0 = time.perf_counter()
            gathered, docs = gather_set(queries, index, now)
            cache.write_bytes(pickle.dumps((gathered, docs)))
            print(f"{name}: gathered {len(queries)} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        for _, ev, _ in gathered:  # answer types are cheap to recompute: cached sets follow rule changes
            refit(ev)
        sets.append((name, queries, gathered, docs, tl, Settings.from_env(index_dir=index, now=now)))
    grid = [(g.split("=")[0], [float(v) for v in g.split("=")[1].split(",")]) for g in args.grid]
    combos = list(itertools.product(*[vals for _, vals in grid])) or [()]
    results = []
    for combo in combos:
        for (name, _), value in zip(grid, combo, strict=True):
            _set_param(name, value)
        row: dict[str, Any] = {"params": {n: v for (n, _), v in zip(grid, combo, strict=True)}}
        for name, queries, gathered, docs, tl, settings in sets:
            answers = [answer_one(q, ev, ts, docs, settings) for q, ev, ts in gathered]
            g = grade(queries, answers, tl)
            if not args.wrong:
                g.pop("wrong")
            row[name] = g
        results.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
