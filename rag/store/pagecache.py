"""Warming the operating system's page cache with an index's files, for a server that just started.

Scope: one best-effort hint per file range (``posix_fadvise(WILLNEED)``, in steps: one call for a
whole large file reads only a few MB ahead on Linux), run in a background thread by ``rag serve``
after it loads an index. Nothing is read into the process: the pages land in the kernel's cache,
not in the server's resident memory, and the kernel drops them again under memory pressure.

Why: a large index is read at random (a question's candidates' sentence vectors and passage
texts). Right after a reboot or a cache flush each of those reads waits for the disk: on the 1M
synthetic index, the first 200 questions took p95 117 ms instead of 42 ms (bench/million.py, a
dropped page cache; notes/session-22.md). Skipped when the files exceed half of the memory the
kernel reports available (they would only push each other out) or where the platform has no
``posix_fadvise``.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger("rag")

STEP = 8 << 20  # bytes per hint: Linux reads ahead a few MB per call, so a large file takes many


def available_memory() -> int:
    """Bytes the kernel reports available (``MemAvailable``), or 0 where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def prefetch(folder: str | Path, budget: int | None = None) -> int:
    """Hint the kernel to read every file under ``folder`` into the page cache; the bytes hinted.

    Returns 0 without hinting when the files exceed ``budget`` (default: half of the available
    memory) or the platform cannot take the hint. Never raises for a file that vanished meanwhile.
    """
    if not hasattr(os, "posix_fadvise"):
        return 0
    try:
        files = {p: p.stat().st_size for p in sorted(Path(folder).rglob("*")) if p.is_file()}
    except OSError:  # the folder, or a file of it, went away meanwhile (a test's, an index swapped out)
        return 0
    total = sum(files.values())
    budget = available_memory() // 2 if budget is None else budget
    if not total or total > budget:
        return 0
    hinted = 0
    for path, size in files.items():
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            for offset in range(0, size, STEP):
                os.posix_fadvise(fd, offset, min(STEP, size - offset), os.POSIX_FADV_WILLNEED)
            hinted += size
        except OSError:
            pass
        finally:
            os.close(fd)
    return hinted


def prefetch_in_background(folder: str | Path) -> threading.Thread:
    """:func:`prefetch` in a daemon thread (started); logs what it did."""

    def run() -> None:
        hinted = prefetch(folder)
        if hinted:
            log.info("index files (%d MB) are being read into the page cache", hinted >> 20)

    thread = threading.Thread(target=run, name="rag-prefetch", daemon=True)
    thread.start()
    return thread
