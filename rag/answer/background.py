"""The background set: everyday text no article answers, as a yardstick for cosines.

``rag/data/background.txt`` holds short Korean and English texts about weather,
sports, recipes, arithmetic, small talk and the like. Embedded once per model
(kept in memory and in the cache dir), it gives two numbers per question:

- the cosine with the nearest background text: a question closer to small talk
  than to any article is out of scope (see ``rag.answer.abstain.Calibration``);
- the mean cosine with the background texts of each language: how high cosines
  between this question and any text of that language run, which makes scores
  of Korean and English passages comparable.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.text import detect_lang, everyday_texts

_CACHE: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}




def background_vectors(embedder: Any, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, languages) of the background texts, embedded as passages once per model."""
    lines = everyday_texts()
    digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:12]
    key = (str(getattr(embedder, "checksum", "") or getattr(embedder, "model_id", "")), digest)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    path = Path(settings.cache_dir) / f"background-{key[0][:12]}-{digest}.npy"
    vecs: np.ndarray | None
    try:
        vecs = np.load(path)
    except (OSError, ValueError):
        vecs = None
    if vecs is None or len(vecs) != len(lines):
        vecs = np.asarray(embedder.encode_passages(lines), dtype=np.float32)
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, vecs)
            os.replace(tmp, path)
    cached = (vecs, np.array([detect_lang(x) for x in lines]))
    _CACHE[key] = cached
    return cached


def background_similarity(embedder: Any, settings: Settings, qvec: np.ndarray) -> tuple[float, dict[str, float]]:
    """Cosine with the nearest background text, and the mean cosine per language ("" = all)."""
    vecs, langs = background_vectors(embedder, settings)
    if not len(vecs):
        return -1.0, {}
    sims = vecs @ qvec
    means = {lg: float(sims[langs == lg].mean()) for lg in set(langs.tolist()) if lg}
    means[""] = float(sims.mean())
    return float(sims.max()), means
