"""Ingest benchmark: `rag index` against a bare encode and LangChain, on one corpus; prints JSON.

One after the other, each in its own process (timed whole: start-up, model
load, work, writing), on the same passage texts and the same model (the
bundled multilingual-e5-small folder), in interleaved rounds (a, a', b, c, a,
a', b, c, ...; medians and per-round ratios reported, since the shared CPU's
speed changes by 2x within minutes):

(a) ``rag index`` into a fresh folder with a fresh term-vector cache (the
    default: sentence vectors from the passage's pass, the model's last 3 layers run again
    within each sentence, ``rag.model.pooled``; common words' term vectors from the shipped
    table, ``rag.store.termtable``, unless ``--no-term-table``), (a') the same with
    ``RAG_SENTENCE_POOLING=0`` (each sentence encoded alone, a second pass);
(b) a bare ``SentenceTransformer.encode`` of the texts (``passage: `` prompt,
    batch 32, normalised);
(c) LangChain ``FAISS.from_documents`` with ``HuggingFaceEmbeddings`` (extra
    ``bench``: ``pip install -e .[bench]``).

Reported: passages/s of each (records of the corpus / wall seconds), the
ratios of (a) to (b) and (c) by wall time and by CPU time (user + system of the
process and its threads: steadier than wall time when other work shares the
cores), peak RSS of each process, index bytes per passage. Times move 2x on a
shared machine; the ratios are measured in the same run.

Usage: python bench/ingest.py --corpus FILE.jsonl [--limit N] [--rounds 3] [--no-alone] [--no-term-table]
       python bench/ingest.py --mix 1000   (Korean KorQuAD paragraphs + English Belebele passages)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent.parent / "shared" / "eval"  # ../shared/eval from a worktree or checkout
sys.path.insert(0, str(ROOT))


def _eval_dir() -> Path:
    for cand in (Path(os.environ.get("RAG_EVAL_DIR", "")), ROOT.parent / "shared" / "eval", EVAL):
        if str(cand) and (cand / "korquad").is_dir():
            return cand
    raise SystemExit("bench/ingest.py --mix: set RAG_EVAL_DIR to the shared eval folder (korquad/, belebele/)")


def make_mix(n: int, out: Path) -> Path:
    """``n`` records: the first n/2 KorQuAD paragraphs (Korean) and n/2 Belebele English passages."""
    ev = _eval_dir()
    half = n // 2
    ko = (ev / "korquad" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:half]
    en = (ev / "belebele" / "en" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[: n - half]
    out.write_text("\n".join(ko + en) + "\n", encoding="utf-8")
    return out


def _run(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run ``cmd``; its wall seconds, CPU seconds (user + system, all threads) and peak RSS (GB), from
    the kernel's accounting of that child. CPU seconds move much less than wall seconds when other
    processes share the cores."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        raise SystemExit(f"bench/ingest.py: {' '.join(cmd[:4])}... failed (status {status}): {out[-2000:]!r}")
    return {"seconds": round(wall, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_gb": round(usage.ru_maxrss / 1024**2, 3), "stdout": out.decode()}


def _fresh_cache(base: Path, model_cache: Path) -> Path:
    """A cache folder that shares the converted model and its ONNX export but has no term vectors."""
    base.mkdir(parents=True)
    for p in model_cache.iterdir():
        if p.name != "terms":
            (base / p.name).symlink_to(p)
    return base


_BARE = """
import json, sys, time
from sentence_transformers import SentenceTransformer
texts = [json.loads(l)["text"] for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
m = SentenceTransformer(sys.argv[1], local_files_only=True)
t = time.perf_counter()
m.encode(texts, prompt="passage: ", batch_size=32, normalize_embeddings=True)
print(json.dumps({"encode_seconds": time.perf_counter() - t}))
"""

_LANGCHAIN = """
import json, sys, time
from langchain_community.vectorstores import FAISS
from langchain_core.documents import Document
from langchain_huggingface import HuggingFaceEmbeddings
docs = [Document(page_content=r["text"], metadata={"id": r["id"]})
        for r in (json.loads(l) for l in open(sys.argv[2], encoding="utf-8") if l.strip())]
emb = HuggingFaceEmbeddings(model_name=sys.argv[1], encode_kwargs={"normalize_embeddings": True, "batch_size": 32})
t = time.perf_counter()
FAISS.from_documents(docs, emb).save_local(sys.argv[3])
print(json.dumps({"encode_seconds": time.perf_counter() - t}))
"""


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _median(xs: list[float]) -> float:
    ys = sorted(xs)
    mid = len(ys) // 2
    return ys[mid] if len(ys) % 2 else (ys[mid - 1] + ys[mid]) / 2


def bench(
    corpus: Path, work: Path, rounds: int = 3, alone: bool = True, log: Path | None = None, table: bool = True
) -> dict[str, object]:
    """Interleaved rounds (rag, rag alone, bare, LangChain, then again): a noisy shared CPU slows
    all of them alike within a round, so ratios are taken per round and as ratios of medians."""
    from rag.config import Settings
    from rag.model.e5convert import bundled_model_dir

    settings = Settings.from_env()
    model = bundled_model_dir(settings.cache_dir)
    model_cache = Path(settings.cache_dir).expanduser()
    n = sum(1 for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip())
    rag = [sys.executable, "-c", "import sys; from rag.cli import main; sys.exit(main())"]
    out: dict[str, object] = {"corpus": str(corpus), "passages": n, "rounds": rounds, "term_table": table}
    runs: dict[str, list[dict[str, float]]] = {}
    report: dict[str, object] = {}
    kinds = ["rag", *(["rag_alone"] if alone else []), "bare_encode", "langchain"]
    for r in range(rounds):
        for kind in kinds:
            base = work / f"r{r}-{kind}"
            # a fresh term-vector cache each time ("cold": a first index of this corpus)
            cache = _fresh_cache(base / "cache", model_cache)
            env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_CACHE_DIR": str(cache),
                   "RAG_SENTENCE_POOLING": "0" if kind == "rag_alone" else "1",
                   "RAG_TERM_TABLE": "1" if table else "0"}
            if kind.startswith("rag"):
                run = _run([*rag, "index", "--corpus", str(corpus), "--index", str(base / "idx"), "-q"], env)
                report = json.loads(str(run.pop("stdout")))
                run["bytes_per_passage"] = round(_folder_bytes(base / "idx") / max(1, int(str(report["chunks"]))))
                run.update({k: report[k] for k in ("terms_embedded", "sentences_embedded")})
            else:
                script = _BARE if kind == "bare_encode" else _LANGCHAIN
                run = _run([sys.executable, "-c", script, str(model), str(corpus), str(base / "lc")], env)
                run.update(json.loads(str(run.pop("stdout"))))
                if kind == "langchain":
                    run["bytes_per_passage"] = round(_folder_bytes(base / "lc") / max(1, n))
            runs.setdefault(kind, []).append(run)
            shutil.rmtree(base, ignore_errors=True)
            if log is not None:  # each run as it ends: a long bench that is stopped still reports
                with log.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"round": r, "kind": kind, **run}) + "\n")
    med = {k: _median([r["seconds"] for r in v]) for k, v in runs.items()}
    out["median"] = {k: {"seconds": round(s, 2), "passages_per_s": round(n / s, 2),
                         "peak_rss_gb": max(r["peak_rss_gb"] for r in runs[k]),
                         "bytes_per_passage": runs[k][-1].get("bytes_per_passage")} for k, s in med.items()}
    pairs = [(a, b) for a in kinds if a.startswith("rag") for b in ("langchain", "bare_encode")]
    out["ratios_of_medians"] = {f"{a}/{b}": round(med[b] / med[a], 3) for a, b in pairs}
    cpu = {k: _median([r["cpu_seconds"] for r in v]) for k, v in runs.items()}
    out["cpu_ratios_of_medians"] = {f"{a}/{b}": round(cpu[b] / cpu[a], 3) for a, b in pairs}
    out["ratios_per_round"] = {
        f"{a}/{b}": [round(y["seconds"] / x["seconds"], 3) for x, y in zip(runs[a], runs[b], strict=True)]
        for a, b in pairs
    }
    out["runs"] = runs
    out["index"] = {"chunks": report.get("chunks"), "sentences_embedded": report.get("sentences_embedded"),
                    "terms_embedded": report.get("terms_embedded")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, help="a .jsonl corpus ({id,title,text} per line)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N records")
    ap.add_argument("--mix", type=int, default=0, help="build a Korean/English mix of N records instead")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    ap.add_argument("--no-alone", action="store_true", help="skip the RAG_SENTENCE_POOLING=0 run")
    ap.add_argument("--log", type=Path, default=None, help="append each run's result to this JSONL as it ends")
    ap.add_argument("--no-term-table", action="store_true",
                    help="rag runs embed every term (RAG_TERM_TABLE=0): no shipped common-word vectors")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rag-ingest-"))
    try:
        if args.mix:
            corpus = make_mix(args.mix, work / "mix.jsonl")
        elif args.corpus:
            corpus = args.corpus
            if args.limit:
                lines = [x for x in corpus.read_text(encoding="utf-8").splitlines() if x.strip()][: args.limit]
                corpus = work / "corpus.jsonl"
                corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            raise SystemExit("bench/ingest.py: give --corpus FILE.jsonl or --mix N")
        result = bench(corpus, work, args.rounds, not args.no_alone, args.log, not args.no_term_table)
        print(json.dumps(result, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
