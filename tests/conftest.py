"""Shared fixtures: one real bundled model per session, a seed-corpus index in tmp.

The converted model lives in the product's own cache (``Settings().cache_dir``,
or ``RAG_TEST_CACHE``) so it is built once per machine, like a user's first
run; everything else a test writes goes under pytest's tmp folders.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's RAG_* variables must not change what the tests see."""
    for key in list(os.environ):
        if key.startswith("RAG_") and key != "RAG_TEST_CACHE":
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def model_cache() -> str:
    return os.environ.get("RAG_TEST_CACHE") or Settings().cache_dir


@pytest.fixture(scope="session")
def settings(model_cache: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("settings")
    return Settings(cache_dir=model_cache, index_dir=str(tmp / "index"), data_dir=str(tmp / "data"))


@pytest.fixture(scope="session")
def embedder(settings: Settings):  # type: ignore[no-untyped-def]
    from rag.model.embed import load_embedder

    return load_embedder(settings)


@pytest.fixture(scope="session")
def seed_index(settings: Settings, embedder: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped corpus/ indexed once per session."""
    from rag.store.index import build_index

    path = tmp_path_factory.mktemp("seed") / "index"
    build_index(settings, [ROOT / "corpus"], path, progress=False, embedder=embedder)
    return path


@pytest.fixture(scope="session")
def seed_retriever(settings: Settings, seed_index: Path):  # type: ignore[no-untyped-def]
    from rag.search.retrieve import Retriever

    return Retriever.open(settings, seed_index)
