"""The Milvus store (``RAG_STORE=milvus``): an index as Milvus collections, written incrementally.

``RAG_MILVUS_URI`` is a ``.db`` path (Milvus Lite, embedded) or a server URI
(``http://host:19530``, token from ``RAG_MILVUS_TOKEN``). An index named N
(``RAG_MILVUS_COLLECTION``, or the index folder's name) is three collections:

- ``N``: one row per passage: text, doc id, offsets, language, title, outlet,
  day (filterable fields), the document's metadata (JSON), the dense vector,
  the sentence vectors (float16, base64) and the BM25 sparse vector
  (:mod:`rag.store.sparsebm25`, Kiwi-tokenised by the product itself);
- ``N_terms``: one row per BM25 term and pair: its document frequency, and
  for words the term vector of :mod:`rag.store.crosslex` (searched to map a word to
  the other script);
- ``N_meta``: the manifest (format, model, dimension, parameters, counts) and
  one row per document (sha256, source), checked and diffed on every run.

``rag index`` upserts the passages of new and changed articles and deletes
those of removed ones; vectors of unchanged articles are never recomputed.
Search lives in :mod:`rag.search.milvus`. Passage vectors are the same as the
index folder's (the same embedder functions); BM25 weights of passages written
earlier keep the average length of their time (``--rebuild`` refreshes them).
"""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.errors import IndexStoreError, RagError
from rag.records import Chunk
from rag.store.base import Store
from rag.store.index import BuildReport, Progress, _chunk_all, _params, _source_file, term_cache
from rag.store.sparsebm25 import Counts, passage_keys, passage_vector
from rag.text import has_hangul, tokens_batch

MILVUS_FORMAT = "rag-index/2+milvus/1"  # the folder format it followed (rag-index/3 changed only the folder)
BATCH = 256  # rows per insert / query call
_VARCHAR = 65_535
_NAME_RE = re.compile(r"[^A-Za-z0-9_]")
REBUILD_HINT = "run `rag index --rebuild` to build it again"


def collection_name(settings: Settings, index_dir: str | Path | None) -> str:
    """``RAG_MILVUS_COLLECTION``, or the index folder's name made a valid collection name."""
    name = settings.milvus_collection or Path(index_dir or settings.index_dir).name or "index"
    name = _NAME_RE.sub("_", name)
    return name if name[0].isalpha() or name[0] == "_" else "i_" + name


def connect(settings: Settings) -> Any:
    """A ``MilvusClient`` for ``RAG_MILVUS_URI``; errors name the variable and the fix."""
    if not settings.milvus_uri:
        raise RagError("RAG_STORE=milvus needs RAG_MILVUS_URI: a .db file path (Milvus Lite) or http://host:19530")
    from pymilvus import MilvusClient

    uri = settings.milvus_uri
    if "://" not in uri:
        Path(uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        uri = str(Path(uri).expanduser().resolve())
    try:
        return MilvusClient(uri=uri, token=settings.milvus_token or "")
    except Exception as e:  # pymilvus raises MilvusException and connection errors of its own
        raise RagError(f"cannot open Milvus at RAG_MILVUS_URI={settings.milvus_uri!r} ({e})") from None


def is_lite(settings: Settings) -> bool:
    return "://" not in settings.milvus_uri


def encode_sentences(vectors: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vectors, dtype=np.float16).tobytes()).decode("ascii")


def decode_sentences(blob: str, dim: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(blob), dtype=np.float16).reshape(-1, dim)


def iterate(client: Any, name: str, filter: str, fields: list[str]) -> Iterable[dict[str, Any]]:
    """Every row of ``name`` that matches ``filter`` (page by page)."""
    import logging

    # Milvus Lite's embedded server logs an error for a timestamp call it does not implement; the
    # iterator then uses the client's clock, which is right for one embedded server
    quiet = [logging.getLogger(n) for n in ("grpc._server", "pymilvus")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.CRITICAL)
    try:
        it = client.query_iterator(name, batch_size=BATCH * 4, filter=filter, output_fields=fields)
    finally:
        for q, lv in zip(quiet, levels, strict=True):
            q.setLevel(lv)
    while True:
        page = it.next()
        if not page:
            it.close()
            return
        yield from page


def _create(client: Any, name: str, dim: int, lite: bool) -> None:
    from pymilvus import DataType, MilvusClient

    dense = "FLAT" if lite else "AUTOINDEX"
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=1024)
    for f in ("doc_id", "title", "outlet", "day", "lang", "text", "doc", "sentences"):
        s.add_field(f, DataType.VARCHAR, max_length=_VARCHAR)
    for f in ("span_start", "span_end", "n_terms", "n_pairs"):
        s.add_field(f, DataType.INT64)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("bm25", DataType.SPARSE_FLOAT_VECTOR)
    ip = client.prepare_index_params()
    ip.add_index("dense", index_type=dense, metric_type="IP")
    ip.add_index("bm25", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection(name, schema=s, index_params=ip, consistency_level="Strong")

    t = MilvusClient.create_schema(auto_id=False)
    t.add_field("pk", DataType.INT64, is_primary=True)
    t.add_field("df", DataType.INT64)
    t.add_field("hangul", DataType.BOOL)
    t.add_field("has_vec", DataType.BOOL)  # a word with a crosslex vector (pairs and numbers have none)
    t.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    ip = client.prepare_index_params()
    ip.add_index("vector", index_type=dense, metric_type="IP")
    client.create_collection(name + "_terms", schema=t, index_params=ip, consistency_level="Strong")

    m = MilvusClient.create_schema(auto_id=False)
    m.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=1024)
    m.add_field("value", DataType.VARCHAR, max_length=_VARCHAR)
    m.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
    ip = client.prepare_index_params()
    ip.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name + "_meta", schema=m, index_params=ip, consistency_level="Strong")


def read_manifest(client: Any, name: str) -> dict[str, Any] | None:
    """The manifest stored with collection ``name`` (None when there is none); loads the three
    collections, which a reopened Milvus holds released."""
    if not client.has_collection(name + "_meta"):
        return None
    for n in (name, name + "_terms", name + "_meta"):
        client.load_collection(n)
    rows = client.query(name + "_meta", filter='pk == "manifest"', output_fields=["value"])
    return json.loads(rows[0]["value"]) if rows else None


def check_manifest(manifest: dict[str, Any], settings: Settings, where: str) -> None:
    """The checks ``load_index`` makes on a folder, on the manifest stored with the collection."""
    if manifest.get("format") != MILVUS_FORMAT:
        raise IndexStoreError(
            f"{where}: unknown index format {manifest.get('format')!r} (this version reads {MILVUS_FORMAT!r}): "
            + REBUILD_HINT
        )
    model = manifest["embedding"]["model"]
    if model != settings.embed_model:
        raise IndexStoreError(
            f"{where}: the index was built with embedding model {model!r} but {settings.embed_model!r} is "
            f"configured (RAG_EMBED_MODEL): {REBUILD_HINT}, or set RAG_EMBED_MODEL back"
        )


def _meta_row(pk: str, value: Any) -> dict[str, Any]:
    return {"pk": pk, "value": json.dumps(value, ensure_ascii=False), "v": [0.0, 0.0]}


def _quoted(values: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def _day(meta: dict[str, str]) -> str:
    day = meta.get("published", "")[:10]
    return day if re.fullmatch(r"\d{4}-\d{2}-\d{2}", day) else ""


class MilvusStore(Store):
    """Builds into and opens a Milvus collection."""

    name = "milvus"

    def build(
        self, corpus: Sequence[str | Path], index_dir: str | Path, rebuild: bool = False, progress: bool = True,
        embedder: Any = None,
    ) -> BuildReport:
        from rag.ingest.corpus import load_corpus

        t0 = time.perf_counter()
        settings = self.settings
        client = connect(settings)
        name = collection_name(settings, index_dir)
        where = f"Milvus collection {name!r} at {settings.milvus_uri}"
        if rebuild:
            for n in (name, name + "_terms", name + "_meta"):
                if client.has_collection(n):
                    client.drop_collection(n)
        manifest = read_manifest(client, name)
        if manifest is not None:
            check_manifest(manifest, settings, where)
        loaded = load_corpus(corpus)
        from rag.ingest.dedup import collapse

        # one copy per syndicated story (rag.ingest.dedup)
        docs = list(collapse(loaded.documents, cache=Path(settings.cache_dir) / "minhash.sqlite").documents)
        old_docs = (
            {r["pk"][4:]: json.loads(r["value"]) for r in iterate(client, name + "_meta", 'pk like "doc:%"',
                                                                   ["pk", "value"])}
            if manifest is not None else {}
        )
        bad_files = {_source_file(p.path) for p in loaded.problems}
        seen = {d.doc_id for d in loaded.documents}  # read now, copies left out by de-duplication included
        kept = sorted(
            d for d, m in old_docs.items() if d not in seen and _source_file(m.get("source", "")) in bad_files
        )
        new_shas = {d.doc_id: d.sha256 for d in docs}
        added = tuple(sorted(k for k in new_shas if k not in old_docs))
        updated = tuple(sorted(k for k in new_shas if k in old_docs and old_docs[k].get("sha256") != new_shas[k]))
        removed = tuple(sorted(k for k in old_docs if k not in new_shas and k not in kept))
        params = _params(settings)
        n_chunks = int(manifest["counts"]["chunks"]) if manifest else 0
        if manifest is not None and not (added or updated or removed) and manifest.get("params") == params:
            return BuildReport(where, len(old_docs), n_chunks, 0, n_chunks, kept=tuple(kept),
                               problems=loaded.problems, up_to_date=True, seconds=time.perf_counter() - t0,
                               factory="milvus")
        if manifest is not None and manifest.get("params") != params:
            raise IndexStoreError(f"{where} was built with other parameters ({manifest.get('params')}): "
                                  + REBUILD_HINT)
        if embedder is None:
            from rag.model.embed import load_embedder

            embedder = load_embedder(settings)
        if manifest is None:
            _create(client, name, embedder.dim, is_lite(settings))
        elif int(manifest["embedding"]["dim"]) != embedder.dim:
            raise IndexStoreError(f"{where} has dimension {manifest['embedding']['dim']}, the model {embedder.dim}: "
                                  + REBUILD_HINT)
        change = set(added) | set(updated)
        chunks, metas, spans = _chunk_all([d for d in docs if d.doc_id in change], settings, embedder,
                                          Progress(False))
        counts = Counts(**manifest["bm25"]) if manifest else Counts()
        gone = set(updated) | set(removed)
        counts, df_delta = _forget(client, name, gone, counts)
        toks = tokens_batch([c.text for c in chunks])
        counts = Counts(counts.passages + len(chunks), counts.terms + sum(len(t) for t in toks),
                        counts.pairs + sum(max(0, len(t) - 1) for t in toks))
        for t in toks:
            singles, pairs = passage_keys(t)
            df_delta.update(singles | pairs)
        from rag.store.sentvec import assemble, embed_chunks  # the same per-batch work as rag.store.index (issue 12)

        vectors, parts = embed_chunks(embedder, chunks, spans, None, settings.sentence_pooling)
        embedded, n_sent = len(chunks), sum(len(p) for p in parts)
        sentences = assemble(parts, embedder.dim)
        cache = term_cache(settings, embedder)
        n_terms = _write_terms(client, name, df_delta, [w for t in toks for w in t], embedder, progress,
                               cache, settings.term_table)
        meta_of = {m["doc_id"]: m for m in metas}
        rows = [
            _passage_row(c, meta_of[c.doc_id], vectors[i], sentences.of(i), t, counts)
            for i, (c, t) in enumerate(zip(chunks, toks, strict=True))
        ]
        for i in range(0, len(rows), BATCH):
            client.insert(name, rows[i : i + BATCH])
        if removed:
            client.delete(name + "_meta", filter=f"pk in {_quoted('doc:' + d for d in removed)}")
        doc_rows = [_meta_row("doc:" + m["doc_id"], m) for m in metas]
        for i in range(0, len(doc_rows), BATCH):
            client.upsert(name + "_meta", doc_rows[i : i + BATCH])
        n_docs = len(old_docs) + len(added) - len(removed)
        client.upsert(name + "_meta", [_meta_row("manifest", _manifest(settings, embedder, params, counts, n_docs))])
        return BuildReport(
            where, n_docs, counts.passages, embedded, counts.passages - embedded, added=added, updated=updated,
            removed=removed, kept=tuple(kept), problems=loaded.problems, seconds=time.perf_counter() - t0,
            factory="milvus", sentences_embedded=n_sent, terms_embedded=n_terms,
        )


def _forget(client: Any, name: str, doc_ids: set[str], counts: Counts) -> tuple[Counts, Counter[int]]:
    """Delete the passages of ``doc_ids``; returns the counts without them and the document
    frequencies to take away (negative)."""
    delta: Counter[int] = Counter()
    if not doc_ids:
        return counts, delta
    expr = f"doc_id in {_quoted(sorted(doc_ids))}"
    n = terms = pairs = 0
    for r in iterate(client, name, expr, ["bm25", "n_terms", "n_pairs"]):
        n, terms, pairs = n + 1, terms + int(r["n_terms"]), pairs + int(r["n_pairs"])
        delta.subtract({int(k): 1 for k in _sparse_keys(r["bm25"])})
    client.delete(name, filter=expr)
    return Counts(counts.passages - n, counts.terms - terms, counts.pairs - pairs), delta


def _sparse_keys(v: Any) -> list[int]:
    if isinstance(v, dict):
        return [int(k) for k in v]
    return [int(k) for k in getattr(v, "indices", [])]  # scipy-like rows


def _passage_row(
    c: Chunk, meta: dict[str, str], vector: np.ndarray, sentences: np.ndarray, terms: list[str], counts: Counts
) -> dict[str, Any]:
    sparse = passage_vector(terms, counts) or {0: 0.0}  # Milvus wants at least one entry
    return {
        "pk": c.chunk_id, "doc_id": c.doc_id, "title": meta.get("title", ""),
        "outlet": meta.get("outlet", "").casefold(),
        "day": _day(meta), "lang": c.lang or "", "text": c.text, "doc": json.dumps(meta, ensure_ascii=False),
        "sentences": encode_sentences(sentences), "span_start": c.start, "span_end": c.end,
        "n_terms": len(terms), "n_pairs": max(0, len(terms) - 1),
        "dense": np.asarray(vector, dtype=np.float32).tolist(), "bm25": sparse,
    }


def _write_terms(
    client: Any, name: str, delta: Counter[int], words: list[str], embedder: Any, progress: bool,
    cache: Path | None, table: bool,
) -> int:
    """Apply document-frequency changes to ``N_terms``; new words get their crosslex vector, from the
    term cache folder ``cache`` and the shipped table of common words (``table``) where they hold it,
    as for the FAISS folder (``rag.store.crosslex.plan``). Returns how many words went through the model."""
    from rag.store.crosslex import build as build_terms
    from rag.store.sparsebm25 import term_id

    ids = sorted(k for k, d in delta.items() if d)
    old: dict[int, dict[str, Any]] = {}
    for i in range(0, len(ids), BATCH * 4):
        part = ids[i : i + BATCH * 4]
        for r in client.query(name + "_terms", filter=f"pk in {part}", output_fields=["df", "hangul", "has_vec",
                                                                                        "vector"]):
            old[int(r["pk"])] = r
    word_of = {term_id(w): w for w in set(words)}
    new_words = sorted({word_of[k] for k in ids if k in word_of and k not in old})
    tv, n_embedded = build_terms(new_words, None, embedder, progress, cache, table)
    vec_of = {term_id(t): tv.vectors[i].astype(np.float16).astype(np.float32) for i, t in enumerate(tv.terms)}
    zero = [0.0] * embedder.dim
    upserts, deletes = [], []
    for k in ids:
        prev = old.get(k)
        df = (int(prev["df"]) if prev else 0) + delta[k]
        if df <= 0:
            if prev:
                deletes.append(k)
            continue
        if prev:
            row = {"pk": k, "df": df, "hangul": bool(prev["hangul"]), "has_vec": bool(prev["has_vec"]),
                   "vector": [float(x) for x in prev["vector"]]}
        else:
            vec = vec_of.get(k)
            row = {"pk": k, "df": df, "hangul": has_hangul(word_of.get(k, "")), "has_vec": vec is not None,
                   "vector": vec.tolist() if vec is not None else zero}
        upserts.append(row)
    for i in range(0, len(upserts), BATCH):
        client.upsert(name + "_terms", upserts[i : i + BATCH])
    if deletes:
        client.delete(name + "_terms", filter=f"pk in {deletes}")
    if progress:
        print(f"rag: {len(upserts)} BM25 terms written, {len(deletes)} gone", file=sys.stderr)
    return n_embedded


def _manifest(settings: Settings, embedder: Any, params: dict[str, Any], counts: Counts, n_docs: int) -> dict[str, Any]:
    from rag.store.index import _versions

    return {
        "format": MILVUS_FORMAT,
        "embedding": {"model": embedder.model_id, "checksum": embedder.checksum, "dim": embedder.dim,
                      "prompts": {"query": settings.query_prompt, "passage": settings.passage_prompt},
                      "normalized": True},
        "params": params,
        "chunking": {"max_tokens": settings.chunk_tokens, "overlap_sentences": settings.chunk_overlap},
        "faiss": {"factory": "milvus", "metric": "inner_product"},
        "bm25": {"passages": counts.passages, "terms": counts.terms, "pairs": counts.pairs},
        "counts": {"documents": n_docs, "chunks": counts.passages},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": _versions(),
    }
