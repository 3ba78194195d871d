"""HTTP answers shared by the service's routes: JSON bodies, refusals with ``Retry-After``, the request id."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from .middleware import REQUEST_ID
from .service import Refusal


def json_response(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(document).encode(), status, headers, media_type="application/json")


def refusal_content(refusal: Refusal, request_id: str) -> bytes:
    return json.dumps({"detail": refusal.detail, "request_id": request_id}).encode()


def refusal_response(refusal: Refusal, request_id: str) -> Response:
    headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after is not None else None
    return Response(refusal_content(refusal, request_id), refusal.status, headers, media_type="application/json")


def request_id_of(request: Request) -> str:
    """The id the service middleware gave this request (the client's ``X-Request-ID`` or a fresh one)."""
    return str(request.scope.get(REQUEST_ID, ""))
