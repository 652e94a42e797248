"""``rag.serve.api_docs``: the OpenAPI 3.1 schema said as 3.0 for the bundled Swagger UI 4."""

from __future__ import annotations

from rag.serve.api_docs import as_openapi30


def test_nullable_fields_become_openapi30() -> None:
    doc = {"openapi": "3.1.0", "components": {"schemas": {"Ask": {"properties": {
        "id": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}], "title": "Id"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Note"},
        "ref": {"anyOf": [{"$ref": "#/components/schemas/X"}, {"type": "null"}]},
        "k": {"type": "integer", "default": 5}}}}}}
    out = as_openapi30(doc)
    props = out["components"]["schemas"]["Ask"]["properties"]
    assert out["openapi"] == "3.0.3" and doc["openapi"] == "3.1.0"  # a copy; the original is unchanged
    assert props["note"] == {"type": "string", "title": "Note", "nullable": True}
    assert props["id"]["anyOf"] == [{"type": "string"}, {"type": "integer"}] and props["id"]["nullable"] is True
    assert props["ref"] == {"anyOf": [{"$ref": "#/components/schemas/X"}], "nullable": True}
    assert props["k"] == {"type": "integer", "default": 5}
