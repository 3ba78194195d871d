"""The per-request envelope, as one pure ASGI middleware: request id, version header, body limits, metrics, log.

Pure ASGI (not ``BaseHTTPMiddleware``) because it runs on every request: it wraps ``send`` to add headers and
read the status, and buffers request bodies itself so that a body over ``max_body_bytes`` is refused with 413
before anything parses it — by ``Content-Length`` when declared, by counting the bytes when streamed.

Bodies are bounded in time and number too: a body not received within ``body_timeout_seconds`` answers 408
(a client trickling bytes cannot hold its slot), and at most ``max_connections`` requests with a body are in
the service at once (reading, queued or predicting); one more answers 503 before its body is read. Buffered
bodies therefore stay below ``max_body_bytes × max_connections``. Requests without a body (probes, metrics)
are not counted, so a flood of uploads never makes the pod look dead.

The hot path is answered here: a ``direct`` handler (``POST /predict``) gets the buffered body and request id
and returns the ``Answer`` the middleware sends, without the framework's routing, request and response objects
in between (they cost more than the rest of the envelope together). A handler may decline (``None``, a large
body for instance): the request then goes to the app's route as any other.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from .logs import ACCESS, SERVICE
from .metrics import Metrics
from .signals import PayloadLog

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID = "nbship.request_id"
_JSON = (b"content-type", b"application/json")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
access_log = logging.getLogger(ACCESS)
service_log = logging.getLogger(SERVICE)


# Request ids come from a generator seeded once from the OS, not from uuid4: one getrandom system call per request
# showed up as the single largest cost on the event loop under load. They identify, they do not authenticate.
_IDS = random.Random()


def _request_id(headers: list[tuple[bytes, bytes]]) -> tuple[str, bytes]:
    for name, value in headers:
        if name == b"x-request-id":
            # echo a sane client id; anything else (too long, not printable ASCII) is replaced
            if 0 < len(value) <= 128 and all(33 <= c < 127 for c in value):
                return value.decode("ascii"), value
            break
    generated = f"{_IDS.getrandbits(128):032x}"
    return generated, generated.encode("ascii")


@dataclass(frozen=True)
class Answer:
    """What a direct handler answers: a status, the JSON body, and ``Retry-After`` seconds for a refusal."""

    status: int
    content: bytes
    retry_after: int | None = None


# (body, request id) → the answer, or None to let the app's route answer
Direct = Callable[[bytes, str], Awaitable[Answer | None]]


class ServiceMiddleware:
    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, version: str, max_body_bytes: int,
        route_of: Callable[[Scope], str], max_connections: int, body_timeout_seconds: float,
        payload_log: PayloadLog | None = None, direct: Mapping[str, Direct] | None = None,
    ) -> None:
        self.app = app
        self.direct = dict(direct or {})  # POST path → handler
        self.metrics = metrics
        self.version = version
        self.version_header = version.encode("latin-1", "replace")
        self.max_body_bytes = max_body_bytes
        self.payload_log = payload_log
        self.route_of = route_of
        self.max_connections = max_connections
        self.body_timeout = body_timeout_seconds
        self.open_bodies = 0  # requests with a body in the service now; touched only on the event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id, request_id_header = _request_id(scope["headers"])
        scope[REQUEST_ID] = request_id
        extra_headers = [(b"x-request-id", request_id_header), (b"x-model-version", self.version_header)]
        status = 0
        # a sampled request logs its payload and its answer (scrubbed); the others cost one random draw
        sampled = self.payload_log is not None and self.payload_log.sampled()
        answer: list[bytes] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra_headers]
            elif sampled and message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
            await send(message)

        metrics = self.metrics
        metrics.in_flight += 1
        body = b""
        route: str | None = None  # known without matching when a direct handler answers
        counted = scope["method"] in BODY_METHODS
        if counted:
            self.open_bodies += 1
        try:
            if counted:
                refusal = None
                if self.open_bodies > self.max_connections:
                    refusal = 503, f"more than {self.max_connections} requests with a body at once; retry shortly"
                else:
                    try:
                        buffered = await _within(self.body_timeout, self._read_body(scope, receive))
                    except asyncio.TimeoutError:
                        buffered = b""
                        refusal = 408, f"request body not received within {self.body_timeout:g} s"
                    if buffered is None:
                        refusal = 413, f"request body larger than {self.max_body_bytes} bytes"
                if refusal is not None:
                    await _answer(send_with_headers, refusal[0], {"detail": refusal[1], "request_id": request_id},
                                  close=True, retry_after=refusal[0] == 503)
                    return
                body = buffered or b""
                handler = self.direct.get(scope["path"]) if scope["method"] == "POST" else None
                if handler is not None:
                    direct = await handler(body, request_id)
                    if direct is not None:
                        route = scope["path"]
                        await _answer_bytes(send_with_headers, direct.status, direct.content, direct.retry_after)
                        return
                receive = _replay(body, receive)
            await self.app(scope, receive, send_with_headers)
        except Exception:
            service_log.exception("unhandled error", extra={"fields": {"request_id": request_id}})
            if status == 0:
                await _answer(send_with_headers, 500, {"detail": "internal error", "request_id": request_id})
            else:
                raise
        finally:
            metrics.in_flight -= 1
            if counted:
                self.open_bodies -= 1
            seconds = time.perf_counter() - started
            route = route or self.route_of(scope)
            metrics.observe(scope["method"], route, status, seconds)
            fields: dict[str, Any] = {
                "request_id": request_id,
                "method": scope["method"],
                "route": route,
                "path": scope["path"],
                "status": status,
                "latency_ms": round(seconds * 1000, 3),
                "model_version": self.version,
            }
            if sampled and body and self.payload_log is not None:
                fields["payload"] = self.payload_log.text(body)
                fields["answer"] = self.payload_log.text(b"".join(answer))
            access_log.info("request", extra={"fields": fields})

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it is known to exceed the limit."""
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    if int(value) > limit:
                        return None
                except ValueError:
                    pass  # the server rejects a malformed length before we get here
                break
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # client went away; the app sees an empty body and the answer goes nowhere
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later calls wait for the disconnect, as the server's receive does

    return replay


async def _within(seconds: float, reading: Awaitable[bytes | None]) -> bytes | None:
    """``reading``, or ``asyncio.TimeoutError`` after ``seconds`` (without a new task where Python allows)."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await reading
    return await asyncio.wait_for(reading, seconds)


async def _answer(
    send: Send, status: int, document: dict[str, Any], *, close: bool = False, retry_after: bool = False
) -> None:
    await _answer_bytes(send, status, json.dumps(document).encode(), 1 if retry_after else None, close=close)


async def _answer_bytes(
    send: Send, status: int, content: bytes, retry_after: int | None = None, *, close: bool = False
) -> None:
    headers = [_JSON, (b"content-length", str(len(content)).encode())]
    if close:
        headers.append((b"connection", b"close"))  # the unread rest of the body cannot be reused as a request
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
