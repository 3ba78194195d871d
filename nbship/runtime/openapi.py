"""The OpenAPI document: FastAPI's, with the request schema and the notebook's example put in after start-up.

The routes parse bodies themselves, so their request bodies are declared here by reference
(``#/components/schemas/PredictRequest``); the component is filled from the request schema once the load
cells have run (a declared model may live in code that only exists after loading).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .kserve import kserve_components
from .schema import COMPONENT

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .service import Service

_REF = {"$ref": f"#/components/schemas/{COMPONENT}"}
_ERROR = {"$ref": "#/components/schemas/ServiceError"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    408: {"description": "the body was not received within the configured time",
          "content": {"application/json": {"schema": _ERROR}}},
    413: {"description": "body larger than the configured limit (for a batch: more items than the limit)",
          "content": {"application/json": {"schema": _ERROR}}},
    422: {"description": "malformed JSON or a payload the schema refuses: `detail` lists field paths and reasons",
          "content": {"application/json": {"schema": _ERROR}}},
    500: {"description": "the notebook code raised; the log has the traceback and notebook cell",
          "content": {"application/json": {"schema": _ERROR}}},
    503: {"description": "all workers busy and the queue full, or too many uploads at once (see `Retry-After`)",
          "content": {"application/json": {"schema": _ERROR}}},
    504: {"description": "the prediction did not finish within the configured timeout",
          "content": {"application/json": {"schema": _ERROR}}},
}
PREDICT_DOC: dict[str, Any] = {
    "openapi_extra": {"requestBody": {"required": True, "content": {"application/json": {"schema": _REF}}}},
    "responses": {200: {"description": "the pipeline's answer", "content": {"application/json": {"schema": {}}}},
                  **_ERRORS},
}
BATCH_DOC: dict[str, Any] = {
    "openapi_extra": {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "array", "items": _REF}}}}},
    "responses": {200: {"description": "one item per payload: `status` and `result`, or `status` and `detail`",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchResponse"}}}},
                  **{k: v for k, v in _ERRORS.items() if k != 500}},
}
_STATIC_COMPONENTS: dict[str, Any] = {
    "ServiceError": {"type": "object", "properties": {"detail": {}, "request_id": {"type": "string"}}},
    "BatchResponse": {"type": "object", "required": ["items"], "properties": {
        "items": {"type": "array", "items": {"type": "object", "required": ["status"], "properties": {
            "status": {"type": "integer"}, "result": {}, "detail": {}}}},
        "request_id": {"type": "string"}}},
}


def build_openapi(app: FastAPI, service: Service) -> dict[str, Any]:
    """FastAPI's document plus the request schema and examples (cached once the model is loaded)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, tags=None,
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(_STATIC_COMPONENTS)
    components.update(kserve_components())
    example = service.example_request
    if service.schema is not None:
        components.update(service.schema.openapi_components())
    else:
        components[COMPONENT] = {}
    if example is not None:
        paths = document["paths"]
        paths["/predict"]["post"]["requestBody"]["content"]["application/json"]["example"] = example
        paths["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]["example"] = [example]
        response = service.manifest.example.response if service.manifest.example else None
        if response is not None:
            paths["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["example"] = response
    if service.schema is not None:
        app.openapi_schema = document
    return document
