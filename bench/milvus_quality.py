"""Retrieval quality through the Milvus store next to the FAISS folder, same questions, as JSON.

The Milvus collection is built from the folder's corpus with the folder's own vectors (passage,
sentence and term vectors are looked up by text; anything the folder lacks goes through the
model), so the comparison measures the store and its search, not two embedding runs.

    python bench/milvus_quality.py --index /tmp/i13q/idx-faiss-copy \
        --corpus ../shared/eval/belebele/ko/corpus.jsonl --milvus-uri /tmp/i13q/quality.db \
        ../shared/eval/belebele/ko/queries.jsonl ../shared/eval/belebele/en2ko/queries.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np


class FolderVectors:
    """The real embedder, answering from the folder's stored vectors where it has the text."""

    def __init__(self, inner: Any, index: Any) -> None:
        from rag.store.sentvec import sentence_texts

        self.inner = inner
        self.missed = 0
        vecs = index.vectors()
        self.passages = {c.text: vecs[i] for i, c in enumerate(index.chunks)}
        self.sentences: dict[str, np.ndarray] = {}
        for i, c in enumerate(index.chunks):
            stored = index.sentences.of(i)
            texts = sentence_texts(c)
            if len(texts) == len(stored):
                self.sentences.update(zip(texts, np.asarray(stored, np.float32), strict=True))
        self.terms = {t: index.terms.vectors[i] for i, t in enumerate(index.terms.terms)}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _look(self, known: list[dict[str, np.ndarray]], fn: Any, texts: list[str], progress: Any) -> np.ndarray:
        out = np.zeros((len(texts), self.inner.dim), np.float32)
        todo = []
        for i, t in enumerate(texts):
            v = next((k[t] for k in known if t in k), None)
            if v is None:
                todo.append(i)
            else:
                out[i] = v
        if todo:
            self.missed += len(todo)
            out[np.asarray(todo)] = fn([texts[i] for i in todo])
        if progress is not None:
            progress(len(texts))
        return out

    def encode_passages(self, texts: list[str], progress: Any = None) -> np.ndarray:
        return self._look([self.passages, self.sentences], self.inner.encode_passages, texts, progress)

    def encode_queries(self, texts: list[str], progress: Any = None) -> np.ndarray:
        return self._look([self.terms], self.inner.encode_queries, texts, progress)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("queries", nargs="+")
    p.add_argument("--index", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--milvus-uri", required=True)
    p.add_argument("--collection", default="quality")
    p.add_argument("--limit", type=int, default=0, help="first N questions of each set (0 = all)")
    a = p.parse_args()
    from rag.config import Settings
    from rag.search.evaluate import evaluate_retrieval, load_queries
    from rag.search.retrieve import Retriever
    from rag.store.index import build_index

    settings = Settings.from_env()
    folder = Retriever.open(settings, a.index)
    ms = replace(settings, store="milvus", milvus_uri=a.milvus_uri, milvus_collection=a.collection)
    # the folder's question embedder (ONNX, no torch) has the embedder's interface: memory stays low
    emb = FolderVectors(folder.embedder, folder.index)
    t0 = time.perf_counter()
    report = build_index(ms, [a.corpus], a.collection, progress=False, embedder=emb)
    out: dict[str, Any] = {"build": {"passages": report.chunks, "seconds": round(time.perf_counter() - t0, 1),
                                     "embedded_anew": emb.missed}}
    milvus = Retriever.open(ms, a.collection)
    for path in a.queries:
        qs = load_queries(path)[: a.limit or None]
        name = Path(path).parent.name
        row: dict[str, Any] = {"questions": len(qs)}
        for label, r in (("faiss", folder), ("milvus", milvus)):
            t0 = time.perf_counter()
            m = evaluate_retrieval(r, qs)
            row[label] = {k: round(v, 4) for k, v in m["all"].items()} | {"seconds": round(time.perf_counter() - t0, 1)}
            print(json.dumps({name: {label: row[label]}}), file=sys.stderr, flush=True)  # progress
        out[name] = row
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
