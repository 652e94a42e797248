"""Folders written whole and swapped in: the converted model and its ONNX export (made once in
the cache directory and reused), and the index.

Each is written into a temporary sibling, fsynced and swapped in, so a crash
never leaves a half-written folder in place; a lock file serialises two
processes that want to build the same folder; the sizes recorded when a folder
was written tell whether it is still complete. Nothing here knows what the
folders hold.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files_complete(folder: Path, files: Any) -> bool:
    """Whether ``files`` (name -> size, as recorded when ``folder`` was written) are all there
    with those sizes: a folder cut short by a crash or a full disk fails this."""
    if not isinstance(files, dict) or not files:
        return False
    return all((folder / n).is_file() and (folder / n).stat().st_size == size for n, size in files.items())


@contextlib.contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """Serialise work on a cache folder (conversion, export) between processes (POSIX); a no-op
    where fcntl is missing."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fix_modes(folder: Path) -> None:
    """mkdtemp makes a private folder; give the result the modes the umask asks for."""
    mask = os.umask(0)
    os.umask(mask)
    for p in [folder, *folder.rglob("*")]:
        p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)


def swap_in(tmp: Path, target: Path) -> None:
    """Replace the folder ``target`` by ``tmp``. A directory cannot be renamed over a full one, so
    the old one is moved aside to ``<target>.old`` first and deleted last; a crash between the
    two renames is undone by :func:`recover_swap`."""
    old = _aside(target)
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def recover_swap(target: Path, writer_active: Callable[[Path], bool] = lambda _p: False) -> None:
    """Put back the previous ``target`` when a crash came between :func:`swap_in`'s two renames,
    unless ``writer_active(target)`` says a live writer is in the middle of that swap (the index
    passes its writer lock, ``rag.store.indexlock.writer_active``; cache folders have none)."""
    old = _aside(target)
    if not target.exists() and old.is_dir() and not writer_active(target):
        with contextlib.suppress(OSError):  # a writer finished the swap meanwhile
            os.replace(old, target)


def _aside(target: Path) -> Path:
    return target.with_name(target.name + ".old")


def clean_leftovers(target: Path) -> None:
    """Remove half-written siblings (``.<name>.*`` folders) that an interrupted build left behind."""
    for p in target.parent.glob(f".{target.name}.*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


def write_synced(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
