"""The store seam: where an index lives, chosen from configuration (``RAG_STORE``).

One small base class and a factory, one file per engine (the shape of txtai's
``ann`` package). ``faiss`` (the default) is the index folder of
:mod:`rag.index` / :mod:`rag.indexfiles`, embedded in the process; ``milvus``
is a Milvus collection (:mod:`rag.milvusstore`: Milvus Lite for a ``.db``
path, a Milvus server for an ``http://`` URI). Both are built by ``rag index``
and searched by a ``Retriever`` with the same fusion. This module only
dispatches; it holds no engine code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import Settings
from rag.errors import RagError

if TYPE_CHECKING:
    from rag.index import BuildReport
    from rag.retrieve import Retriever

STORES = ("faiss", "milvus")


class Store:
    """Builds an index into one engine and opens a retriever over it."""

    name = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def build(
        self, corpus: Sequence[str | Path], index_dir: str | Path, rebuild: bool = False, progress: bool = True,
        embedder: Any = None,
    ) -> BuildReport:
        raise NotImplementedError

    def retriever(self, index_dir: str | Path | None = None) -> Retriever:
        raise NotImplementedError


class FaissStore(Store):
    """The index folder (FAISS + chunk store + BM25 + manifest): the embedded default."""

    name = "faiss"

    def build(
        self, corpus: Sequence[str | Path], index_dir: str | Path, rebuild: bool = False, progress: bool = True,
        embedder: Any = None,
    ) -> BuildReport:
        from rag.index import build_folder

        return build_folder(self.settings, corpus, index_dir, rebuild, progress, embedder)

    def retriever(self, index_dir: str | Path | None = None) -> Retriever:
        from rag.embed import load_query_embedder
        from rag.indexfiles import load_index
        from rag.retrieve import Retriever

        index = load_index(index_dir or self.settings.index_dir, self.settings)
        return Retriever(index, load_query_embedder(self.settings), self.settings)


def open_store(settings: Settings) -> Store:
    """The store ``RAG_STORE`` names; an unknown name or a missing extra is a ``RagError``."""
    if settings.store == "faiss":
        return FaissStore(settings)
    if settings.store == "milvus":
        try:
            from rag.milvusstore import MilvusStore
        except ImportError as e:
            raise RagError(
                f"RAG_STORE=milvus needs pymilvus ({e.name} is not installed): pip install -e '.[milvus]'"
            ) from None
        return MilvusStore(settings)
    raise RagError(f"RAG_STORE={settings.store!r} is not a store; use one of {', '.join(STORES)}")
