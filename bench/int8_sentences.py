"""Experiment: sentence vectors from an int8 dynamically quantised ONNX model; prints JSON.

The model's ONNX export (``rag index`` makes it) is quantised with
``onnxruntime.quantization.quantize_dynamic`` (int8 weights, MatMul/Gemm). Only
the sentence pass would use it; passages and questions stay float32. Reported:

- speed: sentences/s of the float32 and the int8 model on the same sentences, in
  interleaved rounds (medians; the shared CPU's speed moves within minutes);
- fidelity: cosine of int8 against float32 sentence vectors;
- quality: a copy of an index (``--index``, sentences encoded alone) whose sentence
  vectors are replaced by the int8 model's, evaluated with ``rag eval`` on each
  ``--queries`` set, next to the same sets on the untouched index.

Usage: python bench/int8_sentences.py --index /tmp/ev/ko --queries Q1.jsonl [Q2.jsonl ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import Settings  # noqa: E402
from rag.model import onnxembed  # noqa: E402
from rag.model.embed import model_checksum  # noqa: E402
from rag.search.evaluate import evaluate_retrieval, load_queries  # noqa: E402
from rag.search.retrieve import Retriever  # noqa: E402
from rag.store.indexfiles import load_index  # noqa: E402
from rag.store.sentvec import SentenceVectors, sentence_texts  # noqa: E402


def quantised_copy(folder: Path, out: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    for p in folder.iterdir():
        if p.name not in (onnxembed.MODEL, onnxembed.WEIGHTS):
            shutil.copy(p, out / p.name)
    quantize_dynamic(str(folder / onnxembed.MODEL), str(out / onnxembed.MODEL), weight_type=QuantType.QInt8)
    return out


def rates(models: dict[str, Any], texts: list[str], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for k, m in models.items():
            t = time.perf_counter()
            m.encode_passages(texts)
            times[k].append(time.perf_counter() - t)
    return {k: round(len(texts) / float(np.median(v)), 2) for k, v in times.items()}


def recall(index_dir: Path, queries: Path, settings: Settings, embedder: Any) -> dict[str, float]:
    retriever = Retriever(load_index(index_dir, settings), embedder, settings)
    report = evaluate_retrieval(retriever, load_queries(queries))
    return {k: v for k, v in report["all"].items() if k in ("recall@1", "recall@5", "mrr@10")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--queries", type=Path, nargs="+", required=True)
    ap.add_argument("--speed-sentences", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    settings = Settings.from_env()
    checksum = model_checksum(settings)
    folder = onnxembed.folder_for(settings.cache_dir, checksum)
    meta = onnxembed.read_meta(folder, checksum)
    if meta is None:
        raise SystemExit(f"no ONNX export in {folder}: run `rag index` once")
    prompts = (settings.query_prompt, settings.passage_prompt)
    fp32 = onnxembed.load(folder, meta, prompts, settings.embed_batch_size)
    out: dict[str, Any] = {"index": str(args.index)}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        q8 = onnxembed.load(quantised_copy(folder, tmp / "onnx-int8"), {**meta, "probe": None}, prompts,
                            settings.embed_batch_size)
        index = load_index(args.index, settings)
        assert index.sentences is not None, "the index has no sentence vectors"
        per = [sentence_texts(c) for c in index.chunks]
        counts = np.diff(index.sentences.offsets)
        same = [len(p) == n for p, n in zip(per, counts, strict=True)]
        texts = [t for p, ok in zip(per, same, strict=True) if ok for t in p]
        out["sentences"] = len(texts)
        out["passages_resplit_differently"] = int(len(same) - sum(same))
        out["sentences_per_s"] = rates({"float32": fp32, "int8": q8}, texts[: args.speed_sentences], args.rounds)
        out["int8_speedup"] = round(out["sentences_per_s"]["int8"] / out["sentences_per_s"]["float32"], 3)
        new = q8.encode_passages(texts)
        old_rows = np.concatenate([np.arange(index.sentences.offsets[i], index.sentences.offsets[i + 1])
                                   for i, ok in enumerate(same) if ok])
        cos = np.sum(index.sentences.rows(old_rows) * new, axis=1)
        out["cosine_int8_vs_float32"] = {"mean": round(float(cos.mean()), 4), "min": round(float(cos.min()), 4)}
        vectors = index.sentences.rows(np.arange(index.sentences.offsets[-1]))
        vectors[old_rows] = new
        copy = tmp / "index"
        shutil.copytree(args.index, copy)
        SentenceVectors(vectors.astype(np.float16), index.sentences.offsets).save(copy)
        m = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
        m["files"] = {k: (copy / k).stat().st_size for k in m["files"] if (copy / k).exists()}
        (copy / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
        out["quality"] = {
            q.parent.name + "/" + q.name: {"float32": recall(args.index, q, settings, fp32),
                                            "int8_sentences": recall(copy, q, settings, fp32)}
            for q in args.queries
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
