"""One `Encoder` interface and which implementation a caller gets.

Scope: the `Encoder` protocol every caller (index, search, answers, server) types against;
:func:`load_query_embedder` (the ONNX export when ``rag index`` made one, else
sentence-transformers), :func:`load_index_embedder` (what ``rag index`` runs passages and terms
through) and :func:`prepare_query_embedder` (making the export once). The models themselves are
in :mod:`rag.model.embed` and :mod:`rag.model.onnxembed`; this module sits above both, so neither
imports the other.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from rag.cachefiles import file_lock
from rag.config import Settings
from rag.model import onnxembed
from rag.model.embed import load_embedder, model_checksum, prompts_for

_LOCK = threading.Lock()
_QUERY_CACHE: dict[tuple[str, ...], Any] = {}  # ONNX embedders by model, cache, checksum, prompts, batch


class Encoder(Protocol):
    """What every caller needs from a model: :class:`~rag.model.embed.Embedder` (sentence-transformers)
    or :class:`~rag.model.onnxembed.OnnxEmbedder` (the ONNX export); both satisfy it."""

    @property
    def model_id(self) -> str: ...

    @property
    def checksum(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode_queries(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def load_query_embedder(settings: Settings) -> Encoder:
    """The embedder for searching and answering: the model's ONNX export when ``rag index``
    made one (:mod:`rag.model.onnxembed`: same vectors, no torch import, faster), else
    :func:`load_embedder`. Cached like it."""
    if not settings.onnx:
        return load_embedder(settings)

    checksum = model_checksum(settings)
    folder = onnxembed.folder_for(settings.cache_dir, checksum)
    meta = onnxembed.read_meta(folder, checksum)
    if meta is None:  # an install upgraded without a new `rag index`: its previous export still serves
        found_before = onnxembed.previous_export(settings.cache_dir, checksum)
        if found_before is not None:
            folder, meta = found_before
    if meta is None or not meta.get("ok"):
        return load_embedder(settings)
    prompts = prompts_for(settings, meta.get("model_prompts"))
    key = (settings.embed_model, settings.cache_dir, str(folder), *prompts, str(settings.embed_batch_size))
    with _LOCK:
        cached = _QUERY_CACHE.get(key)
    if cached is not None:
        return cached
    try:
        found = onnxembed.load(folder, meta, prompts, settings.embed_batch_size)
    except Exception as e:  # a damaged export must not stop search; the next `rag index` rebuilds it
        print(f"warning: {folder}: the ONNX export cannot be used ({type(e).__name__}: {str(e)[:200]}); "
              f"using sentence-transformers. Delete {folder} and run `rag index` to export it again.",
              file=sys.stderr)
        return load_embedder(settings)
    with _LOCK:
        return _QUERY_CACHE.setdefault(key, found)


def load_index_embedder(settings: Settings, log: Callable[[str], None]) -> Encoder:
    """The embedder ``rag index`` runs passages and terms through: the ONNX export (made first
    when missing, :func:`prepare_query_embedder`; checked against sentence-transformers, about
    1.3x faster per passage and 2x per term on 2 cores, and no torch import when it exists) when
    it gives token states, else sentence-transformers."""
    prepare_query_embedder(settings, log)
    found = load_query_embedder(settings)
    can_index = getattr(found, "can_index", None)  # an earlier format's export serves questions only
    return found if can_index is not None and can_index() else load_embedder(settings)


def prepare_query_embedder(settings: Settings, log: Callable[[str], None]) -> dict[str, Any] | None:
    """Export the configured model for :func:`load_query_embedder` unless a valid export exists.
    Returns the export's metadata (``ok``, ``min_cosine``...), or None when there was nothing to do."""
    if not settings.onnx:
        return None

    checksum = model_checksum(settings)
    folder = onnxembed.folder_for(settings.cache_dir, checksum)
    if onnxembed.read_meta(folder, checksum) is not None:
        return None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(folder.parent / f".{folder.name}.lock"):  # two `rag index` at once export once
            if onnxembed.read_meta(folder, checksum) is not None:
                return None
            return onnxembed.export(load_embedder(settings), folder, log)
    except Exception as e:  # exporters fail on exotic models, caches may be read-only: search still works
        reason = f"{type(e).__name__}: {str(e)[:200]}"
        log(f"could not export the embedding model to ONNX in {folder} ({reason}); "
            "searching uses sentence-transformers")
        return {"ok": False, "reason": reason}
