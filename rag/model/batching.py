"""Length-sorted batching shared by every encoder (sentence-transformers and the ONNX export).

Scope: one pure helper; no model, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# Texts per forward pass: at most ``batch_size``, and fewer for long texts, so that a batch's text
# count times its longest text stays within this many characters. On 2 CPU cores ONNX Runtime was
# both faster and smaller so (session 21, `rag index`'s model work on 128 passages, batch 32 ->
# this budget): Belebele ko (345 characters) 28.4 -> 17.6 s pooled, 37.1 -> 33.3 s sentences alone;
# KorQuAD (1,021 characters) 73.6 -> 59.9 s and 121.2 -> 86.6 s; resident memory 2.0-3.1 -> 1.0-1.1 GB
# (the activations of 32 texts of 512 tokens). 2,048 was slower on both, 512 on Belebele.
BATCH_CHARS = 1024


def batches(lengths: Sequence[int], batch_size: int, budget: int | None = None) -> list[slice]:
    """Consecutive slices of items with these ``lengths`` (longest first): at most ``batch_size``
    items each, and at most ``budget`` (default ``BATCH_CHARS``) for count x first (longest)
    length; never empty."""
    budget = BATCH_CHARS if budget is None else budget
    out, start = [], 0
    while start < len(lengths):
        longest = max(1, int(lengths[start]))
        size = max(1, min(batch_size, budget // longest))
        out.append(slice(start, min(start + size, len(lengths))))
        start += size
    return out


def encode_sorted(
    texts: Sequence[str], prenormalize: Callable[[str], str], batch_size: int, dim: int,
    run: Callable[[list[str]], np.ndarray], progress: Callable[[int], None] | None,
) -> np.ndarray:
    """``run`` over batches of the prenormalised ``texts``, longest first (batches of similar
    length waste little on padding; long texts in smaller batches, :func:`batches`); float32
    ``(n, dim)`` in input order."""
    if isinstance(texts, str):
        raise TypeError("Embedder.encode_*: pass a list of strings, not one string")
    items = [prenormalize(t) for t in texts]
    out = np.zeros((len(items), dim), dtype=np.float32)
    order = sorted(range(len(items)), key=lambda i: -len(items[i]))
    for part in batches([len(items[i]) for i in order], batch_size):
        idx = order[part]
        out[idx] = run([items[i] for i in idx])
        if progress is not None:
            progress(len(idx))
    return out
