"""The request schema: inferred from the notebook's example, or the model the notebook declares."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from nbship.runtime.schema import COMPONENT, PayloadError, build_schema, declared_model

EXAMPLE: dict[str, Any] = {
    "tenure": 12,
    "monthly charges": 70.5,
    "contract": "month-to-month",
    "paperless": True,
    "tags": ["a", "b"],
    "note": None,
    "geo": {"lat": 1.5, "lon": 2},
}


def errors_of(schema: Any, body: str) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(PayloadError) as caught:
        schema.parse(body)
    return [(tuple(e["loc"]), e["type"]) for e in caught.value.errors]


def test_a_payload_shaped_like_the_example_is_handed_over_as_a_plain_dict() -> None:
    schema = build_schema(None, EXAMPLE, "churn")
    body = (
        '{"tenure": 3.5, "monthly charges": 1, "contract": "x", "paperless": false, "tags": [],'
        ' "geo": {"lat": 0, "lon": -1.25}}'
    )
    payload = schema.parse(body)
    assert payload == {
        "tenure": 3.5,
        "monthly charges": 1,
        "contract": "x",
        "paperless": False,
        "tags": [],
        "note": None,
        "geo": {"lat": 0, "lon": -1.25},
    }
    assert type(payload["monthly charges"]) is int  # JSON numbers keep their kind


def test_violations_name_the_field_path_and_reason() -> None:
    schema = build_schema(None, EXAMPLE, "churn")
    body = (
        '{"tenure": "12", "monthly charges": true, "contract": 3, "paperless": 1, "tags": [1],'
        ' "geo": {"lat": "n"}, "typo": 1}'
    )
    assert sorted(errors_of(schema, body), key=str) == sorted(
        [
            (("body", "tenure"), "number_type"),
            (("body", "monthly charges"), "number_type"),
            (("body", "contract"), "string_type"),
            (("body", "paperless"), "bool_type"),
            (("body", "tags", 0), "string_type"),
            (("body", "geo", "lat"), "number_type"),
            (("body", "geo", "lon"), "missing"),
            (("body", "typo"), "extra_forbidden"),
        ],
        key=str,
    )


def test_malformed_json_is_a_body_level_error() -> None:
    schema = build_schema(None, EXAMPLE, "churn")
    assert errors_of(schema, '{"tenure": ') == [(("body",), "json_invalid")]


def test_keys_that_are_not_python_names_or_clash_with_pydantic_work() -> None:
    schema = build_schema(None, {"class": "a", "model_config": 1, "_private": True, "2x": [1.0]}, "odd")
    assert schema.parse('{"class": "b", "model_config": 2, "_private": false, "2x": [3]}') == {
        "class": "b",
        "model_config": 2,
        "_private": False,
        "2x": [3],
    }


def test_a_non_object_example_and_no_example() -> None:
    rows = build_schema(None, [[1.0, 2.0]], "rows")
    assert rows.parse("[[3, 4.5]]") == [[3, 4.5]]
    assert errors_of(rows, '{"a": 1}') == [(("body",), "list_type")]
    anything = build_schema(None, None, "free")
    assert anything.parse('{"whatever": [1, "x"]}') == {"whatever": [1, "x"]}


def test_the_openapi_component_carries_fields_types_and_the_example() -> None:
    components = build_schema(None, EXAMPLE, "churn").openapi_components()
    request = components[COMPONENT]
    assert request["examples"] == [EXAMPLE]
    assert request["properties"]["tenure"]["type"] == "number"
    assert request["properties"]["paperless"]["type"] == "boolean"
    assert request["properties"]["tags"] == {"items": {"type": "string"}, "title": "Tags", "type": "array"}
    assert set(request["required"]) == set(EXAMPLE) - {"note"}
    assert request["additionalProperties"] is False
    nested = request["properties"]["geo"]["$ref"].rsplit("/", 1)[1]
    assert components[nested]["required"] == ["lat", "lon"]


class Customer(BaseModel):
    tenure: int
    plan: str = "basic"


def preprocess_declared(payload: Customer) -> list[int]:
    return [payload.tenure]


def preprocess_plain(payload: dict[str, Any]) -> list[Any]:
    return list(payload.values())


def test_a_declared_model_is_found_and_the_pipeline_gets_its_instance() -> None:
    model = declared_model([preprocess_declared])
    assert model is Customer
    schema = build_schema(model, {"tenure": 3}, "churn")
    value = schema.parse('{"tenure": 7}')
    assert isinstance(value, Customer) and value.plan == "basic"
    assert errors_of(schema, '{"tenure": "many"}') == [(("body", "tenure"), "int_parsing")]
    assert schema.openapi_components()[COMPONENT]["title"] == "Customer"


def test_only_the_first_real_stage_can_declare() -> None:
    assert declared_model([preprocess_plain, preprocess_declared]) is None
    assert declared_model([lambda payload: payload]) is None


def test_a_string_annotation_is_resolved() -> None:
    namespace: dict[str, Any] = {"Customer": Customer}
    exec("def predict(x: 'Customer'):\n    return x", namespace)
    assert declared_model([namespace["predict"]]) is Customer
