"""schemathesis against /openapi.json (issue 17): every documented operation, fuzzed, answers with
a status code, content type and body its schema documents, and never a 500."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest

from rag.config import Settings

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")
pytest.importorskip("gradio")
HealthCheck, hsettings = hypothesis.HealthCheck, hypothesis.settings

SOAK = os.environ.get("RAG_SOAK") == "1"


@pytest.fixture(scope="module")
def api_schema(settings: Settings, seed_retriever: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = replace(settings, data_dir=str(tmp_path_factory.mktemp("schema-data")), rate_limit=0)
    from rag.server import create_app

    return schemathesis.openapi.from_asgi("/openapi.json", create_app(s, seed_retriever))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hsettings(max_examples=60 if SOAK else 12, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                  HealthCheck.filter_too_much])
def test_the_api_matches_its_schema(case: Any) -> None:
    case.call_and_validate()
