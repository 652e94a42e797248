"""The store seam: where an index lives, chosen from configuration (``RAG_STORE``).

One small base class and a factory, one file per engine (the shape of txtai's
``ann`` package). ``faiss`` (the default) is the index folder of
:mod:`rag.store.index` / :mod:`rag.store.indexfiles`, embedded in the process; ``milvus``
is a Milvus collection (:mod:`rag.store.milvus`: Milvus Lite for a ``.db``
path, a Milvus server for an ``http://`` URI). Both are built by ``rag index``
and searched by a ``Retriever`` with the same fusion (``rag.search``, above this package). This module only
dispatches; it holds no engine code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import Settings
from rag.errors import RagError

if TYPE_CHECKING:
    from rag.store.index import BuildReport

STORES = ("faiss", "milvus")


class Store:
    """Builds an index into one engine (searching it is :meth:`rag.search.retrieve.Retriever.open`'s)."""

    name = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def build(
        self, corpus: Sequence[str | Path], index_dir: str | Path, rebuild: bool = False, progress: bool = True,
        embedder: Any = None,
    ) -> BuildReport:
        raise NotImplementedError


class FaissStore(Store):
    """The index folder (FAISS + chunk store + BM25 + manifest): the embedded default."""

    name = "faiss"

    def build(
        self, corpus: Sequence[str | Path], index_dir: str | Path, rebuild: bool = False, progress: bool = True,
        embedder: Any = None,
    ) -> BuildReport:
        from rag.store.index import build_folder

        return build_folder(self.settings, corpus, index_dir, rebuild, progress, embedder)


def open_store(settings: Settings) -> Store:
    """The store ``RAG_STORE`` names; an unknown name or a missing extra is a ``RagError``."""
    if settings.store == "faiss":
        return FaissStore(settings)
    if settings.store == "milvus":
        try:
            from rag.store.milvus import MilvusStore
        except ImportError as e:
            raise RagError(
                f"RAG_STORE=milvus needs pymilvus ({e.name} is not installed): pip install -e '.[milvus]'"
            ) from None
        return MilvusStore(settings)
    raise RagError(f"RAG_STORE={settings.store!r} is not a store; use one of {', '.join(STORES)}")
