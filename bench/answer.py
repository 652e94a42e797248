"""Extractive ``ask`` latency (model loaded), on the shipped corpus and on Belebele ko.

Each corpus is indexed into a temporary folder first (not timed), the model is
warmed up with one question, then every question is answered once through
:func:`rag.answer.compose.answer` with the LLM switched off. Prints one JSON object:

    python bench/answer.py [--n 200] [--shared ../shared]

Timings are wall-clock per question (retrieval, sentence scoring, abstention
decision and formatting); p95 is the 95th percentile.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer.compose import answer  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.model.embed import load_embedder  # noqa: E402
from rag.search.retrieve import Retriever  # noqa: E402
from rag.store.index import build_index  # noqa: E402


def _questions(path: Path, n: int, seed: int = 0) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(rows)
    return [r["question"] for r in rows[:n]]


def _bench(
    settings: Settings, corpus: list[Path], questions: list[str], embedder: Any, index: Path | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        if index is None:  # built here (not timed)
            index = Path(tmp) / "index"
            chunks = build_index(settings, corpus, index, progress=False, embedder=embedder).chunks
        retriever = Retriever.open(settings, index)
        if index != Path(tmp) / "index":
            chunks = len(retriever.index.chunks)
        answer(retriever, "워밍업 질문입니다. warm-up question", settings=settings)
        times, cpu, abstained = [], [], 0
        for q in questions:
            t0, c0 = time.perf_counter(), time.process_time()
            a = answer(retriever, q, settings=settings)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            abstained += a.abstained
    ms, cms = sorted(times), sorted(cpu)
    return {
        "query_embedder": type(retriever.embedder).__name__,  # OnnxEmbedder once `rag index` exported it
        "passages": chunks,
        "questions": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(_p95(ms), 1),
        "max_ms": round(ms[-1], 1),
        # CPU time of this process per question (all its threads): a check on a busy machine
        "cpu_p50_ms": round(statistics.median(cms), 1),
        "cpu_p95_ms": round(_p95(cms), 1),
        "abstained": abstained,
    }


def _p95(sorted_ms: list[float]) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(0.95 * len(sorted_ms)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="questions per set (default 200)")
    p.add_argument("--shared", default=str(ROOT.parent / "shared"), help="folder holding eval/")
    p.add_argument("--index-seed", help="an index of corpus/ built before (default: built here)")
    p.add_argument("--index-ko", help="an index of Belebele ko built before (default: built here)")
    p.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads(N) first (0: as configured)")
    args = p.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    settings = replace(Settings.from_env(), llm_base_url="")  # extractive only
    embedder = load_embedder(settings)
    shared = Path(args.shared)
    import torch

    out: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "mode": "extractive",
    }
    seed_qs = [
        *_questions(shared / "eval" / "seed" / "questions.jsonl", args.n),
        *_questions(ROOT / "eval" / "offtopic.jsonl", args.n),
    ]
    seed_index = Path(args.index_seed) if args.index_seed else None
    out["shipped_corpus"] = _bench(settings, [ROOT / "corpus"], seed_qs, embedder, seed_index)
    ko = shared / "eval" / "belebele" / "ko"
    if ko.is_dir():
        ko_index = Path(args.index_ko) if args.index_ko else None
        ko_qs = _questions(ko / "queries.jsonl", args.n)
        out["belebele_ko"] = _bench(settings, [ko / "corpus.jsonl"], ko_qs, embedder, ko_index)
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
