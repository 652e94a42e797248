"""The chunk store of a loaded index: passages read from ``chunks.jsonl`` on demand.

A million passages as ``Chunk`` objects take gigabytes; a question needs a few
dozen of them. :class:`ChunkStore` memory-maps ``chunks.jsonl`` and decodes a row
only when it is asked for, by its byte offset. What every question needs of
*all* rows (language, document, chunk id lookups, filters) is held in small
arrays (``chunk_rows.npz``, about 13 bytes per passage), so nothing scans or
decodes the store per question. An index written before ``chunk_rows.npz``
existed gets the arrays computed once at load (one pass over the file).
A store built in memory (tests, a build that searches what it wrote) wraps a
list the same way. It knows nothing of vectors, BM25 or documents' metadata.
"""

from __future__ import annotations

import json
import mmap
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from rag.records import Chunk

CHUNKS_FILE = "chunks.jsonl"  # one JSON object per row: chunk_id, doc_id, start, end, lang, text
ROWS_FILE = "chunk_rows.npz"  # byte offsets, document and language codes, chunk id hashes


def chunk_json(c: Chunk) -> str:
    """One row of ``chunks.jsonl``."""
    row = {"chunk_id": c.chunk_id, "doc_id": c.doc_id, "start": c.start, "end": c.end, "lang": c.lang, "text": c.text}
    return json.dumps(row, ensure_ascii=False)


def chunk_from_json(r: dict[str, Any]) -> Chunk:
    return Chunk(r["chunk_id"], r["doc_id"], r["text"], int(r["start"]), int(r["end"]), r.get("lang", "") or "")


def _id_hash(chunk_id: str) -> int:
    return zlib.crc32(chunk_id.encode("utf-8"))


class RowArrays:
    """Per-row facts of the store: byte offsets (``n + 1``), document and language codes, id hashes."""

    def __init__(self, offsets: np.ndarray, doc: np.ndarray, lang: np.ndarray, id_hash: np.ndarray,
                 doc_ids: np.ndarray, langs: np.ndarray) -> None:
        self.offsets = np.asarray(offsets, np.int64)
        self.doc = np.asarray(doc, np.int32)
        self.lang = np.asarray(lang, np.uint8)
        self.id_hash = np.asarray(id_hash, np.uint32)
        self.doc_ids = np.asarray(doc_ids, dtype=str)  # distinct doc ids, first appearance order
        self.langs = np.asarray(langs, dtype=str)  # distinct language codes ("" included)

    @classmethod
    def of(cls, chunks: Iterable[Chunk], sizes: Iterable[int] | None = None) -> RowArrays:
        """The arrays of ``chunks`` in row order; ``sizes``: each row's bytes in the file (with its newline)."""
        doc_codes: dict[str, int] = {}
        lang_codes: dict[str, int] = {}
        doc, lang, hashes = [], [], []
        for c in chunks:
            doc.append(doc_codes.setdefault(c.doc_id, len(doc_codes)))
            lang.append(lang_codes.setdefault(c.lang or "", len(lang_codes)))
            hashes.append(_id_hash(c.chunk_id))
        if len(lang_codes) > 255:
            raise ValueError(f"{len(lang_codes)} language codes in one index (at most 255)")
        offsets = np.zeros(len(doc) + 1, np.int64)
        if sizes is not None:
            np.cumsum(np.fromiter(sizes, np.int64, count=len(doc)), out=offsets[1:])
        return cls(offsets, np.array(doc, np.int32), np.array(lang, np.uint8), np.array(hashes, np.uint32),
                   np.array(list(doc_codes), dtype=str), np.array(list(lang_codes), dtype=str))

    def save(self, path: Path) -> None:
        with path.open("wb") as fh:
            np.savez(fh, offsets=self.offsets, doc=self.doc, lang=self.lang, id_hash=self.id_hash,
                     doc_ids=self.doc_ids, langs=self.langs)

    @classmethod
    def load(cls, path: Path) -> RowArrays:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["offsets"], z["doc"], z["lang"], z["id_hash"], z["doc_ids"], z["langs"])


class ChunkStore(Sequence[Chunk]):
    """Row ``i`` is passage ``i`` (FAISS id, BM25 row); rows are decoded when read, never all kept."""

    def __init__(self, rows: RowArrays, read: Any, path: Path | None = None) -> None:
        self._rows = rows
        self._read = read  # row -> Chunk
        self.path = path
        self._lang_array: np.ndarray | None = None
        self._by_doc: tuple[np.ndarray, np.ndarray] | None = None
        self._by_hash: np.ndarray | None = None

    # ------------------------------------------------------------ making
    @classmethod
    def of(cls, chunks: Sequence[Chunk]) -> ChunkStore:
        """A store over chunks held in memory."""
        kept = list(chunks)
        return cls(RowArrays.of(kept), kept.__getitem__)

    @classmethod
    def open(cls, folder: Path) -> ChunkStore:
        """The store of an index folder, ``chunks.jsonl`` memory-mapped. Raises ValueError naming the
        file when the row arrays do not fit it."""
        path = folder / CHUNKS_FILE
        size = path.stat().st_size
        rows = RowArrays.load(folder / ROWS_FILE) if (folder / ROWS_FILE).exists() else _scan(path)
        if int(rows.offsets[-1]) != size:
            raise ValueError(f"{folder / ROWS_FILE} does not fit {path} ({int(rows.offsets[-1])} != {size} bytes)")
        if size == 0:
            return cls(rows, lambda row: None, path)
        with path.open("rb") as fh:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        if hasattr(mm, "madvise"):  # rows are read one by one, far apart: no read-ahead into memory
            mm.madvise(mmap.MADV_RANDOM)
        off = rows.offsets

        def read(row: int) -> Chunk:
            return chunk_from_json(json.loads(mm[int(off[row]) : int(off[row + 1])]))

        return cls(rows, read, path)

    # ------------------------------------------------------------ Sequence
    def __len__(self) -> int:
        return len(self._rows.doc)

    @overload
    def __getitem__(self, row: int) -> Chunk: ...

    @overload
    def __getitem__(self, row: slice) -> list[Chunk]: ...

    def __getitem__(self, row: int | slice) -> Chunk | list[Chunk]:
        if isinstance(row, slice):
            return [self._read(i) for i in range(*row.indices(len(self)))]
        n = len(self)
        if not -n <= row < n:
            raise IndexError(f"row {row} of a chunk store of {n}")
        return self._read(int(row) % n)

    def __iter__(self) -> Iterator[Chunk]:
        return (self._read(i) for i in range(len(self)))

    # ------------------------------------------------------------ lookups without decoding
    @property
    def langs(self) -> np.ndarray:
        """Each row's language code (str array)."""
        if self._lang_array is None:
            self._lang_array = self._rows.langs[self._rows.lang] if len(self) else np.zeros(0, dtype=str)
        return self._lang_array

    def rows_of_doc(self, doc_id: str) -> np.ndarray:
        """The rows of one document, in row order."""
        return self.rows_of_docs([doc_id])

    def rows_of_docs(self, doc_ids: Iterable[str]) -> np.ndarray:
        """The rows of any of these documents, in row order (int64)."""
        order, starts = self._doc_index()
        codes = np.flatnonzero(np.isin(self._rows.doc_ids, np.array(list(doc_ids), dtype=str)))
        if not len(codes):
            return np.zeros(0, np.int64)
        return np.sort(np.concatenate([order[starts[c] : starts[c + 1]] for c in codes])).astype(np.int64)

    def row_of(self, chunk_id: str) -> int:
        """The row of a chunk id; KeyError when no row has it."""
        order = self._hash_index()
        h = _id_hash(chunk_id)
        hashes = self._rows.id_hash
        lo = int(np.searchsorted(hashes[order], h, side="left"))
        hi = int(np.searchsorted(hashes[order], h, side="right"))
        for row in order[lo:hi]:
            if self._read(int(row)).chunk_id == chunk_id:
                return int(row)
        raise KeyError(chunk_id)

    def _doc_index(self) -> tuple[np.ndarray, np.ndarray]:
        if self._by_doc is None:
            order = np.argsort(self._rows.doc, kind="stable").astype(np.int64)
            counts = np.bincount(self._rows.doc, minlength=len(self._rows.doc_ids))
            self._by_doc = order, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return self._by_doc

    def _hash_index(self) -> np.ndarray:
        if self._by_hash is None:
            self._by_hash = np.argsort(self._rows.id_hash, kind="stable").astype(np.int64)
        return self._by_hash


def _scan(path: Path) -> RowArrays:
    """The row arrays of a ``chunks.jsonl`` written without them (one pass, one row at a time).
    Blank lines join the row after them (the last row: before them); JSON ignores the whitespace."""
    sizes: list[int] = []

    def rows() -> Iterator[Chunk]:
        pending = 0
        with path.open("rb") as fh:
            for line in fh:
                if not line.strip():
                    pending += len(line)
                    continue
                sizes.append(pending + len(line))
                pending = 0
                yield chunk_from_json(json.loads(line))
        if sizes:
            sizes[-1] += pending

    arrays = RowArrays.of(rows())
    np.cumsum(np.array(sizes, np.int64), out=arrays.offsets[1:])
    if not sizes:
        arrays.offsets[0] = path.stat().st_size  # nothing but blank lines: no rows, all bytes accounted
    return arrays


def add_rows(folder: Path) -> bool:
    """Write ``chunk_rows.npz`` into an index folder written without it (an index of an earlier
    version), atomically; False when it is there already. Nothing else in the folder changes."""
    if (folder / ROWS_FILE).exists():
        return False
    tmp = folder / f".{ROWS_FILE}.tmp"
    _scan(folder / CHUNKS_FILE).save(tmp)
    tmp.replace(folder / ROWS_FILE)
    return True


def write(folder: Path, chunks: Iterable[Chunk]) -> None:
    """``chunks.jsonl`` and ``chunk_rows.npz`` of these chunks, in row order."""
    sizes: list[int] = []
    kept: list[Chunk] = []
    with (folder / CHUNKS_FILE).open("wb") as fh:
        for c in chunks:
            line = (chunk_json(c) + "\n").encode("utf-8")
            fh.write(line)
            sizes.append(len(line))
            kept.append(c)
    RowArrays.of(kept, sizes).save(folder / ROWS_FILE)
