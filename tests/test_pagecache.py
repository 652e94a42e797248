"""rag serve's page-cache prefetch: every index file is hinted, unless they exceed the memory budget."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.store.pagecache import STEP, available_memory, prefetch


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise on this platform")
def test_prefetch_hints_every_file_of_the_index_within_the_budget(tmp_path: Path) -> None:
    (tmp_path / "bm25").mkdir()
    sizes = {"vectors.faiss": STEP + 123, "chunks.jsonl": 10, "bm25/data.npy": 2 * STEP}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"\0" * size)
    total = sum(sizes.values())
    assert prefetch(tmp_path, budget=total) == total
    assert prefetch(tmp_path, budget=total - 1) == 0  # larger than the budget: the files would evict each other
    assert prefetch(tmp_path / "missing") == 0
    assert available_memory() > total  # the default budget (half of it) is read from the kernel
