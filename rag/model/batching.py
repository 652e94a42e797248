"""Length-sorted batching shared by every encoder (sentence-transformers and the ONNX export).

Scope: one pure helper; no model, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def encode_sorted(
    texts: Sequence[str], prenormalize: Callable[[str], str], batch_size: int, dim: int,
    run: Callable[[list[str]], np.ndarray], progress: Callable[[int], None] | None,
) -> np.ndarray:
    """``run`` over batches of the prenormalised ``texts``, longest first (batches of similar
    length waste little on padding); float32 ``(n, dim)`` in input order."""
    if isinstance(texts, str):
        raise TypeError("Embedder.encode_*: pass a list of strings, not one string")
    items = [prenormalize(t) for t in texts]
    out = np.zeros((len(items), dim), dtype=np.float32)
    order = sorted(range(len(items)), key=lambda i: -len(items[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        out[idx] = run([items[i] for i in idx])
        if progress is not None:
            progress(len(idx))
    return out
