"""Embedding checkpoints: what an interrupted ``rag index`` already embedded, kept in the cache.

While a build embeds, every block of passages (``BLOCK``) is saved, with its
sentence vectors, as one file in ``<cache_dir>/checkpoints/<key>/`` (key: the
index folder's absolute path and the model checksum), keyed by the sha256 of
the passage text. A build that was stopped (Ctrl-C, kill, power loss) and is
started again takes those vectors instead of embedding the passages again;
the finished build deletes the folder. Files are written under a temporary
name and renamed, so a kill mid-write loses at most the block being written.
The index folder itself is untouched until the build swaps in a complete one
(``rag.store.indexfiles``). Nothing here embeds or knows about FAISS.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

BLOCK = 256  # passages per checkpoint file: a few seconds of work on 2 cores


def folder_for(cache_dir: str | Path, index_dir: str | Path, checksum: str) -> Path:
    key = hashlib.sha256(f"{Path(index_dir).resolve()}\0{checksum}".encode()).hexdigest()[:16]
    return Path(cache_dir).expanduser() / "checkpoints" / key


def load(folder: Path, dim: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Text key -> (passage vector float32, sentence vectors float16) of every saved block;
    damaged files are skipped (their passages are embedded again)."""
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if not folder.is_dir():
        return found
    for f in sorted(folder.glob("[!.]*.npz")):  # not the ``.<name>.tmp.npz`` of a write that was killed
        try:
            with np.load(f, allow_pickle=False) as z:
                keys, vectors, counts, sentences = z["keys"], z["vectors"], z["counts"], z["sentences"]
        except (OSError, ValueError, KeyError, EOFError):  # EOFError: an empty file
            continue
        if vectors.shape != (len(keys), dim) or len(counts) != len(keys) or sentences.shape != (counts.sum(), dim):
            continue
        ends = np.cumsum(counts)
        for i, k in enumerate(keys.tolist()):
            found[str(k)] = (vectors[i].astype(np.float32), sentences[ends[i] - counts[i] : ends[i]])
    return found


def save_block(folder: Path, keys: Sequence[str], vectors: np.ndarray, sentences: Sequence[np.ndarray]) -> None:
    """Save one embedded block; a read-only or full cache only costs the resume (never raises OSError)."""
    if not len(keys):
        return
    dim = vectors.shape[1]
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():x}-{os.getpid()}"
        tmp = folder / f".{name}.tmp.npz"
        np.savez(
            tmp, keys=np.array(list(keys)), vectors=np.asarray(vectors, np.float32),
            counts=np.array([len(s) for s in sentences], np.int64),
            sentences=np.concatenate([np.asarray(s, np.float16).reshape(-1, dim) for s in sentences]),
        )
        os.replace(tmp, folder / f"{name}.npz")


def clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
