"""Capacity numbers for docs/scaling.md, as JSON: embedding throughput (in-process, one and two
local Ray workers), searches per second per process (FAISS folder, Milvus Lite), bytes per passage.

    python bench/scaling.py --index /tmp/i13q/idx-faiss --milvus-uri /tmp/i13q/milvus2.db \
        --collection belebele --queries ../shared/eval/belebele/ko/queries.jsonl --passages 128

Throughputs are measured in the same run, so their ratios hold on a busy machine even when the
absolute numbers move.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any


def _rate(n: int, fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--index", required=True)
    p.add_argument("--milvus-uri", default="")
    p.add_argument("--collection", default="")
    p.add_argument("--queries", required=True)
    p.add_argument("--passages", type=int, default=128)
    p.add_argument("--searches", type=int, default=100)
    p.add_argument("--skip-ray", action="store_true")
    a = p.parse_args()
    from rag.config import Settings
    from rag.model.embed import load_embedder
    from rag.search.retrieve import Retriever
    from rag.store.indexfiles import load_index

    settings = Settings.from_env()
    out: dict[str, Any] = {}
    index = load_index(a.index, settings)
    files = {str(f.relative_to(a.index)): f.stat().st_size for f in Path(a.index).rglob("*") if f.is_file()}
    n = len(index.chunks)
    out["index"] = {"passages": n, "documents": len(index.docs), "bytes": sum(files.values()),
                    "bytes_per_passage": round(sum(files.values()) / n), "files": files}
    questions = [json.loads(x)["question"] for x in Path(a.queries).read_text(encoding="utf-8").splitlines()]
    questions = (questions * (a.searches // len(questions) + 1))[: a.searches]
    r = Retriever(index, load_embedder(settings) if not settings.onnx else Retriever.open(settings, a.index).embedder,
                  settings)
    r.search(questions[0])
    out["search_per_s"] = {"faiss": round(_rate(len(questions), lambda: [r.search(q) for q in questions]), 2)}
    if a.milvus_uri:
        ms = replace(settings, store="milvus", milvus_uri=a.milvus_uri, milvus_collection=a.collection)
        m = Retriever.open(ms, a.index)
        m.search(questions[0])
        out["search_per_s"]["milvus_lite"] = round(_rate(len(questions), lambda: [m.search(q) for q in questions]), 2)
    texts = [c.text for c in index.chunks[: a.passages]]
    emb = load_embedder(settings)
    emb.encode_passages(texts[:8])
    out["embed_passages_per_s"] = {"in_process": round(_rate(len(texts), lambda: emb.encode_passages(texts)), 2)}
    if not a.skip_ray:
        from rag.store.rayindex import RayEmbedder, start_ray

        start_ray(num_cpus=2)
        for w in (1, 2):
            re = RayEmbedder(settings, emb, workers=w)
            # actors start per call (each loads the model): the rate includes that start-up
            out["embed_passages_per_s"][f"ray_{w}_worker"] = round(_rate(len(texts),
                                                                        lambda re=re: re.encode_passages(texts)), 2)
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
