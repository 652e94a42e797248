"""Scale benchmark: a seeded synthetic index of N passages (default 1,000,000); prints one JSON object.

Passages are made of real Korean and English terms (Kiwi morphemes and English
words of ../shared/eval, drawn with their corpus frequencies, 80 per passage),
with seeded synthetic vectors (1,000 clusters in a 64-dimensional subspace plus
noise, L2-normalised) and four sentence vectors per passage near its own, so the
model is not the bottleneck. Kiwi is not run on the synthetic passages (they are
generated as terms); its rate is measured on the real texts and its time at N
estimated (``kiwi_s_estimated``). The index is written by the product's own
``write_index``, so the FAISS type is the one ``rag index`` picks at that size
(``factory_for``). Reported:

- build: seconds per stage, bytes per passage (per file), peak RSS of the build process;
- serve: a fresh process loads the index as ``rag serve`` does (memory-mapped) and runs
  hybrid queries (real questions from ../shared/eval, real ONNX query encoder): p50/p95
  of the whole search and of each part (dense, BM25, fusion), and its peak RSS;
- ANN recall@10 of the FAISS index against exact search (queries near stored vectors);
- ``--compare``: FAISS index types side by side on the same vectors (build s, bytes,
  recall@10, ms per query), the evidence for ``factory_for``.

Usage: python bench/million.py [--passages 1000000] [--queries 200] [--compare] [--out FILE]
       python bench/million.py --keep DIR ...            build into DIR/idx and keep it (and DIR/vectors.f16)
       python bench/million.py --index DIR [--against ROOT] [--rounds R] [--cold]
           only the serving part on a kept index; with ``--against`` (another checkout, e.g. main's)
           its code and this one's are timed alternately on the same index, R rounds each, with ratios;
           with ``--cold`` (root) the page cache is emptied before each run, and serving is timed
           without, then with, the background prefetch that ``rag serve`` starts
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "eval"
if not EVAL.exists():
    EVAL = Path("/work/shared/eval")

from rag.config import Settings  # noqa: E402
from rag.records import Chunk  # noqa: E402
from rag.store.crosslex import TermVectors  # noqa: E402
from rag.store.sentvec import SentenceVectors, quantise  # noqa: E402

TERMS_PER_PASSAGE = 80
SENTENCES_PER_PASSAGE = 4  # Belebele ko and KorQuAD indexes hold 4.2 per passage
LATENT, CLUSTERS = 64, 1000


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it does not carry the parent's over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def reset_peak() -> None:
    """Reset this process's peak RSS to its current RSS (Linux: ``clear_refs`` 5)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def pct(xs: list[float], p: float) -> float:
    return round(float(np.percentile(np.asarray(xs) * 1000, p)), 2)


def real_texts() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"ko": [], "en": []}
    for name, lang in (("belebele/ko", "ko"), ("korquad", "ko"), ("belebele/en", "en")):
        f = EVAL / name / "corpus.jsonl"
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out[lang].append(json.loads(line)["text"])
    return out


def questions(n: int) -> list[str]:
    qs: list[str] = []
    for name in ("belebele/ko", "belebele/en", "korquad"):
        rows = (EVAL / name / "queries.jsonl").read_text(encoding="utf-8").splitlines()
        qs += [json.loads(r)["question"] for r in rows[: n // 3 + 1] if r.strip()]
    return qs[:n]


def vocabulary(texts: dict[str, list[str]]) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], float]:
    """Per language, the terms and their frequencies in the real texts; and Kiwi's passages/s."""
    from rag.text import tokens_batch

    out = {}
    t = time.perf_counter()
    n = 0
    for lang, items in texts.items():
        counts = Counter(w for toks in tokens_batch(items) for w in toks)
        n += len(items)
        terms = np.array(sorted(counts))
        freq = np.array([counts[w] for w in terms], dtype=np.float64)
        out[lang] = (terms, freq / freq.sum())
    return out, n / (time.perf_counter() - t)


def synthetic_vectors(n: int, dim: int, seed: int = 0, out: Path | None = None) -> np.ndarray:
    """float16 (n, dim), L2-normalised, clustered in a low-rank subspace (blockwise: bounded memory;
    in a file ``out`` when given, so a million of them stay out of the bench's RSS)."""
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((LATENT, dim)).astype(np.float32)
    centers = rng.standard_normal((CLUSTERS, LATENT)).astype(np.float32)
    res = np.zeros((n, dim), np.float16) if out is None else np.lib.format.open_memmap(
        out, mode="w+", dtype=np.float16, shape=(n, dim))
    for at in range(0, n, 100_000):
        m = min(100_000, n - at)
        z = centers[rng.integers(0, CLUSTERS, m)] + 0.5 * rng.standard_normal((m, LATENT)).astype(np.float32)
        v = z @ proj + 0.5 * rng.standard_normal((m, dim)).astype(np.float32)
        res[at : at + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return res


def sentence_vectors(vecs: np.ndarray, per: int, seed: int = 1, out: Path | None = None) -> SentenceVectors:
    """``per`` int8 sentence vectors per passage near its own vector (in a file ``out`` when given)."""
    rng = np.random.default_rng(seed)
    n, dim = vecs.shape
    codes = np.zeros((n * per, dim), np.int8) if out is None else np.lib.format.open_memmap(
        out, mode="w+", dtype=np.int8, shape=(n * per, dim))
    scales = np.zeros(n * per, np.float32)
    for at in range(0, n, 50_000):
        s = np.repeat(vecs[at : at + 50_000].astype(np.float32), per, axis=0)
        s += 0.3 * rng.standard_normal(s.shape).astype(np.float32)
        s /= np.linalg.norm(s, axis=1, keepdims=True)
        codes[at * per : at * per + len(s)], scales[at * per : at * per + len(s)] = quantise(s)
    return SentenceVectors(codes, np.arange(0, n * per + 1, per, dtype=np.int64), scales)


class Model:
    """What ``write_index`` records of the model (no model is run at build time)."""

    model_id = "synthetic"
    checksum = "synthetic"
    dim = 384


def build(n: int, tmp: Path, settings: Settings, as_rag_index: bool = False) -> dict[str, Any]:
    """The synthetic build. ``as_rag_index``: a proxy for the peak RSS of ``rag index`` at ``n``
    passages: the model loaded (ONNX, as ``rag index`` uses it) and run on real passages (and
    their sentences) in this process, Kiwi loaded and run (on the real texts), BM25 from term ids
    (``Lexical.build`` holds the strings of one block of 2,048 passages at a time), the passage
    vectors as one float32 array and the sentence vectors as one float16 array per passage
    assembled into int8 codes, as ``rag.store.index`` holds them. Not in it: Kiwi's time on n passages,
    the term vectors' model pass (the synthetic vocabulary has vectors), the checkpoint files."""
    from rag.store.index import write_index
    from rag.store.lexical import Lexical

    stages: dict[str, float] = {}
    Model.model_id = settings.embed_model  # load_index checks it against the settings
    t = time.perf_counter()
    texts = real_texts()
    vocab, kiwi_rate = vocabulary(texts)
    embedder = None
    rss_mb: dict[str, float] = {"after_kiwi": rss_now_mb()}
    if as_rag_index:
        from rag.model.encoder import load_index_embedder
        from rag.store.sentvec import embed_chunks

        embedder = load_index_embedder(settings, lambda m: None)
        sample = [Chunk(f"real{i}#0000", f"real{i}", x, 0, len(x), lang)
                  for lang in ("ko", "en") for i, x in enumerate(texts[lang][:128])]
        t1 = time.perf_counter()
        for at in range(0, len(sample), 64):
            embed_chunks(embedder, sample[at : at + 64], [None] * len(sample[at : at + 64]), None,
                         settings.sentence_pooling)
        stages["model_256_real_passages_s"] = time.perf_counter() - t1
        rss_mb["after_model"] = rss_now_mb()
        from rag.store.crosslex import embed_terms  # then the terms a first index embeds, as rag index

        t1 = time.perf_counter()
        embed_terms(embedder, sorted({w for lang in vocab for w in vocab[lang][0].tolist()})[:4096], False)
        stages["model_4096_terms_s"] = time.perf_counter() - t1
        rss_mb["after_terms"] = rss_now_mb()
        release = getattr(embedder, "release_index_graphs", None)
        if release is not None:
            release()
    stages["vocabulary_s"] = time.perf_counter() - t
    rng = np.random.default_rng(2)
    peak_before = peak_rss_mb()
    t = time.perf_counter()
    all_terms = sorted({t for lang in vocab for t in vocab[lang][0].tolist()})
    term_id = {w: i for i, w in enumerate(all_terms)}
    lang_ids = {lang: np.array([term_id[w] for w in vocab[lang][0].tolist()], np.int32) for lang in vocab}
    words = np.array(all_terms, dtype=object)
    ids = np.zeros(n * TERMS_PER_PASSAGE, np.int32)  # the passages' terms as ids (no lists of strings)
    chunks: list[Chunk] = []
    metas: list[dict[str, str]] = []
    for at in range(0, n, 10_000):
        m = min(10_000, n - at)
        for lang, half in (("ko", (m + 1) // 2), ("en", m // 2)):
            _, p = vocab[lang]
            picks = lang_ids[lang][rng.choice(len(p), (half, TERMS_PER_PASSAGE), p=p)]
            for row in picks:
                i = len(chunks)
                ids[i * TERMS_PER_PASSAGE : (i + 1) * TERMS_PER_PASSAGE] = row
                text = " ".join(words[row])
                chunks.append(Chunk(f"syn{i // 10}#{i % 10:04d}", f"syn{i // 10}", text, 0, len(text), lang))
                if i % 10 == 0:
                    metas.append({"doc_id": f"syn{i // 10}", "title": f"synthetic {i // 10}", "sha256": "",
                                  "source": ""})
    vecs = synthetic_vectors(n, Model.dim, out=tmp / "vectors.f16")
    sentences = sentence_vectors(vecs, SENTENCES_PER_PASSAGE, out=tmp / "sentences.i8")
    tv = synthetic_vectors(len(all_terms), Model.dim, seed=3).astype(np.float32)
    terms = TermVectors.of(all_terms, tv)
    stages["generate_s"] = time.perf_counter() - t
    rss_mb["after_generate"] = rss_now_mb()
    # generating the synthetic data is the bench's own work (its transient arrays peaked at ~1 GB
    # over the data at 100k): the peak is reset here (Linux clear_refs 5), and the build's peak is
    # the larger of the one before (Kiwi, the model pass) and the one after (BM25, FAISS, writing)
    peaks = {"before_generate": peak_before, "generate": peak_rss_mb()}
    reset_peak()
    t = time.perf_counter()
    if as_rag_index:  # what rag index holds: BM25 from term ids (Lexical.build keeps one block of
        # 2,048 passages' term strings at a time), the passage vectors float32, sentences as parts
        lexical = Lexical.from_term_ids(ids, np.full(n, TERMS_PER_PASSAGE, np.int64), all_terms)
        rss_mb["after_bm25"] = rss_now_mb()
        vecs = np.asarray(vecs, dtype=np.float32)
        per = SENTENCES_PER_PASSAGE
        parts = []
        for at in range(0, n, 10_000):  # blockwise: no float32 copy of every sentence row (bench only)
            block = np.asarray(sentences.rows(np.arange(at * per, min(n, at + 10_000) * per)), np.float16)
            parts += [block[i * per : (i + 1) * per].copy() for i in range(len(block) // per)]
        from rag.store.sentvec import assemble

        rss_mb["sentence_parts"] = rss_now_mb()
        sentences = assemble(parts, Model.dim, quantised=True)
        del parts
    else:
        lexical = Lexical.from_term_ids(ids, np.full(n, TERMS_PER_PASSAGE, np.int64), all_terms)
    stages["bm25_s"] = time.perf_counter() - t
    del ids
    t = time.perf_counter()
    rss_mb["before_write"] = rss_now_mb()
    factory = write_index(tmp / "idx", settings, Model(), chunks, metas, vecs, sentences, terms, lexical)
    stages["faiss_and_write_s"] = time.perf_counter() - t
    files = {p.relative_to(tmp / "idx").as_posix(): p.stat().st_size for p in (tmp / "idx").rglob("*") if p.is_file()}
    groups: dict[str, int] = {}
    for name, size in files.items():
        key = name.split("/")[0] if name.startswith("bm25") else name
        key = "bm25/pairs-keyed" if name.startswith("bm25/pairs-keyed") else key
        groups[key] = groups.get(key, 0) + size
    total = sum(files.values())
    kiwi_s = n / kiwi_rate
    return {
        "passages": n, "faiss": factory, "stages_s": {k: round(v, 1) for k, v in stages.items()},
        "build_s": round(stages["bm25_s"] + stages["faiss_and_write_s"], 1),
        "kiwi_passages_per_s": round(kiwi_rate, 1), "kiwi_s_estimated": round(kiwi_s, 1),
        "bytes": total, "bytes_per_passage": round(total / n),
        "bytes_per_passage_by_file": {k: round(v / n) for k, v in sorted(groups.items())},
        "terms": len(all_terms), "build_peak_rss_mb": max(peaks["before_generate"], peak_rss_mb()),
        "build_peak_rss_mb_by_phase": {**peaks, "after_generate": peak_rss_mb()}, "build_rss_mb_at": rss_mb,
        "vectors_for_recall": vecs,
    }


def recall(index_dir: Path, vecs: np.ndarray, settings: Settings, n_q: int = 500) -> float:
    """Recall@10 of the written FAISS index against exact inner product on queries near stored vectors."""
    from rag.store.indexfiles import load_index

    rng = np.random.default_rng(4)
    n, dim = vecs.shape
    q = vecs[rng.integers(0, n, n_q)].astype(np.float32) + 0.05 * rng.standard_normal((n_q, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    best = np.full((n_q, 10), -np.inf, np.float32)
    ids = np.zeros((n_q, 10), np.int64)
    for at in range(0, n, 100_000):
        s = q @ vecs[at : at + 100_000].astype(np.float32).T
        cand = np.concatenate([best, s], axis=1)
        cid = np.concatenate([ids, np.arange(at, at + s.shape[1])[None, :].repeat(n_q, 0)], axis=1)
        top = np.argpartition(-cand, 9, axis=1)[:, :10]
        best, ids = np.take_along_axis(cand, top, 1), np.take_along_axis(cid, top, 1)
    index = load_index(index_dir, settings)
    _, got = index.faiss_index.search(q, 10)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, ids, strict=True)]))


def serve_child(index_dir: Path, n_queries: int, prefetch: bool = True) -> dict[str, Any]:
    """Load the index as ``rag serve`` does (warm-up question, page-cache prefetch in the background
    unless ``prefetch`` is off) and time hybrid queries, whole and by part, starting at once."""
    from rag.model.encoder import load_query_embedder
    from rag.search.retrieve import Retriever, _top
    from rag.store.indexfiles import load_index
    from rag.text import tokens

    settings = Settings.from_env()
    t = time.perf_counter()
    retriever = Retriever(load_index(index_dir, settings), load_query_embedder(settings), settings)
    load_s = time.perf_counter() - t
    qs = questions(n_queries)
    retriever.search("warm-up 준비", 1)  # as `rag serve` warms up (rag.serve.service): Kiwi and the model set up
    if prefetch:
        from rag.store.pagecache import prefetch_in_background

        prefetch_in_background(index_dir)
    parts: dict[str, list[float]] = {k: [] for k in ("total", "encode", "dense", "bm25", "rest")}
    for q in qs:
        t0 = time.perf_counter()
        retriever.search(q, k=5)
        t1 = time.perf_counter()
        qv = retriever.embedder.encode_queries([q])[0]  # type: ignore[attr-defined]
        t2 = time.perf_counter()
        retriever.index.dense_search(qv, settings.candidates)
        t3 = time.perf_counter()
        words = tokens(q)
        lx = retriever.index.lexical
        _top(lx.term_scores(words) + lx.pair_scores(words), None, settings.candidates)
        t4 = time.perf_counter()
        for k, v in (("total", t1 - t0), ("encode", t2 - t1), ("dense", t3 - t2), ("bm25", t4 - t3)):
            parts[k].append(v)
        parts["rest"].append(max(0.0, (t1 - t0) - (t2 - t1) - (t3 - t2) - (t4 - t3)))
    out: dict[str, Any] = {"load_s": round(load_s, 2), "queries": len(qs)}
    for k, v in parts.items():
        out[f"{k}_p50_ms"], out[f"{k}_p95_ms"] = pct(v, 50), pct(v, 95)
    out["search_without_encode_p95_ms"] = pct([a - b for a, b in zip(parts["total"], parts["encode"], strict=True)], 95)
    out["peak_rss_mb"] = peak_rss_mb()
    out["rss_mb_by_mapping"] = rss_by_mapping()
    return out


def rss_by_mapping(top: int = 8) -> dict[str, float]:
    """Resident MB of this process per mapped file (anonymous memory as ``[heap]``/``[anon]``), largest first."""
    import re

    rows: dict[str, int] = {}
    name = "[anon]"
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split()
            name = parts[5] if len(parts) > 5 else "[anon]"
            name = name if name.startswith("[") else "/".join(name.split("/")[-2:])
        elif line.startswith("Rss:"):
            rows[name] = rows.get(name, 0) + int(line.split()[1])
    return {k: round(v / 1024, 1) for k, v in sorted(rows.items(), key=lambda x: -x[1])[:top]}


def serve(index_dir: Path, n_queries: int, root: Path, prefetch: bool = True) -> dict[str, Any]:
    """The serving part in a fresh process running the code of checkout ``root``."""
    child = subprocess.run(
        [sys.executable, str(root / "bench" / "million.py"), "--serve-child", str(index_dir),
         "--queries", str(n_queries), *([] if prefetch else ["--no-prefetch"])],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(root)},
    )
    if child.returncode:
        return {"error": child.stderr[-2000:]}
    return dict(json.loads(child.stdout.strip().splitlines()[-1]))


def drop_page_cache() -> str:
    """Empty the kernel's page cache (needs root): "" when done, else why not."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError as e:
        return f"cannot drop the page cache ({e.strerror}): run as root"
    return ""


def cold_rounds(index_dir: Path, n_queries: int, rounds: int) -> dict[str, Any]:
    """Serving right after the page cache was emptied, without and with the background prefetch
    ``rag serve`` starts (rag.store.pagecache), alternately ``rounds`` times."""
    out: dict[str, Any] = {"rounds": []}
    for _ in range(rounds):
        row: dict[str, Any] = {"load_avg": os.getloadavg()[0]}
        for name, prefetch in (("cold_without_prefetch", False), ("cold_with_prefetch", True)):
            why = drop_page_cache()
            if why:
                return {"error": why}
            row[name] = serve(index_dir, n_queries, ROOT, prefetch)
        out["rounds"].append(row)
    return out


def serve_rounds(index_dir: Path, n_queries: int, rounds: int, against: str) -> dict[str, Any]:
    """Serving timed ``rounds`` times; with ``against``, that checkout first in each round, then this
    one, and the ratios this / against of each round's p50/p95 (same index, same machine, minutes apart)."""
    out: dict[str, Any] = {"rounds": []}
    for _ in range(rounds):
        row: dict[str, Any] = {"load_avg": os.getloadavg()[0]}
        if against:
            row["against"] = serve(index_dir, n_queries, Path(against).resolve())
        row["this"] = serve(index_dir, n_queries, ROOT)
        if against and "error" not in row["against"] and "error" not in row["this"]:
            row["ratio_this_to_against"] = {
                k: round(row["this"][k] / row["against"][k], 3)
                for k in row["this"] if k.endswith("_ms") or k in ("peak_rss_mb", "load_s")
                if k in row["against"] and row["against"][k]
            }
        out["rounds"].append(row)
    return out


def compare(vecs: np.ndarray, threads: int = 2) -> list[dict[str, Any]]:
    """FAISS index types on the same vectors: build s, bytes per vector, recall@10, ms per query."""
    import faiss

    faiss.omp_set_num_threads(threads)
    n, dim = vecs.shape
    x = np.ascontiguousarray(vecs, dtype=np.float32)
    rng = np.random.default_rng(5)
    q = x[rng.integers(0, n, 300)] + 0.05 * rng.standard_normal((300, dim)).astype(np.float32)
    exact = faiss.IndexFlatIP(dim)
    exact.add(x)
    t = time.perf_counter()
    _, gt = exact.search(q, 10)
    flat_ms = (time.perf_counter() - t) / len(q) * 1000
    nlist = 1 << max(4, round(np.log2(np.sqrt(n))))
    rows: list[dict[str, Any]] = [{"factory": "Flat", "build_s": 0.0, "bytes_per_vector": dim * 4,
                                   "recall_at_10": 1.0, "ms_per_query": round(flat_ms, 2)}]
    for factory, knob, values in (
        ("HNSW32,Flat", "efSearch", (128,)), ("HNSW32,SQ8", "efSearch", (128,)),
        (f"IVF{nlist},SQ8", "nprobe", (16, 32, 64)), (f"IVF{nlist},PQ48", "nprobe", (32,)),
    ):
        fx = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        t = time.perf_counter()
        if factory.startswith("HNSW"):
            fx.hnsw.efConstruction = 40
        if not fx.is_trained:
            fx.train(x[rng.choice(n, min(n, 64 * nlist), replace=False)])
        fx.add(x)
        build_s = time.perf_counter() - t
        with tempfile.NamedTemporaryFile() as f:
            faiss.write_index(fx, f.name)
            size = os.path.getsize(f.name)
        for v in values:
            if knob == "efSearch":
                fx.hnsw.efSearch = v
            else:
                faiss.extract_index_ivf(fx).nprobe = v
            t = time.perf_counter()
            got = np.vstack([fx.search(q[i : i + 1], 10)[1] for i in range(len(q))])  # one question at a time
            ms = (time.perf_counter() - t) / len(q) * 1000
            r = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, gt, strict=True)]))
            rows.append({"factory": factory, knob: v, "build_s": round(build_s, 1), "bytes_per_vector": round(size / n),
                         "recall_at_10": round(r, 4), "ms_per_query": round(ms, 2)})
        del fx
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--compare", action="store_true", help="only compare FAISS index types on the vectors")
    ap.add_argument("--ivf-threshold", type=int, default=None, help="override Settings.ivf_threshold")
    ap.add_argument("--keep", default="", help="build into DIR/idx and keep it (and vectors)")
    ap.add_argument("--index", default="", help="a folder made by --keep: skip the build, time serving only")
    ap.add_argument("--against", default="", help="with --index: a checkout timed alternately")
    ap.add_argument("--as-rag-index", action="store_true", help="build with the model loaded and run, token "
                    "lists and in-memory vectors: a proxy for `rag index`'s peak RSS (see build)")
    ap.add_argument("--rounds", type=int, default=1, help="with --index: alternating rounds")
    ap.add_argument("--cold", action="store_true", help="with --index: empty the page cache (root) before each "
                    "run and time serving without, then with, the background prefetch of `rag serve`")
    ap.add_argument("--serve-child", default="", help=argparse.SUPPRESS)
    ap.add_argument("--no-prefetch", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help="also write the JSON here")
    args = ap.parse_args()
    if args.serve_child:
        print(json.dumps(serve_child(Path(args.serve_child), args.queries, not args.no_prefetch)))
        return
    settings = Settings.from_env()
    if args.ivf_threshold is not None:
        settings = replace(settings, ivf_threshold=args.ivf_threshold)
    out: dict[str, Any] = {"passages": args.passages, "cpus": os.cpu_count(), "load_avg_start": os.getloadavg()[0]}
    if args.compare:
        out["compare"] = compare(synthetic_vectors(args.passages, Model.dim))
    elif args.index:
        out["passages"] = json.loads((Path(args.index) / "manifest.json").read_text())["counts"]["chunks"]
        if args.cold:
            out.update(cold_rounds(Path(args.index), args.queries, args.rounds))
        else:
            out.update(serve_rounds(Path(args.index), args.queries, args.rounds, args.against))
    else:
        with contextlib.ExitStack() as stack:
            if args.keep:
                tmp = Path(args.keep)
                tmp.mkdir(parents=True, exist_ok=True)
            else:
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            b = build(args.passages, tmp, settings, args.as_rag_index)
            (tmp / "sentences.i8").unlink(missing_ok=True)  # the index holds its own copy
            vecs = b.pop("vectors_for_recall")
            out["build"] = b
            out["ann_recall_at_10"] = round(recall(tmp / "idx", vecs, settings), 4)
            del vecs
            out["serve"] = serve(tmp / "idx", args.queries, ROOT)
    out["load_avg_end"] = os.getloadavg()[0]
    text = json.dumps(out, ensure_ascii=False, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
