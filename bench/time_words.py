"""Time words in every shared question set: how many questions have them, and whether search changes.

For each set (seed, belebele/*, korquad, and the project's eval/*.jsonl, each
against the corpus its questions are asked of) the time-word resolver
(``rag.search.timescope.scope``, the same call ``rag ask``, ``rag search`` and
``rag eval`` make) runs over every question, with the set's corpus dates, at
each reference day given with ``--now``. Printed per set: questions, those with
time words, those whose search those words change (other filters or other
question text), and each question with time words (expression, range,
applied, undated kept).

With ``--index SET=DIR`` the set's questions are also *searched* twice over that
index, time words resolved and switched off, and the ranked passage ids are
compared question by question (``identical`` / ``differ``).

    python bench/time_words.py --now 2025-08-13 --now today --index seed=/tmp/x-seed > time_words.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path("/work/shared/eval")


def sets(shared: Path) -> dict[str, tuple[list[Path], list[Path]]]:
    """Set name -> (question files, corpus paths)."""
    seed_corpus = [ROOT / "corpus"]
    out: dict[str, tuple[list[Path], list[Path]]] = {"seed": ([shared / "seed" / "questions.jsonl"], seed_corpus)}
    for sub in ("ko", "en", "en2ko", "ko2en", "mixed"):
        d = shared / "belebele" / sub
        out[f"belebele/{sub}"] = ([d / "queries.jsonl"], [d / "corpus.jsonl"])
    out["korquad"] = ([shared / "korquad" / "queries.jsonl"], [shared / "korquad" / "corpus.jsonl"])
    for f in sorted((ROOT / "eval").glob("*.jsonl")):
        corpus = [shared / "belebele" / f.stem.rsplit("_", 1)[-1] / "corpus.jsonl"] if "belebele" in f.stem \
            else seed_corpus
        out[f"eval/{f.name}"] = ([f], corpus)
    timeline = ROOT / "tests" / "data" / "timeline"  # dated: the one set where time words change the search
    out["timeline"] = ([timeline / "questions.jsonl"], [timeline / "articles.jsonl"])
    return {k: v for k, v in out.items() if all(p.exists() for p in v[0] + v[1])}


def questions(files: list[Path]) -> list[tuple[str, str]]:
    """(id, question) of every question, dialogue turns included."""
    out = []
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            r = json.loads(line)
            qid = str(r.get("id", n))
            if "question" in r:
                out.append((qid, r["question"]))
            for t, turn in enumerate(r.get("turns") or [], 1):
                out.append((f"{qid}#{t}", turn["question"]))
    return out


def published(corpus: list[Path]) -> list[str]:
    from rag.ingest.corpus import load_corpus

    return [d.published for d in load_corpus(corpus).documents]


def resolve(qs: list[tuple[str, str]], dates: list[str], now: str) -> dict[str, Any]:
    from rag.search.timescope import scope, without_time_words

    found = []
    changed = 0
    for qid, q in qs:
        f, ts = scope(q, None, now, True, dates)
        if ts is None:
            continue
        change = f is not None or without_time_words(q, ts) != q
        changed += change
        found.append({"id": qid, "question": q, **ts.to_json(), "search_changed": change})
    return {"now": now, "with_time_words": len(found), "search_changed": changed, "found": found}


def compare(index: str, qs: list[tuple[str, str]], now: str) -> dict[str, Any]:
    """Ranked passage ids with time words resolved vs switched off, question by question."""
    from rag.config import Settings
    from rag.search.retrieve import Retriever
    from rag.search.timescope import search_scoped

    settings = Settings.from_env(index_dir=index, now=now)
    retriever = Retriever.open(settings, index)
    text = [q for _, q in qs]
    on = search_scoped(retriever, text, k=10, now=now, question_time=True)
    off = retriever.search_batch(text, k=10)
    differ = [qid for (qid, _), (a, _), b in zip(qs, on, off, strict=True)
              if [h.chunk.chunk_id for h in a] != [h.chunk.chunk_id for h in b]]
    plain = [qid for (qid, _), (_, ts) in zip(qs, on, strict=True) if ts is None]
    return {"now": now, "questions": len(qs), "identical": len(qs) - len(differ), "differ": differ,
            "without_time_words": len(plain), "without_time_words_identical": len(set(plain) - set(differ))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--now", action="append", help="reference day YYYY-MM-DD or 'today' (repeatable)")
    p.add_argument("--index", action="append", default=[], metavar="SET=DIR", help="also compare search results")
    p.add_argument("--shared", default=str(SHARED), help="shared evaluation folder")
    args = p.parse_args(argv)
    days = [dt.date.today().isoformat() if d == "today" else d for d in (args.now or ["today"])]
    indexes = dict(x.split("=", 1) for x in args.index)
    out: dict[str, Any] = {"now": days, "sets": {}}
    for name, (qfiles, corpus) in sets(Path(args.shared)).items():
        qs = questions(qfiles)
        dates = published(corpus)
        row: dict[str, Any] = {"questions": len(qs), "documents": len(dates),
                               "dated_documents": sum(bool(d) for d in dates),
                               "resolved": [resolve(qs, dates, d) for d in days]}
        if name in indexes:
            row["search"] = [compare(indexes[name], qs, d) for d in days]
        out["sets"][name] = row
        print(f"{name}: {len(qs)} questions; with time words "
              + ", ".join(f"{r['now']}: {r['with_time_words']} (search changed {r['search_changed']})"
                          for r in row["resolved"]), file=sys.stderr)
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
