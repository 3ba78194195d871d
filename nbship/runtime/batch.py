"""Batches of payloads (``/predict/batch``): bounded before anything is validated, decoded off the event loop.

The JSON array is decoded one element at a time, so a body with more than ``max_items`` elements is refused
(413) after decoding at most ``max_items`` of them, whatever else it holds. ``read_batch`` is meant to run on
a worker thread (``asyncio.to_thread``): each element is a short step there, so the event loop keeps answering
``/healthz`` while a large batch is decoded and validated. Each invalid item answers with its own, capped,
error list (``schema.MAX_ERRORS``); an item holding ``NaN`` or ``Infinity`` is refused naming the field.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from .schema import PayloadError, RequestSchema, nonfinite_errors_in
from .service import Refusal

_SPACE = re.compile(r"[ \t\n\r]*")


class _Decoder(json.JSONDecoder):
    """Counts ``NaN``/``Infinity`` tokens, so that only an item holding one is searched for them."""

    def __init__(self) -> None:
        super().__init__(parse_constant=self._constant)
        self.constants = 0

    def _constant(self, text: str) -> float:
        self.constants += 1
        return float(text)


def _invalid(message: str, kind: str = "json_invalid") -> Refusal:
    return Refusal(422, [{"loc": ["body"], "msg": message, "type": kind}])


def decode_array(body: bytes, max_items: int) -> tuple[list[Any], set[int]]:
    """The elements of a JSON array body, decoded one by one, and the indexes of those holding NaN or Infinity.

    Raises:
        Refusal: 413 past ``max_items`` elements; 422 for a body that is not a JSON array (or nests too deeply).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("Invalid JSON: the body is not UTF-8") from None
    position = _SPACE.match(text).end()  # type: ignore[union-attr]
    if not text.startswith("[", position):
        raise _invalid("Input should be a valid array", "list_type")
    items: list[Any] = []
    nonfinite: set[int] = set()
    decoder = _Decoder()
    position = _SPACE.match(text, position + 1).end()  # type: ignore[union-attr]
    closed = text.startswith("]", position)
    if closed:
        position += 1
    while not closed:
        if len(items) == max_items:
            raise Refusal(413, f"a batch holds at most {max_items} items (server.max_batch_items)")
        constants = decoder.constants
        try:
            item, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as e:
            raise _invalid(f"Invalid JSON: {e}") from None
        except RecursionError:
            raise _invalid("JSON nested too deeply", "json_too_deep") from None
        if decoder.constants != constants:
            nonfinite.add(len(items))
        time.sleep(0)  # hand the GIL to the event loop if it waits, instead of it waiting for a forced switch
        items.append(item)
        position = _SPACE.match(text, position).end()  # type: ignore[union-attr]
        separator = text[position : position + 1]
        if separator not in (",", "]"):
            raise _invalid(f"Invalid JSON: expected ',' or ']' at character {position}")
        closed = separator == "]"
        position = _SPACE.match(text, position + 1).end()  # type: ignore[union-attr]
    if _SPACE.match(text, position).end() != len(text):  # type: ignore[union-attr]
        raise _invalid(f"Invalid JSON: extra data at character {position}")
    return items, nonfinite


@dataclass(frozen=True)
class Batch:
    """Per item, its error answer (invalid) or None; and the valid payloads with their index."""

    answers: list[dict[str, Any] | None]
    valid: list[tuple[int, Any]]


def read_batch(schema: RequestSchema, body: bytes, max_items: int) -> Batch:
    """Decode and validate a ``/predict/batch`` body; an invalid item gets a 422 answer of its own.

    Raises:
        Refusal: as ``decode_array``.
    """
    items, nonfinite = decode_array(body, max_items)
    answers: list[dict[str, Any] | None] = [None] * len(items)
    valid: list[tuple[int, Any]] = []
    for index, item in enumerate(items):
        try:
            errors = nonfinite_errors_in(item) if index in nonfinite else None
            if errors:
                raise PayloadError(errors)
            valid.append((index, schema.parse_value(item)))
        except PayloadError as e:
            answers[index] = {"status": 422, "detail": [_item_loc(error, index) for error in e.errors]}
        time.sleep(0)
    return Batch(answers, valid)


def _item_loc(error: dict[str, Any], index: int) -> dict[str, Any]:
    return {**error, "loc": ["body", index, *error["loc"][1:]]}
