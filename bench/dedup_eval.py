"""Precision and recall of near-duplicate detection (rag.ingest.dedup) on a fixture set with known duplicates.

``tests/data/dedup/articles.jsonl``: 28 Korean and English articles; records with
the same ``group`` are copies of one story (wire copy re-published by other
outlets with light edits, a shortened copy, a copy with a sentence added, a
correction with a changed number); the other records are different stories on
the same topics (hard negatives: five teams vs four teams, June vs July exports).
Prints precision/recall/F1 of the pairs found, at several MinHash LSH thresholds, and
(``rag_index``) the same for what ``rag index`` keeps (``rag.ingest.dedup.collapse``:
one document per story, corrections replacing older versions).

    python bench/dedup_eval.py > dedup.json
"""

from __future__ import annotations

import json
import sys
from itertools import combinations
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "dedup" / "articles.jsonl"


def load() -> list[dict[str, Any]]:
    with DATA.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def measure(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    from rag.ingest.dedup import Article, pairs

    truth = {frozenset((a["id"], b["id"])) for a, b in combinations(rows, 2) if a["group"] == b["group"]}
    found = pairs([Article(r["id"], r["text"], r["outlet"], r["published"]) for r in rows], threshold)
    tp = len(found & truth)
    p = tp / len(found) if found else 1.0
    r = tp / len(truth) if truth else 1.0
    return {"threshold": threshold, "pairs_true": len(truth), "pairs_found": len(found), "precision": round(p, 3),
            "recall": round(r, 3), "f1": round(2 * p * r / (p + r), 3) if p + r else 0.0,
            "missed": sorted("~".join(sorted(x)) for x in truth - found),
            "false": sorted("~".join(sorted(x)) for x in found - truth)}


def measure_index(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``rag index`` does with the same articles (``rag.ingest.dedup.collapse``): two articles count as
    found duplicates when both end up as the same indexed document; also which copy each story kept."""
    from rag.ingest.dedup import collapse
    from rag.records import Document

    docs = [Document(r["id"], r["text"], title=r["id"], url=r.get("url", ""), published=r["published"],
                     outlet=r["outlet"], sha256=r["id"]) for r in rows]
    got = collapse(docs)
    home = {d.doc_id: d.doc_id for d in got.documents} | {g["doc_id"]: g["kept"] for g in got.dropped}
    truth = {frozenset((a["id"], b["id"])) for a, b in combinations(rows, 2) if a["group"] == b["group"]}
    found = {frozenset((a["id"], b["id"])) for a, b in combinations(rows, 2) if home[a["id"]] == home[b["id"]]}
    tp = len(found & truth)
    p = tp / len(found) if found else 1.0
    r = tp / len(truth) if truth else 1.0
    also = {d.doc_id: d.also for d in got.documents if d.also}
    return {"documents_in": len(docs), "documents_indexed": len(got.documents),
            "stories": len({r["group"] for r in rows}), "precision": round(p, 3), "recall": round(r, 3),
            "dropped": list(got.dropped), "also": also}


def main() -> int:
    from rag.ingest.dedup import THRESHOLD

    rows = load()
    out = {"articles": len(rows), "default_threshold": THRESHOLD,
           "by_threshold": [measure(rows, t) for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)],
           "rag_index": measure_index(rows)}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
