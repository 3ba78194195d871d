"""Parameters from NBSHIP_PARAM_<NAME>, type-checked against the notebook value; results made JSON-able."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel

from nbship.runtime.pipeline import StartupError, parse_parameter, to_jsonable


@pytest.mark.parametrize(
    ("raw", "default", "expected"),
    [
        ("0.7", 0.5, 0.7),
        ("3", 0.5, 3.0),
        ("12", 10, 12),
        ("yes", False, True),
        ("OFF", True, False),
        ("0", True, False),
        ("hello", "x", "hello"),
        ('["a", "b"]', ["x"], ["a", "b"]),
        ('{"k": 1}', {}, {"k": 1}),
    ],
)
def test_overrides_are_parsed_as_the_notebook_values_type(raw: str, default: Any, expected: Any) -> None:
    value = parse_parameter(raw, default, "p")
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("raw", "default"),
    [("abc", 0.5), ("1.5", 3), ("maybe", True), ('{"k": 1}', ["x"]), ("not json", {"a": 1})],
)
def test_a_value_of_the_wrong_type_stops_start_up_naming_the_parameter(raw: str, default: Any) -> None:
    with pytest.raises(StartupError, match=r"parameter threshold: expected " + type(default).__name__):
        parse_parameter(raw, default, "threshold")


class FakeArray:
    def __init__(self, values: list[float]) -> None:
        self.values = values

    def tolist(self) -> list[float]:
        return self.values


@dataclass
class Verdict:
    label: str
    scores: tuple[float, ...]


class Answer(BaseModel):
    label: str
    verdict: Verdict


def test_results_become_json_types() -> None:
    assert to_jsonable({"a": (1, FakeArray([0.5])), 2: None}) == {"a": [1, [0.5]], "2": None}
    answer = Answer(label="x", verdict=Verdict("y", (0.25,)))
    assert to_jsonable(answer) == {"label": "x", "verdict": {"label": "y", "scores": [0.25]}}
