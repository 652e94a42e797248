"""Precision and recall of near-duplicate detection (rag.ingest.dedup) on a fixture set with known duplicates.

``tests/data/dedup/articles.jsonl``: 28 Korean and English articles; records with
the same ``group`` are copies of one story (wire copy re-published by other
outlets with light edits, a shortened copy, a copy with a sentence added, a
correction with a changed number); the other records are different stories on
the same topics (hard negatives: five teams vs four teams, June vs July exports).
Prints precision/recall/F1 of the pairs found, at several MinHash LSH thresholds, and
(``rag_index``) the same for what ``rag index`` keeps (``rag.ingest.dedup.collapse``:
one document per story, corrections replacing older versions).

    python bench/dedup_eval.py [--cost ../shared/eval/korquad/corpus.jsonl -n 961] [--corpus PATH]... > dedup.json
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


def measure_cost(corpus: Path, n: int) -> dict[str, Any]:
    """What de-duplication adds to ``rag index``: ``n`` records of ``corpus`` given an outlet each (so that
    all are compared), loaded as ``rag index`` loads them; seconds of loading (the baseline), of
    :func:`collapse` with an empty signature cache, and with a warm one (an unchanged corpus)."""
    import tempfile
    import time

    from rag.ingest.corpus import load_corpus
    from rag.ingest.dedup import collapse

    tmp = Path(tempfile.mkdtemp(prefix="dedup-cost-"))
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()[:n] if line.strip()]
    src = tmp / "corpus.jsonl"
    src.write_text("".join(json.dumps({**r, "outlet": f"outlet{i % 7}"}, ensure_ascii=False) + "\n"
                           for i, r in enumerate(rows)), encoding="utf-8")
    t = time.perf_counter()
    docs = load_corpus([src]).documents
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    collapse(docs, cache=tmp / "minhash.sqlite")
    cold = time.perf_counter() - t
    t = time.perf_counter()
    got = collapse(docs, cache=tmp / "minhash.sqlite")
    warm = time.perf_counter() - t
    return {"corpus": str(corpus), "documents": len(docs), "load_s": round(load_s, 3),
            "collapse_cold_s": round(cold, 3), "collapse_warm_s": round(warm, 3),
            "cold_to_load": round(cold / load_s, 2), "warm_to_load": round(warm / load_s, 3),
            "dropped": len(got.dropped)}


def measure_corpora(paths: list[str]) -> list[dict[str, Any]]:
    """What ``rag index`` would leave out of each corpus (``collapse``): the shared evaluation corpora must
    come through unchanged (they name no outlet or URL, so nothing in them is merged)."""
    from rag.ingest.corpus import load_corpus
    from rag.ingest.dedup import collapse

    out = []
    for p in paths:
        docs = load_corpus([p]).documents
        got = collapse(docs)
        news = sum(bool(d.outlet or d.url) for d in docs)
        out.append({"corpus": p, "documents": len(docs), "with_outlet_or_url": news,
                    "dropped": len(got.dropped), "unchanged": got.documents == docs})
    return out


def main() -> int:
    import argparse

    from rag.ingest.dedup import THRESHOLD

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cost", metavar="CORPUS.jsonl", help="also time de-duplication on this corpus")
    p.add_argument("-n", type=int, default=1000, help="records of --cost CORPUS (default 1000)")
    p.add_argument("--corpus", action="append", default=[], help="also check what rag index leaves out of this corpus")
    args = p.parse_args()
    rows = load()
    out = {"articles": len(rows), "default_threshold": THRESHOLD,
           "by_threshold": [measure(rows, t) for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)],
           "rag_index": measure_index(rows)}
    if args.cost:
        out["cost"] = measure_cost(Path(args.cost), args.n)
    if args.corpus:
        out["corpora"] = measure_corpora(args.corpus)
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
