"""Memory of Milvus Lite serving N passages, as JSON: for each N, a collection of N passage rows
(copies of an index folder's rows under new keys: real text, vectors, sentence vectors and BM25
sparse vectors) is written to a fresh ``.db``; a new process then opens it as ``rag serve`` does
(collections loaded), runs searches, and reports how much its resident memory grew.

    python bench/milvus_memory.py --index /tmp/i13-ko --out /tmp/i13-mem --sizes 2000 8000 32000

milvus-lite 3.x runs in the process that opens the ``.db`` (pure Python, no server process), so
the growth is the store's memory per replica for N passages. A Milvus server holds the same
data in its query nodes (see docs/scaling.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any


def _rss_mb() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def write(index_dir: str, db: str, n: int) -> dict[str, Any]:
    """A collection of ``n`` passages copied from the folder's rows into ``db``."""
    from rag.config import Settings
    from rag.store.indexfiles import load_index
    from rag.store.milvus import BATCH, _create, _meta_row, _passage_row, connect
    from rag.store.sparsebm25 import Counts
    from rag.text import tokens_batch

    settings = Settings.from_env()
    index = load_index(index_dir, settings)
    ms = replace(settings, store="milvus", milvus_uri=db)
    client = connect(ms)
    _create(client, "mem", index.vectors().shape[1], True)
    toks = tokens_batch([c.text for c in index.chunks])
    counts = Counts(len(toks), sum(len(t) for t in toks), sum(max(0, len(t) - 1) for t in toks))
    vecs = index.vectors()
    assert index.sentences is not None
    base = []
    for i, c in enumerate(index.chunks):
        meta = index.docs.get(c.doc_id, {})
        base.append(_passage_row(c, meta, vecs[i], index.sentences.of(i), toks[i], counts))
    t0 = time.perf_counter()
    rows = []
    for k in range(n):
        row = dict(base[k % len(base)])
        row["pk"] = f"{row['pk']}~{k // len(base)}"
        rows.append(row)
        if len(rows) == BATCH:
            client.insert("mem", rows)
            rows = []
    if rows:
        client.insert("mem", rows)
    manifest = {"counts": {"chunks": n}}
    client.upsert("mem_meta", [_meta_row("manifest", manifest)])
    client.close()
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(Path(db).resolve()))  # the child opens it next
    return {"passages": n, "write_s": round(time.perf_counter() - t0, 1),
            "db_bytes": sum(f.stat().st_size for f in Path(db).rglob("*") if f.is_file())}


def serve(db: str, queries: list[list[float]]) -> dict[str, Any]:
    """Open ``db`` as a server would, load the collections, search; the resident memory it took."""
    before = _rss_mb()
    from pymilvus import MilvusClient

    imported = _rss_mb()
    client = MilvusClient(uri=str(Path(db).resolve()))
    for name in ("mem", "mem_terms", "mem_meta"):
        client.load_collection(name)
    for q in queries:
        client.search("mem", data=[q], anns_field="dense", limit=50, output_fields=["pk"],
                      search_params={"metric_type": "IP"})
    after = _rss_mb()
    return {"rss_before_mb": round(before, 1), "rss_imported_mb": round(imported, 1),
            "rss_loaded_mb": round(after, 1), "milvus_mb": round(after - imported, 1)}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--index", required=True)
    p.add_argument("--out", required=True, help="folder for the .db files")
    p.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000])
    p.add_argument("--serve", default="", help=argparse.SUPPRESS)  # child mode: a .db to open
    a = p.parse_args()
    if a.serve:
        import numpy as np

        rng = np.random.default_rng(0)
        qs = rng.standard_normal((20, 384)).astype(np.float32)
        qs /= np.linalg.norm(qs, axis=1, keepdims=True)
        print(json.dumps(serve(a.serve, qs.tolist())))
        return 0
    out = []
    Path(a.out).mkdir(parents=True, exist_ok=True)
    for n in [0, *a.sizes]:
        db = str(Path(a.out) / f"mem{n}.db")
        row = write(a.index, db, n)
        child = subprocess.run([sys.executable, __file__, "--index", a.index, "--out", a.out, "--serve", db],
                               capture_output=True, text=True, check=True)
        row |= json.loads(child.stdout.strip().splitlines()[-1])
        print(json.dumps(row), file=sys.stderr, flush=True)
        out.append(row)
    base = out[0]["milvus_mb"]
    for prev, row in itertools.pairwise(out):
        row["kb_per_passage"] = round((row["milvus_mb"] - base) * 1024 / row["passages"], 2)
        # from the size before: the fixed costs cancel, this is what one more passage takes
        row["kb_per_added_passage"] = round((row["milvus_mb"] - prev["milvus_mb"]) * 1024
                                            / (row["passages"] - prev["passages"]), 2)
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
