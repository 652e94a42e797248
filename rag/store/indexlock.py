"""One writer per index folder, and no leftovers of killed writers.

``rag index`` holds an exclusive lock on ``.<index>.lock`` (a sibling of the
folder, which is swapped whole) for the whole build. A second build of the same
index fails fast with a message naming the holder's PID, rather than both
writing and the last one silently winning. The lock is an ``flock``: the kernel
drops it when its process dies, ``kill -9`` included, so a stale lock file
never blocks anyone. Once it holds the lock, a build removes what killed builds
left: ``.<index>.tmp-<pid>`` folders and ``<index>.old`` (put back first when the
kill came between the swap's two renames). Readers never take the lock; they
only leave the folder alone while a writer holds it (:func:`writer_active`).
Where ``fcntl`` is missing (Windows) there is no lock.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from rag.cachefiles import clean_leftovers
from rag.errors import IndexStoreError

WAIT_SECONDS = 2.0  # a reader's probe holds the lock for microseconds; a writer holds it for minutes
F = TypeVar("F", bound=Callable[..., Any])


def lock_path(index_dir: Path) -> Path:
    return index_dir.with_name(f".{index_dir.name}.lock")


def writer_active(index_dir: Path) -> bool:
    """Whether a build holds the lock on ``index_dir`` now."""
    try:
        import fcntl
    except ImportError:
        return False
    path = lock_path(index_dir)
    if not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases a probe lock that was taken
    return False


@contextlib.contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    """Hold the writer lock of ``index_dir`` (IndexStoreError naming the holder's PID if another
    process has it), clean up after killed builds, and release it on exit."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    path = lock_path(index_dir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    raise IndexStoreError(
                        f"another `rag index` (PID {holder}) is writing {index_dir} ({path} is locked); "
                        "wait for it to finish, or stop it, then run again / 다른 색인 작업이 진행 중입니다"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        remove_leftovers(index_dir)
        yield
    finally:
        os.close(fd)  # releases the lock


def remove_leftovers(index_dir: Path) -> None:
    """What killed builds left: the previous index is put back if a kill split the swap, then
    ``.<index>.tmp-*`` folders and ``<index>.old`` go. Call only while holding the lock."""
    old = index_dir.with_name(index_dir.name + ".old")
    if old.is_dir() and not index_dir.exists():
        os.replace(old, index_dir)  # not recover_swap: it steps aside while a writer (we) holds the lock
    clean_leftovers(index_dir)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)


def locked(fn: F) -> F:
    """Decorator: run ``fn`` (which takes an ``index_dir`` argument) holding that index's lock."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        index_dir = sig.bind(*args, **kwargs).arguments["index_dir"]
        with index_lock(Path(index_dir)):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
