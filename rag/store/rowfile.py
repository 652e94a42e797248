"""Rows of a ``.npy`` file read on demand with ``pread``, and file pages a process no longer needs.

Why not a memory map for rows read far apart (sentence vectors of a question's
candidates): on current Linux kernels a page fault on a mapped file maps the
whole page-cache folio around it (hundreds of KB with large read-ahead), and
every mapped page counts in the process's resident memory. At a million
passages one question's 600 sentence rows mapped 264 MB of ``sentences.npy``;
fifty questions, 1.4 GB. :class:`RowFile` reads just the rows asked for into
a fresh array: the file stays in the page cache (shared, reclaimable), the
process holds only what it reads.

:func:`release_mapped` drops a process's mappings of read-only files under
given folders (``MADV_DONTNEED``: the pages stay cached, the next access maps
them again), for files that others map (bm25s's arrays, FAISS, the ONNX
weights). It never touches a writable mapping.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_MADV_DONTNEED = 4


class RowFile:
    """A C-ordered ``.npy`` array whose rows (first axis) are read from the file when indexed."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as fh:
            version = np.lib.format.read_magic(fh)
            fmt = np.lib.format
            shape, fortran, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(fh)
            self._offset = fh.tell()
        if fortran or dtype.hasobject or not shape:
            raise ValueError(f"{path} is not a C-ordered numeric array")
        self.path = path
        self.shape: tuple[int, ...] = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        size = path.stat().st_size
        if size < self._offset + self._row_bytes * self.shape[0]:
            raise ValueError(f"{path} is shorter than its header says ({size} bytes)")
        self._fd = os.open(path, os.O_RDONLY)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> np.ndarray:
        if isinstance(rows, slice):
            return self.read(np.arange(*rows.indices(self.shape[0])))
        take = np.asarray(rows, dtype=np.int64)
        out = self.read(take.reshape(-1))
        return out[0] if take.ndim == 0 else out.reshape(*take.shape, *self.shape[1:])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self.read(np.arange(self.shape[0]))
        return whole if dtype is None else whole.astype(dtype)

    def astype(self, dtype: Any) -> np.ndarray:
        """Every row, as an array of ``dtype`` (like ``ndarray.astype``: reads the whole file)."""
        return np.asarray(self, dtype=dtype)

    def read(self, take: np.ndarray) -> np.ndarray:
        """Rows ``take`` (1-D), one ``pread`` per run of consecutive rows."""
        out = np.empty((len(take), *self.shape[1:]), self.dtype)
        if not len(take):
            return out
        if take.min() < 0 or take.max() >= self.shape[0]:
            raise IndexError(f"rows outside 0..{self.shape[0] - 1} of {self.path}")
        cuts = np.flatnonzero(np.diff(take) != 1) + 1
        starts = np.concatenate([[0], cuts]).tolist()
        ends = np.concatenate([cuts, [len(take)]]).tolist()
        for s, e in zip(starts, ends, strict=True):
            want = (e - s) * self._row_bytes
            view = memoryview(out[s:e].reshape(-1).view(np.uint8))  # type: ignore[arg-type]
            got = os.preadv(self._fd, [view], self._offset + int(take[s]) * self._row_bytes)
            if got != want:
                raise OSError(f"{self.path}: read {got} of {want} bytes")
        return out


def release_mapped(folders: Sequence[Path], min_bytes: int = 16 << 20) -> int:
    """Drop this process's mappings of files under ``folders`` from its resident memory
    (``MADV_DONTNEED``; Linux only, elsewhere nothing): read-only mappings, and private writable
    ones none of whose pages was ever written (smaps ``Anonymous: 0``; ONNX Runtime maps its
    weights so), whose pages are the file's own. Only mappings of ``min_bytes`` or more: big
    arrays read a few rows at a time (the token embeddings, BM25 postings); smaller ones (each
    layer's weights, read whole by every question) stay. Returns the bytes of mappings released."""
    return MappedPages(folders, min_bytes=min_bytes).release()


Range = tuple[int, int]


class MappedPages:
    """:func:`release_mapped` for ``folders`` whenever this process's resident memory has grown by
    ``slack`` bytes since the last release (one read of ``/proc/self/statm`` per call, ~20 us).
    A release reads ``/proc/self/maps`` (cheap) and madvises; ``/proc/self/smaps`` (tens of ms) is
    read only for writable mappings not seen before."""

    def __init__(self, folders: Sequence[Path], slack: int = 64 << 20, min_bytes: int = 16 << 20) -> None:
        self.folders = tuple(folders)
        self.slack = slack
        self.min_bytes = min_bytes
        self._unwritten: set[Range] = set()
        self._checked: set[Range] = set()
        self._after = _resident()

    def trim(self) -> None:
        if _resident() - self._after > self.slack:
            self.release()
            self._after = _resident()

    def release(self) -> int:
        if not sys.platform.startswith("linux"):
            return 0
        maps = _file_mappings(self.folders, self.min_bytes)
        new = [r for r, writable in maps if writable and r not in self._checked]
        if new:
            self._unwritten |= _unwritten(new)
            self._checked |= set(new)
        return _advise([r for r, writable in maps if not writable or r in self._unwritten])


def _file_mappings(folders: Sequence[Path], min_bytes: int) -> list[tuple[Range, bool]]:
    """This process's private or read-only mappings of files under ``folders``, at least ``min_bytes``
    long: ((start, end), writable)."""
    prefixes = tuple(str(Path(f).resolve()) + os.sep for f in folders)
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or not parts[5].startswith(prefixes) or ("w" in parts[1] and parts[1][3] != "p"):
            continue
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        if hi - lo >= min_bytes:
            out.append(((lo, hi), "w" in parts[1]))
    return out


def _unwritten(ranges: Sequence[Range]) -> set[Range]:
    """Those of ``ranges`` (writable private mappings) none of whose pages was written."""
    wanted, found = set(ranges), set()
    current: Range | None = None
    try:
        lines = Path("/proc/self/smaps").read_text().splitlines()
    except OSError:
        return set()
    for line in lines:
        parts = line.split()
        if parts and "-" in parts[0] and not parts[0].endswith(":"):
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            current = (lo, hi) if (lo, hi) in wanted else None
        elif current is not None and parts[:1] == ["Anonymous:"]:
            if parts[1] == "0":
                found.add(current)
            current = None
    return found


def _advise(ranges: Sequence[Range]) -> int:
    libc = _libc()
    released = 0
    for lo, hi in ranges:
        if libc.madvise(ctypes.c_void_p(lo), ctypes.c_size_t(hi - lo), _MADV_DONTNEED) == 0:
            released += hi - lo
    return released


def _resident() -> int:
    """This process's resident bytes (0 where /proc is missing)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


_LIBC: Any = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _LIBC.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    return _LIBC
