"""Request schema of the service: the notebook's declared pydantic model, else one inferred from ``example``.

A model is *declared* when the first parameter of ``preprocess`` (or of ``predict`` when there is no
preprocess stage) is annotated with a ``BaseModel`` subclass; the pipeline then receives the model instance.
Otherwise the schema is inferred from ``example.request``: field names and JSON types (number, string,
boolean, array, object, null), strict, no extra fields; the pipeline receives a plain dict, as in the notebook.

Whatever the schema, ``NaN`` and ``Infinity`` are refused with the field's path (Python's and pydantic's JSON
parsers accept them, and a model fed NaN fails or answers NaN); so are numbers too large for a float in an
inferred schema (a declared model decides with its own ``allow_inf_nan``). An error list
holds at most ``MAX_ERRORS`` entries, so a bad payload cannot make an answer much larger than itself.
"""

from __future__ import annotations

import inspect
import json
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    RootModel,
    StrictBool,
    StrictStr,
    ValidationError,
    create_model,
)
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

COMPONENT = "PredictRequest"
MAX_ERRORS = 10


def _number(value: Any) -> Any:
    # JSON has one number type: accept both, keep ints ints and floats floats, refuse booleans.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("number_type", "Input should be a number")
    if isinstance(value, float) and not math.isfinite(value):  # 1e999: the parser makes it infinite
        raise PydanticCustomError("finite_number", "Input should be a finite number")
    return value


_NUMBER = Annotated[Any, PlainValidator(_number, json_schema_input_type=float)]


class PayloadError(Exception):
    """The body is not JSON, or does not match the schema; ``errors`` are FastAPI-style ``loc``/``msg``/``type``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class RequestSchema:
    model: type[BaseModel]
    declared: bool
    example: Any

    def parse(self, body: bytes | str) -> Any:
        """Validate a JSON document and return what the pipeline takes.

        Raises:
            PayloadError: malformed JSON or a schema violation, with the field path and reason.
        """
        nonfinite = nonfinite_errors(body)
        if nonfinite:
            raise PayloadError(nonfinite)
        try:
            value = self.model.model_validate_json(body)
        except ValidationError as e:
            raise PayloadError(describe(e)) from None
        if self.declared:
            return value
        return value.model_dump(by_alias=True)

    def parse_value(self, value: Any) -> Any:
        """As ``parse`` for an already-decoded item (a batch element), with JSON-mode validation semantics.

        An inferred model's fields are JSON types in strict mode, where Python and JSON validation agree, so the
        item is validated as it is; a declared model sees it re-encoded, as it would see a request body. NaN in
        the item is the caller's to find (``nonfinite_errors_in``): walking every item would cost more than
        validating it.

        Raises:
            PayloadError: as ``parse``.
        """
        try:
            if self.declared:
                return self.parse(json.dumps(value))
            return self.model.model_validate(value).model_dump(by_alias=True)
        except ValidationError as e:
            raise PayloadError(describe(e)) from None
        except RecursionError:
            raise PayloadError([_TOO_DEEP]) from None

    def openapi_components(self) -> dict[str, Any]:
        """The request schema and its nested definitions, keyed for ``#/components/schemas``."""
        schema = self.model.model_json_schema(ref_template="#/components/schemas/{model}")
        components: dict[str, Any] = dict(schema.pop("$defs", {}))
        components[COMPONENT] = schema
        return components


_TOO_DEEP = {"loc": ["body"], "msg": "JSON nested too deeply", "type": "json_too_deep"}


def describe(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as ``{"loc": ["body", …], "msg", "type"}``, the shape FastAPI clients already parse."""
    return capped([
        {"loc": ["body", *item["loc"]], "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False, include_input=False)
    ])


def capped(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first ``MAX_ERRORS`` errors, then one entry saying how many were left out."""
    if len(errors) <= MAX_ERRORS:
        return errors
    more = len(errors) - MAX_ERRORS
    return [*errors[:MAX_ERRORS], {"loc": ["body"], "msg": f"and {more} more error(s)", "type": "too_many_errors"}]


class _NonFinite(str):
    """A number token that is not a finite float (``NaN``, ``-Infinity``, ``1e999``), kept as its text."""


def _float_or_mark(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def nonfinite_errors(body: bytes | str) -> list[dict[str, Any]]:
    """A ``finite_number`` error for each non-finite number in a JSON document, with its path (capped).

    Not JSON (or nested beyond the recursion limit): none here; the schema's validation reports it.
    """
    # A substring search (tens of ms for 10 MB) decides whether the body is decoded a second time.
    tokens = ("NaN", "Infinity") if isinstance(body, str) else (b"NaN", b"Infinity")
    if not any(token in body for token in tokens):  # type: ignore[operator]
        return []
    try:
        document = json.loads(body, parse_constant=_NonFinite, parse_float=_float_or_mark)
    except (ValueError, RecursionError):
        return []
    return nonfinite_errors_in(document)


def nonfinite_errors_in(document: Any) -> list[dict[str, Any]]:
    """``finite_number`` errors for the NaN and infinities of a decoded document (capped)."""
    return capped([
        {"loc": ["body", *path], "msg": f"Input should be a finite number (got {text})", "type": "finite_number"}
        for path, text in _nonfinite_paths(document)
    ])


def _nonfinite_paths(document: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Where a decoded document holds NaN or an infinity, in document order, with its JSON text."""
    found: list[tuple[tuple[Any, ...], str]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), document)]
    while stack:  # iterative: the document may be as deep as the parser allowed
        path, value = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                found.append((path, "NaN" if value != value else ("-Infinity" if value < 0 else "Infinity")))
        elif isinstance(value, _NonFinite):
            found.append((path, str(value)))
        elif isinstance(value, dict):
            stack.extend(((*path, k), v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(value))))
    return found



def declared_model(stages: list[Callable[..., Any]]) -> type[BaseModel] | None:
    """The ``BaseModel`` annotating the first parameter of the first real stage, if any."""
    for function in stages:
        try:
            parameters = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError):
            continue
        if not parameters:
            continue
        try:
            hints = typing.get_type_hints(function)
        except Exception:  # an unresolvable string annotation is simply "not declared"
            hints = {}
        annotation = hints.get(parameters[0].name, parameters[0].annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        return None
    return None


def build_schema(declared: type[BaseModel] | None, example: Any, name: str) -> RequestSchema:
    """The declared model when there is one, else a model inferred from ``example`` (any JSON when absent)."""
    if declared is not None:
        return RequestSchema(model=declared, declared=True, example=example)
    return RequestSchema(model=infer_model(example, _title(name)), declared=False, example=example)


def infer_model(example: Any, title: str) -> type[BaseModel]:
    """A strict pydantic model accepting documents shaped like ``example``."""
    extra: JsonDict | None = {"examples": [example]} if example is not None else None
    if isinstance(example, dict):
        return _object_model(example, title, extra)
    root = Any if example is None else _annotation(example, title)
    return _root_model(root, title, extra)


def _root_model(root: Any, title: str, extra: JsonDict | None) -> type[BaseModel]:
    model: type[BaseModel] = type(  # a RootModel subclass carrying a title and the example
        title,
        (RootModel[root],),
        {"model_config": ConfigDict(strict=True, title=title, json_schema_extra=extra), "__module__": __name__},
    )
    return model


def _object_model(example: dict[str, Any], title: str, extra: JsonDict | None = None) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for index, (key, value) in enumerate(example.items()):
        # Python names are synthetic so that keys like "class", "model_config" or "monthly charges" work;
        # the JSON key is the alias, used for validation, the schema and the dict handed to the pipeline.
        annotation = _annotation(value, title + _title(str(key)))
        if value is None:
            fields[f"field_{index}"] = (annotation, Field(None, alias=str(key)))
        else:
            fields[f"field_{index}"] = (annotation, Field(..., alias=str(key)))
    config = ConfigDict(strict=True, extra="forbid", title=title, json_schema_extra=extra)
    return create_model(title, __config__=config, **fields)


def _annotation(value: Any, title: str) -> Any:
    if isinstance(value, bool):
        return StrictBool
    if isinstance(value, (int, float)):
        return _NUMBER
    if isinstance(value, str):
        return StrictStr
    if isinstance(value, dict):
        return _object_model(value, title)
    if isinstance(value, list):
        kinds = {_annotation(item, title + "Item") for item in value if not isinstance(item, (dict, list))}
        if value and len(kinds) == 1 and all(not isinstance(item, (dict, list)) for item in value):
            return list[kinds.pop()]  # type: ignore[misc]
        return list[Any]
    return Any  # null: anything, null included


def _title(name: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in name).split()
    return "".join(w[:1].upper() + w[1:] for w in words) or "Payload"
