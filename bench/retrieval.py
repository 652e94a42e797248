"""Retrieval benchmark: prints one JSON object.

- indexing passages/s on the shipped corpus plus a slice of belebele ko/en, and its
  ratio to a bare ``model.encode`` over the same passage texts;
- hybrid query latency p50/p95 (model loaded) on the shipped corpus and on a
  synthetic 100k-passage index (real Korean/English words, seeded synthetic
  low-rank vectors, HNSW above the size threshold);
- recall@10 of that approximate index against exact search;
- index bytes per passage and peak RSS.

Usage: python bench/retrieval.py [--passages 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import Settings  # noqa: E402
from rag.model.embed import load_embedder  # noqa: E402
from rag.model.encoder import load_query_embedder  # noqa: E402
from rag.records import Chunk  # noqa: E402
from rag.search.retrieve import Retriever  # noqa: E402
from rag.store.crosslex import build as build_terms  # noqa: E402
from rag.store.index import build_index, write_index  # noqa: E402
from rag.store.indexfiles import load_index  # noqa: E402
from rag.store.lexical import Lexical  # noqa: E402
from rag.store.sentvec import SentenceVectors  # noqa: E402

QUESTIONS = [
    "K-AI 사업에서 탈락한 팀은 어디인가?",
    "카카오의 언어모델 이름은?",
    "KT 컨소시엄에 참여한 기관은?",
    "Which teams were eliminated from the K-AI programme?",
    "What GPUs does Motif Technologies use?",
    "모티프테크놀로지스는 언제 출범했나?",
]


def pct(xs: list[float], p: float) -> float:
    return round(float(np.percentile(np.asarray(xs) * 1000, p)), 2)


def latency(retriever: Retriever, questions: list[str], n: int) -> dict[str, float]:
    retriever.search(questions[0])  # warm-up
    times = []
    for i in range(n):
        t = time.perf_counter()
        retriever.search(questions[i % len(questions)], k=5)
        times.append(time.perf_counter() - t)
    return {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "queries": n}


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def indexing(settings: Settings, tmp: Path, n_passages: int) -> dict[str, float]:
    rows = []
    for name in ("ko", "en"):
        f = ROOT.parent / "shared" / "eval" / "belebele" / name / "corpus.jsonl"
        if f.exists():
            rows += f.read_text(encoding="utf-8").splitlines()[: n_passages // 2]
    corpus = tmp / "bench-corpus.jsonl"
    corpus.write_text("\n".join(rows) + "\n", encoding="utf-8")
    embedder = load_embedder(settings)
    t = time.perf_counter()
    report = build_index(settings, [corpus, ROOT / "corpus"], tmp / "idx", rebuild=True, progress=False)
    build_s = time.perf_counter() - t
    texts = [c.text for c in load_index(tmp / "idx", settings).chunks]
    t = time.perf_counter()
    embedder.encode_passages(texts)
    bare_s = time.perf_counter() - t
    return {
        "passages": report.chunks,
        "index_passages_per_s": round(report.chunks / build_s, 2),
        "bare_encode_passages_per_s": round(len(texts) / bare_s, 2),
        "ratio_to_bare_encode": round((report.chunks / build_s) / (len(texts) / bare_s), 3),
        "bytes_per_passage": round(dir_bytes(tmp / "idx") / max(report.chunks, 1)),
    }


def synthetic(settings: Settings, tmp: Path, n: int, n_queries: int) -> dict[str, object]:
    """A 100k-passage index: real words, synthetic vectors (embedding 100k passages takes hours here)."""
    rng = np.random.default_rng(0)
    seed_words = " ".join(p.read_text(encoding="utf-8") for p in (ROOT / "corpus").glob("*.md")).split()
    en_words = ["market", "government", "company", "report", "growth", "energy", "city", "police"]
    vocab = np.array(seed_words + en_words * 20)
    embedder = load_embedder(settings)
    dim, latent = embedder.dim, 64
    proj = rng.standard_normal((latent, dim)).astype(np.float32)
    centers = rng.standard_normal((1000, latent)).astype(np.float32)
    z = centers[rng.integers(0, 1000, n)] + 0.5 * rng.standard_normal((n, latent)).astype(np.float32)
    vecs = z @ proj + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks, metas = [], []
    for i in range(n):
        text = " ".join(rng.choice(vocab, 60))
        chunks.append(Chunk(f"syn{i // 10}#{i % 10:04d}", f"syn{i // 10}", text, 0, len(text), "ko"))
        if i % 10 == 0:
            metas.append({"doc_id": f"syn{i // 10}", "title": f"synthetic {i // 10}", "sha256": "", "source": ""})
    # four sentence vectors per passage near its own vector, and real term vectors for the vocabulary,
    # so that queries pay for best-sentence scoring and cross-language BM25 as on a real index
    per = 4
    sent = np.repeat(vecs, per, axis=0) + 0.3 * rng.standard_normal((n * per, dim)).astype(np.float32)
    sent /= np.linalg.norm(sent, axis=1, keepdims=True)
    sentences = SentenceVectors(sent.astype(np.float16), np.arange(0, n * per + 1, per, dtype=np.int64))
    del sent
    t = time.perf_counter()
    lexical = Lexical.build([c.text for c in chunks])
    terms, _ = build_terms(lexical.vocabulary(), None, embedder, progress=False)
    factory = write_index(tmp / "syn", settings, embedder, chunks, metas, vecs, sentences, terms, lexical)
    build_s = time.perf_counter() - t
    retriever = Retriever(load_index(tmp / "syn", settings), load_query_embedder(settings), settings)
    # ANN recall against exact search on queries near stored vectors
    import faiss

    q = vecs[rng.integers(0, n, 500)] + 0.05 * rng.standard_normal((500, dim)).astype(np.float32)
    exact = faiss.IndexFlatIP(dim)
    exact.add(vecs)
    _, gt = exact.search(q, 10)
    _, got = retriever.index.faiss_index.search(q, 10)
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, gt, strict=True)]))
    lat = latency(retriever, QUESTIONS, n_queries)
    return {
        "passages": n, "faiss": factory, "build_s": round(build_s, 1), "ann_recall_at_10": round(recall, 4),
        "bytes_per_passage": round(dir_bytes(tmp / "syn") / n), **{f"query_{k}": v for k, v in lat.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=100_000, help="synthetic index size")
    ap.add_argument("--index-passages", type=int, default=400, help="real passages embedded for indexing speed")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    settings = Settings.from_env()
    out: dict[str, object] = {
        "settings": {"embed_model": settings.embed_model, "ann_threshold": settings.ann_threshold}
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        build_index(settings, [ROOT / "corpus"], tmp / "seed", progress=False)
        seed = Retriever.open(settings, tmp / "seed")
        out["query_embedder"] = type(seed.embedder).__name__  # OnnxEmbedder once `rag index` exported the model
        out["shipped_corpus"] = {"passages": len(seed.index.chunks), **latency(seed, QUESTIONS, args.queries),
                                 "bytes_per_passage": round(dir_bytes(tmp / "seed") / len(seed.index.chunks))}
        out["indexing"] = indexing(settings, tmp, args.index_passages)
        out["synthetic"] = synthetic(settings, tmp, args.passages, args.queries)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
