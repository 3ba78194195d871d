"""The Open Inference Protocol (KServe V2) REST endpoints, so KServe and Seldon tooling can talk to the service.

One model, named after the service. ``infer`` takes one input tensor of datatype ``BYTES`` (each element a
JSON document, as a string) or ``JSON`` (each element the document itself); each element is one payload for
the pipeline, and the output tensor ``prediction`` answers in the same datatype. Errors follow the protocol:
``{"error": "..."}`` with 400 for a bad request, 404 for another model name, 413 for more elements than
``server.max_batch_items``. The tensor's ``shape`` is bounded (at most ``MAX_DIMENSIONS`` dimensions, each at most
the item limit) before it is multiplied, and the request is decoded and validated on a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .responses import json_response, request_id_of
from .schema import PayloadError, nonfinite_errors_in
from .service import Refusal

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .service import Service


MAX_DIMENSIONS = 8
_DIMENSION_CEILING = 2**31  # anything larger is refused while parsing; the item limit is checked next


class InferInput(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    shape: list[Annotated[int, Field(ge=0, le=_DIMENSION_CEILING)]] = Field(
        max_length=MAX_DIMENSIONS, description="[n]: n payloads")
    datatype: Literal["BYTES", "JSON"]
    data: list[Any] = Field(description="BYTES: JSON documents as strings; JSON: the documents")
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferInput] = Field(min_length=1)


def kserve_components() -> dict[str, Any]:
    schema = InferRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    return {**schema.pop("$defs", {}), "InferRequest": schema}


_V2_ERROR = {"content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}}}}}}
_INFER_DOC: dict[str, Any] = {
    "openapi_extra": {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/InferRequest"}}}}},
    "responses": {
        200: {"description": "the `prediction` output tensor"},
        400: {"description": "not a valid inference request or payload", **_V2_ERROR},
        404: {"description": "no model of that name", **_V2_ERROR},
        413: {"description": "body larger than the configured limit, or more elements than `max_batch_items`"},
        503: {"description": "all workers busy and the queue full", **_V2_ERROR},
        504: {"description": "the prediction did not finish in time", **_V2_ERROR},
    },
}
_MODEL_RESPONSES: dict[int | str, dict[str, Any]] = {404: {"description": "no model of that name", **_V2_ERROR}}


def add_kserve_routes(app: FastAPI, service: Service) -> None:
    def error(status: int, message: str, retry_after: int | None = None) -> Response:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return json_response({"error": message}, status, headers)

    def unknown(name: str) -> Response | None:
        return None if name == service.name else error(404, f"model {name!r} is not served here (try {service.name!r})")

    @app.get("/v2", tags=["kserve-v2"])
    async def server_metadata() -> Response:
        """Server metadata."""
        return json_response({"name": "nbship", "version": service.manifest.nbship_version,
                              "extensions": []})

    @app.get("/v2/health/live", tags=["kserve-v2"], responses={503: {"description": "every worker stuck"}})
    async def server_live() -> Response:
        """The server is alive (as ``/healthz``: not every worker stuck on one prediction)."""
        alive = service.liveness() is None
        return json_response({"live": alive}, 200 if alive else 503)

    @app.get("/v2/health/ready", tags=["kserve-v2"], responses={503: {"description": "not ready"}})
    async def server_ready() -> Response:
        """The server and its model are ready."""
        return json_response({"ready": service.ready}, 200 if service.ready else 503)

    @app.get("/v2/models/{name}", tags=["kserve-v2"], responses=_MODEL_RESPONSES)
    async def model_metadata(name: str) -> Response:
        """Model metadata: one BYTES/JSON input tensor, one output tensor."""
        return unknown(name) or json_response({
            "name": service.name, "versions": [service.version], "platform": "nbship",
            "inputs": [{"name": "payload", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [{"name": "prediction", "datatype": "BYTES", "shape": [-1]}],
        })

    @app.get("/v2/models/{name}/ready", tags=["kserve-v2"],
             responses={**_MODEL_RESPONSES, 503: {"description": "not ready"}})
    async def model_ready(name: str) -> Response:
        """The model is loaded and warmed up."""
        return unknown(name) or json_response({"name": name, "ready": service.ready}, 200 if service.ready else 503)

    @app.post("/v2/models/{name}/infer", tags=["kserve-v2"], **_INFER_DOC)
    async def model_infer(name: str, request: Request) -> Response:
        """Run the pipeline on each element of the input tensor."""
        missing = unknown(name)
        if missing is not None:
            return missing
        request_id = request_id_of(request)
        try:
            tensor, payloads = await asyncio.to_thread(_payloads, service, await request.body())
            results = await service.predict_many(payloads, request_id)
        except Refusal as refusal:
            detail = refusal.detail if isinstance(refusal.detail, str) else json.dumps(refusal.detail)
            return error(refusal.status, detail, refusal.retry_after)
        failed = [i for i, result in enumerate(results) if isinstance(result, Exception)]
        if failed:
            return error(500, f"the model raised an error on element(s) {failed}; request id {request_id}")
        data = results if tensor.datatype == "JSON" else [json.dumps(r) for r in results]
        return json_response({
            "model_name": service.name, "model_version": service.version, "id": tensor.request_id or request_id,
            "outputs": [{"name": "prediction", "datatype": tensor.datatype, "shape": [len(data)], "data": data}],
        })


class _Tensor:
    def __init__(self, datatype: str, request_id: str | None) -> None:
        self.datatype = datatype
        self.request_id = request_id


def _payloads(service: Service, body: bytes) -> tuple[_Tensor, list[Any]]:
    """The validated payloads of the request's input tensor.

    Raises:
        Refusal: 400 for a request that is not V2 or a payload the schema refuses, 503 before start-up.
    """
    try:
        request = InferRequest.model_validate_json(body)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        raise Refusal(400, f"not a V2 inference request: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    tensor = next((t for t in request.inputs if t.name == "payload"), request.inputs[0])
    limit = service.settings.max_batch_items
    if len(tensor.data) > limit:
        raise Refusal(413, f"input {tensor.name!r}: more than {limit} elements (server.max_batch_items)")
    if any(dimension > limit for dimension in tensor.shape):
        raise Refusal(400, f"input {tensor.name!r}: shape {tensor.shape} has a dimension over {limit} "
                           "(server.max_batch_items)")
    if math.prod(tensor.shape) != len(tensor.data):
        raise Refusal(400, f"input {tensor.name!r}: shape {tensor.shape} does not match {len(tensor.data)} elements")
    if service.schema is None:
        raise Refusal(503, "the model is not loaded yet", retry_after=1)
    payloads = []
    suspect = b"NaN" in body or b"Infinity" in body  # only then are decoded elements searched for them
    for index, element in enumerate(tensor.data):
        try:
            if tensor.datatype == "BYTES" and isinstance(element, str):
                payloads.append(service.schema.parse(element))
            else:
                nonfinite = nonfinite_errors_in(element) if suspect else None
                if nonfinite:
                    raise PayloadError(nonfinite)
                payloads.append(service.schema.parse_value(element))
        except PayloadError as e:
            raise Refusal(400, f"input {tensor.name!r} element {index}: {e}") from None
    return _Tensor(tensor.datatype, request.id), payloads
