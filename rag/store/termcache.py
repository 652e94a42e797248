"""Term vectors remembered across builds and indexes, in the cache folder.

A BM25 term's vector (``rag.store.crosslex``) depends only on the term, the model
and the query prompt, and a corpus's vocabulary grows much more slowly than
the corpus: a second index, or a rebuild, finds most of its terms here and
embeds only new ones. Folder ``<cache_dir>/terms/<key>/`` (key: model checksum
and prompt) holds shards, each ``<name>.npy`` (float16 vectors) and
``<name>.json`` (its terms, written last: a shard without it is ignored).
Shards are added whole (temporary name, then rename), so two builds at once
never corrupt the cache; when there are many they are merged into one.
Common words' vectors also ship with the package (``rag.store.termtable``): a first
index finds most everyday terms there. Nothing here embeds anything or knows about indexes.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.store import termtable

MAX_SHARDS = 16  # more than this are merged into one on the next write


def folder_for(cache_dir: str | Path, checksum: str, prompt: str) -> Path:
    return Path(cache_dir).expanduser() / "terms" / termtable.key_for(checksum, prompt)


def _shards(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if p.with_suffix(".npy").is_file()) if folder.is_dir() else []


def _read(shard: Path, dim: int) -> tuple[list[str], np.ndarray] | None:
    """A shard's terms and (memory-mapped) vectors; None when it is damaged or of another size."""
    try:
        terms = json.loads(shard.read_text(encoding="utf-8"))
        vectors = np.load(shard.with_suffix(".npy"), mmap_mode="r")
    except (OSError, ValueError):
        return None
    if not isinstance(terms, list) or vectors.shape != (len(terms), dim):
        return None
    return [str(t) for t in terms], vectors


def lookup(folder: Path, terms: Sequence[str], dim: int, table: bool = True) -> dict[str, np.ndarray]:
    """The cached vectors (float32) of those ``terms`` the cache holds, then (``table``) of those the
    shipped table of common words holds (``rag.store.termtable``, same key: same model and prompt)."""
    found = _lookup_shards(folder, terms, dim)
    rest = [t for t in terms if t not in found]
    if rest and table:
        found.update(termtable.lookup(folder.name, rest, dim))
    return found


def _lookup_shards(folder: Path, terms: Sequence[str], dim: int) -> dict[str, np.ndarray]:
    wanted = set(terms)
    found: dict[str, np.ndarray] = {}
    for shard in _shards(folder):
        read = _read(shard, dim)
        if read is None:
            continue
        names, vectors = read
        rows = [(i, t) for i, t in enumerate(names) if t in wanted and t not in found]
        if rows:
            got = np.asarray(vectors[[i for i, _ in rows]], dtype=np.float32)
            found.update((t, got[k]) for k, (_, t) in enumerate(rows))
    return found


def remember(folder: Path, terms: Sequence[str], vectors: np.ndarray) -> None:
    """Add ``terms`` with their vectors as a new shard; never raises on a read-only or full disk
    (the cache only saves time)."""
    if not len(terms):
        return
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder, f"{time.time_ns():x}-{os.getpid()}", list(terms), np.asarray(vectors, np.float16))
        shards = _shards(folder)
        if len(shards) > MAX_SHARDS:
            _merge(folder, shards, int(vectors.shape[1]))


def _write(folder: Path, name: str, terms: list[str], vectors: np.ndarray) -> None:
    tmp = folder / f".{name}.tmp.npy"
    np.save(tmp, vectors)
    os.replace(tmp, folder / f"{name}.npy")
    tmp_json = folder / f".{name}.tmp.json"
    tmp_json.write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp_json, folder / f"{name}.json")


def _merge(folder: Path, shards: list[Path], dim: int) -> None:
    names: list[str] = []
    parts: list[np.ndarray] = []
    seen: set[str] = set()
    for shard in shards:
        read = _read(shard, dim)
        if read is None:
            continue
        keep = [i for i, t in enumerate(read[0]) if t not in seen]
        seen.update(read[0][i] for i in keep)
        names.extend(read[0][i] for i in keep)
        parts.append(np.asarray(read[1][keep], np.float16))
    if not parts:
        return
    _write(folder, f"{time.time_ns():x}-{os.getpid()}-merged", names, np.concatenate(parts))
    for shard in shards:  # the merged shard has them all; a reader that still lists one skips it
        shard.unlink(missing_ok=True)
        shard.with_suffix(".npy").unlink(missing_ok=True)
