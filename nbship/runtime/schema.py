"""Request schema of the service: the notebook's declared pydantic model, else one inferred from ``example``.

A model is *declared* when the first parameter of ``preprocess`` (or of ``predict`` when there is no
preprocess stage) is annotated with a ``BaseModel`` subclass; the pipeline then receives the model instance.
Otherwise the schema is inferred from ``example.request``: field names and JSON types (number, string,
boolean, array, object, null), strict, no extra fields; the pipeline receives a plain dict, as in the notebook.
"""

from __future__ import annotations

import inspect
import json
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


def _number(value: Any) -> Any:
    # JSON has one number type: accept both, keep ints ints and floats floats, refuse booleans.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("number_type", "Input should be a number")
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
        try:
            value = self.model.model_validate_json(body)
        except ValidationError as e:
            raise PayloadError(describe(e)) from None
        if self.declared:
            return value
        return value.model_dump(by_alias=True)

    def parse_value(self, value: Any) -> Any:
        """As ``parse`` for an already-decoded item (a batch element), with JSON-mode validation semantics.

        Raises:
            PayloadError: as ``parse``.
        """
        return self.parse(json.dumps(value))

    def openapi_components(self) -> dict[str, Any]:
        """The request schema and its nested definitions, keyed for ``#/components/schemas``."""
        schema = self.model.model_json_schema(ref_template="#/components/schemas/{model}")
        components: dict[str, Any] = dict(schema.pop("$defs", {}))
        components[COMPONENT] = schema
        return components


def describe(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as ``{"loc": ["body", …], "msg", "type"}``, the shape FastAPI clients already parse."""
    return [
        {"loc": ["body", *item["loc"]], "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False, include_input=False)
    ]


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
