"""The on-disk index folder: read it back validated, write it atomically.

A folder holds ``manifest.json``, ``vectors.faiss`` (FAISS id = row of the
chunk store), ``chunks.jsonl`` and ``chunk_rows.npz`` (the chunk store, read
lazily: ``chunkstore``), ``docs.jsonl`` (document
metadata), ``bm25/``, the sentence vectors (``sentences.npy``,
``sentence_offsets.npy``, see ``sentvec``) and the BM25 term vectors
(``terms.npy``, ``terms.json``, see ``crosslex``). :func:`write_files` writes
them into a temporary sibling and swaps it in, so an interrupted build leaves
the previous index usable; :func:`load_index` checks the manifest, the model,
the dimension and every file's size, and each problem names the file and the
fix. What goes into an index is decided by :mod:`rag.store.index`.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.cachefiles import fsync_dir, recover_swap, swap_in
from rag.config import Settings
from rag.errors import IndexStoreError
from rag.records import Chunk
from rag.store import chunkstore
from rag.store.chunkstore import ChunkStore
from rag.store.crosslex import TERMS_FILE, TermVectors
from rag.store.crosslex import VECTORS_FILE as TERM_VECTORS_FILE
from rag.store.indexlock import writer_active
from rag.store.lexical import Lexical
from rag.store.sentvec import OFFSETS_FILE, SCALES_FILE, VECTORS_FILE, SentenceVectors

# 2: sentence vectors pooled from the passage's forward pass (rag.model.pooled) or encoded alone
# 3: int8 sentence vectors (+ sentence_scales.npy), keyed BM25 pairs (bm25/pairs-keyed/), IVF-SQ8
#    above ivf_threshold; a /2 folder is still read as it is (float16 sentences, string pairs)
FORMAT = "rag-index/3"
READABLE_FORMATS = (FORMAT, "rag-index/2")
OLDER_FORMATS = ("rag-index/1",)
FILES = (
    "vectors.faiss", chunkstore.CHUNKS_FILE, chunkstore.ROWS_FILE, "docs.jsonl",
    VECTORS_FILE, SCALES_FILE, OFFSETS_FILE, TERM_VECTORS_FILE, TERMS_FILE,
)
REBUILD_HINT = "run `rag index --rebuild` to build it again"


@dataclass
class Index:
    """A loaded, validated index (read-only)."""

    path: Path
    manifest: dict[str, Any]
    chunks: ChunkStore  # a Sequence[Chunk] decoded row by row (memory-mapped file)
    docs: dict[str, dict[str, str]]
    faiss_index: Any
    lexical: Lexical
    sentences: SentenceVectors | None = None  # None in an index built before sentence vectors existed
    terms: TermVectors | None = None  # likewise for term vectors
    _vectors: np.ndarray | None = field(default=None, repr=False)

    @property
    def model_id(self) -> str:
        return str(self.manifest["embedding"]["model"])

    def vectors(self) -> Any:
        """All passage vectors (float32, row = chunk store row): a view of the FAISS index's own
        (memory-mapped) storage for ``Flat`` and ``HNSW..,Flat``, else rows decoded on demand
        (:class:`DecodedVectors`). Indexing with a row or an array of rows gives float32 arrays."""
        if self._vectors is None:
            self._vectors = flat_view(self.faiss_index)
        return self._vectors

    def dense_search(
        self, qvec: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows by inner product; ``allowed`` restricts to those row ids."""
        faiss: Any = importlib.import_module("faiss")  # untyped SWIG module

        n = self.faiss_index.ntotal
        k = min(k, n if allowed is None else len(allowed))
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        q = np.ascontiguousarray(qvec.reshape(1, -1), dtype=np.float32)
        if allowed is None:
            scores, ids = self.faiss_index.search(q, k)
        else:
            sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            factory = self.manifest["faiss"]["factory"]
            params = (
                faiss.SearchParametersHNSW(sel=sel, efSearch=_ef(self.manifest))
                if factory.startswith("HNSW")
                else faiss.SearchParametersIVF(sel=sel, nprobe=_nprobe(self.manifest))
                if factory.startswith("IVF")
                else faiss.SearchParameters(sel=sel)
            )
            scores, ids = self.faiss_index.search(q, k, params=params)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]


def _ef(manifest: dict[str, Any]) -> int:
    return int(manifest["faiss"].get("ef_search", 128))


def _nprobe(manifest: dict[str, Any]) -> int:
    return int(manifest["faiss"].get("nprobe", 32))


class DecodedVectors:
    """Passage vectors of an index that stores them compressed (IVF-SQ8), decoded per request:
    a million float32 vectors are never held at once."""

    def __init__(self, fx: Any) -> None:
        self._fx = fx
        self.shape = (int(fx.ntotal), int(fx.d))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> np.ndarray:
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(self.shape[0]))
        ids = np.asarray(rows, dtype=np.int64)
        out = self._fx.reconstruct_batch(ids.reshape(-1)) if ids.size else np.zeros((0, self.shape[1]), np.float32)
        return np.asarray(out, dtype=np.float32).reshape(*ids.shape, self.shape[1])


def flat_view(fx: Any) -> Any:
    """The vectors of a FAISS index: a zero-copy array over a flat storage, else :class:`DecodedVectors`."""
    import faiss

    n, d = int(fx.ntotal), int(fx.d)
    storage = faiss.downcast_index(fx.storage) if hasattr(fx, "storage") else fx
    if n == 0:
        return np.zeros((0, d), np.float32)
    if isinstance(storage, faiss.IndexFlat):
        return faiss.rev_swig_ptr(storage.get_xb(), n * d).reshape(n, d)
    return DecodedVectors(fx)


# ----------------------------------------------------------------- loading


def load_index(index_dir: str | Path, settings: Settings | None = None) -> Index:
    """Load and validate an index folder; every problem names the file and the fix."""
    path = Path(index_dir)
    recover_swap(path, writer_active)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise IndexStoreError(f"no index at {path} ({manifest_path} is missing): run `rag index` to build it")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexStoreError(f"{manifest_path} is damaged ({e}): {REBUILD_HINT}") from None
    if manifest.get("format") in OLDER_FORMATS:
        raise IndexStoreError(
            f"{manifest_path}: the index was built by an older version of rag (format {manifest['format']!r}, "
            f"this version reads {FORMAT!r}): run `rag index --rebuild` to build it again in the new format; "
            "the old index stays in place and usable by the old version until then"
        )
    if manifest.get("format") not in READABLE_FORMATS:
        raise IndexStoreError(
            f"{manifest_path}: unknown index format {manifest.get('format')!r} (this version reads {FORMAT!r}): "
            + REBUILD_HINT
        )
    if settings is not None and manifest["embedding"]["model"] != settings.embed_model:
        raise IndexStoreError(
            f"{manifest_path}: the index was built with embedding model {manifest['embedding']['model']!r} "
            f"but {settings.embed_model!r} is configured (RAG_EMBED_MODEL): {REBUILD_HINT}, "
            "or set RAG_EMBED_MODEL back"
        )
    for name, size in manifest.get("files", {}).items():
        f = path / name
        if not f.is_file():
            raise IndexStoreError(f"{f} is missing: {REBUILD_HINT}")
        if f.stat().st_size != size:
            raise IndexStoreError(
                f"{f} is truncated or damaged ({f.stat().st_size} bytes, expected {size}): {REBUILD_HINT}"
            )
    import faiss

    try:  # vectors of Flat and HNSW indexes stay in the page cache (memory-mapped), not copied
        fx = faiss.read_index(str(path / "vectors.faiss"), faiss.IO_FLAG_MMAP_IFC)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else "unreadable"
        raise IndexStoreError(f"{path / 'vectors.faiss'} cannot be read ({first}): {REBUILD_HINT}") from None
    dim = int(manifest["embedding"]["dim"])
    if fx.d != dim:
        raise IndexStoreError(f"{path / 'vectors.faiss'} has dimension {fx.d}, manifest says {dim}: {REBUILD_HINT}")
    if hasattr(fx, "hnsw"):
        fx.hnsw.efSearch = _ef(manifest)
    if manifest["faiss"]["factory"].startswith("IVF"):
        ivf = faiss.extract_index_ivf(fx)
        ivf.nprobe = _nprobe(manifest)
        ivf.make_direct_map()  # row -> list position, for decoding a passage's vector
    try:
        chunks = ChunkStore.open(path)
    except (OSError, ValueError, KeyError) as e:
        raise IndexStoreError(f"{path / chunkstore.CHUNKS_FILE} is damaged ({e}): {REBUILD_HINT}") from None
    if len(chunks) != fx.ntotal or len(chunks) != manifest["counts"]["chunks"]:
        raise IndexStoreError(
            f"{path / 'chunks.jsonl'} holds {len(chunks)} passages but vectors.faiss holds {fx.ntotal}: {REBUILD_HINT}"
        )
    docs = {r["doc_id"]: r for r in _read_jsonl(path / "docs.jsonl")}
    try:
        lexical = Lexical.load(path / "bm25", len(chunks))
    except Exception as e:  # bm25s raises a variety of I/O and JSON errors
        raise IndexStoreError(f"{path / 'bm25'} cannot be read ({e}): {REBUILD_HINT}") from None
    if settings is not None and hasattr(fx, "hnsw"):
        fx.hnsw.efSearch = settings.hnsw_ef_search
    sentences = None
    if (path / OFFSETS_FILE).exists():
        try:
            sentences = SentenceVectors.load(path, len(chunks), dim)
        except (OSError, ValueError) as e:
            raise IndexStoreError(f"sentence vectors in {path} cannot be used ({e}): {REBUILD_HINT}") from None
    terms = None
    if (path / TERMS_FILE).exists():
        try:
            terms = TermVectors.load(path, dim)
        except (OSError, ValueError) as e:
            raise IndexStoreError(f"term vectors in {path} cannot be used ({e}): {REBUILD_HINT}") from None
    return Index(path, manifest, chunks, docs, fx, lexical, sentences, terms)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError) as e:
        raise IndexStoreError(f"{path} is damaged ({e}): {REBUILD_HINT}") from None


# ----------------------------------------------------------------- writing


def write_files(
    path: Path, manifest: dict[str, Any], fx: Any, chunks: list[Chunk], metas: list[dict[str, str]], lexical: Lexical,
    sentences: SentenceVectors, terms: TermVectors,
) -> None:
    """Write every file of an index into a temporary sibling of ``path``, fsync, then swap it
    in; on any error (Ctrl-C included) the temporary folder goes and ``path`` is untouched."""
    import faiss

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        faiss.write_index(fx, str(tmp / "vectors.faiss"))
        chunkstore.write(tmp, chunks)
        with (tmp / "docs.jsonl").open("w", encoding="utf-8") as fh:
            for m in metas:
                fh.write(json.dumps(m, ensure_ascii=False) + "\n")
        (tmp / "bm25").mkdir()
        lexical.save(tmp / "bm25")
        sentences.save(tmp)
        terms.save(tmp)
        manifest["files"] = {name: (tmp / name).stat().st_size for name in FILES}
        (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        _fsync_tree(tmp)
        swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_tree(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with p.open("rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(folder)
