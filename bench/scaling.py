"""Capacity numbers for docs/scaling.md, as JSON: bytes per passage of an index folder, embedding
throughput (in process with all cores and with one thread, one and two local Ray workers), and
hybrid searches per second per process (FAISS folder; Milvus Lite when ``--milvus-uri`` names a
collection built from the same corpus, e.g. by bench/milvus_quality.py).

    python bench/scaling.py --index /tmp/i13-ko --queries ../shared/eval/belebele/ko/queries.jsonl \
        --passages 96 --searches 100 [--milvus-uri /tmp/i13-q.db --collection quality]

Embedding rates are for what a build embeds per passage: its vector and its sentences' vectors
(the manifest's kind, ``alone`` by default). Ray workers are started and their model loaded
before timing (the start-up is reported apart): a build pays it once. All rates are measured in
one run, so their ratios hold on a busy machine even when the absolute numbers move.
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
    return round(n / (time.perf_counter() - t0), 2)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--index", required=True)
    p.add_argument("--milvus-uri", default="")
    p.add_argument("--collection", default="")
    p.add_argument("--queries", required=True)
    p.add_argument("--passages", type=int, default=96)
    p.add_argument("--searches", type=int, default=100)
    p.add_argument("--skip-ray", action="store_true")
    p.add_argument("--rounds", type=int, default=3, help="embedding measurements, taking turns (median); 0 = none")
    p.add_argument("--skip-search", action="store_true")
    a = p.parse_args()
    from rag.config import Settings
    from rag.model.embed import load_embedder
    from rag.model.pooled import TOP_LAYERS, encode_pooled
    from rag.search.retrieve import Retriever
    from rag.store.indexfiles import load_index
    from rag.store.sentvec import sentence_spans

    settings = Settings.from_env()
    out: dict[str, Any] = {}
    index = load_index(a.index, settings)
    files = {str(f.relative_to(a.index)): f.stat().st_size for f in Path(a.index).rglob("*") if f.is_file()}
    n = len(index.chunks)
    n_sent = int(index.sentences.offsets[-1]) if index.sentences is not None else 0
    out["index"] = {"passages": n, "documents": len(index.docs), "sentence_vectors": n_sent,
                    "bytes": sum(files.values()), "bytes_per_passage": round(sum(files.values()) / n), "files": files}
    questions = [json.loads(x)["question"] for x in Path(a.queries).read_text(encoding="utf-8").splitlines()]
    questions = (questions * (a.searches // len(questions) + 1))[: a.searches]
    if not a.skip_search:
        r = Retriever.open(settings, a.index)
        r.search(questions[0])
        out["search_per_s"] = {"faiss": _rate(len(questions), lambda: [r.search(q) for q in questions]),
                               "faiss_batched": _rate(len(questions), lambda: r.search_batch(questions))}
        if a.milvus_uri:
            ms = replace(settings, store="milvus", milvus_uri=a.milvus_uri, milvus_collection=a.collection)
            m = Retriever.open(ms, a.index)
            m.search(questions[0])
            out["search_per_s"]["milvus_lite"] = _rate(len(questions), lambda: [m.search(q) for q in questions])
            out["search_per_s"]["milvus_lite_batched"] = _rate(len(questions), lambda: m.search_batch(questions))

    if a.rounds <= 0:  # search only
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0
    chunks = index.chunks[: a.passages]
    texts = [c.text for c in chunks]
    spans = [sentence_spans(c) for c in chunks]
    pooled = settings.sentence_pooling
    emb = load_embedder(settings)
    encode_pooled(emb, texts[:8], spans[:8], None, pooled)  # warm-up
    rates: dict[str, Any] = {"passages": len(texts), "sentences": sum(len(s) for s in spans),
                             "sentence_vectors": f"pooled-top{TOP_LAYERS}" if pooled else "alone", "rounds": a.rounds}
    import torch

    threads = torch.get_num_threads()
    ray_embedders: dict[int, Any] = {}
    if not a.skip_ray:
        from rag.store.rayindex import RayEmbedder, start_ray

        start_ray(num_cpus=2)
        ray_embedders = {w: RayEmbedder(settings, emb, workers=w) for w in (1, 2)}
    runs: dict[str, list[float]] = {}
    # the measurements take turns, round after round: a busy spell of the machine hits all of them
    for _ in range(a.rounds):
        runs.setdefault("in_process_all_cores", []).append(
            _rate(len(texts), lambda: encode_pooled(emb, texts, spans, None, pooled)))
        torch.set_num_threads(1)
        runs.setdefault("in_process_1_thread", []).append(
            _rate(len(texts), lambda: encode_pooled(emb, texts, spans, None, pooled)))
        torch.set_num_threads(threads)
        for w, re in ray_embedders.items():  # 2 local CPUs: one pool at a time
            t0 = time.perf_counter()
            re.start()
            runs.setdefault(f"ray_{w}_worker_start_s", []).append(round(time.perf_counter() - t0, 1))
            re.encode_with_sentences(texts[:8], spans[:8], None, pooled)  # warm-up
            runs.setdefault(f"ray_{w}_worker", []).append(
                _rate(len(texts), lambda re=re: re.encode_with_sentences(texts, spans, None, pooled)))
            re.close()
    for key, values in runs.items():
        rates[key] = sorted(values)[len(values) // 2]  # median
        rates[key + "_runs"] = values
    if ray_embedders:
        rates["ray_2_over_1"] = round(rates["ray_2_worker"] / rates["ray_1_worker"], 2)
    rates["1_thread_over_all_cores"] = round(rates["in_process_1_thread"] / rates["in_process_all_cores"], 2)
    out["embed_passages_per_s"] = rates
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
