"""``/docs``: Swagger UI served from the ``swagger-ui-bundle`` package, so the API docs work offline.

That package ships Swagger UI 4, which reads OpenAPI 3.0 only; FastAPI writes 3.1.
The page therefore reads ``docs-openapi.json``: the same schema said as 3.0
(``anyOf [X, null]`` becomes ``X`` with ``nullable: true``). ``/openapi.json``
itself is unchanged. ReDoc is not offered (it would need a CDN).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles


def as_openapi30(node: Any) -> Any:
    """A copy of an OpenAPI 3.1 document (or part) that Swagger UI 4 reads as 3.0."""
    if isinstance(node, list):
        return [as_openapi30(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_openapi30(v) for k, v in node.items()}
    if isinstance(out.get("openapi"), str) and out["openapi"].startswith("3.1"):
        out["openapi"] = "3.0.3"
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del out["anyOf"]
        if len(rest) == 1 and isinstance(rest[0], dict) and "$ref" not in rest[0]:
            out = {**rest[0], **out}
        else:
            out["anyOf"] = rest
        out["nullable"] = True
    if isinstance(out.get("type"), list):  # ["string", "null"]
        types = [t for t in out["type"] if t != "null"]
        out["nullable"] = len(types) < len(out["type"]) or out.get("nullable", False)
        out["type"] = types[0] if len(types) == 1 else "string"
    return out


def mount_docs(app: FastAPI) -> None:
    """Add ``/docs``, ``/docs-openapi.json`` and ``/docs-assets/*`` to ``app`` (relative URLs: works
    at ``/docs`` and behind a proxy at ``/chat/docs`` alike)."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs-openapi.json", include_in_schema=False)
    def docs_schema() -> JSONResponse:
        return JSONResponse(as_openapi30(app.openapi()))

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="docs-openapi.json", title=f"{app.title} · API",
                                   swagger_js_url="docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="docs-assets/swagger-ui.css",
                                   swagger_favicon_url="docs-assets/favicon-32x32.png")
