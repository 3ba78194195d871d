"""Issue 13 point 5: NaN and Infinity answer 422 naming the field; a deeply nested body answers 422, not 500."""

from __future__ import annotations

import httpx
import pytest

from tests.security.conftest import Serve

pytestmark = pytest.mark.slow
JSON = {"content-type": "application/json"}


def model_errors(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("nbship_prediction_errors_total") and 'kind="exception"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no prediction error counter")


def test_nan_and_infinity_are_422_naming_the_field_not_model_errors(serve: Serve) -> None:
    service = serve()
    with httpx.Client(base_url=service.url, timeout=10) as client:
        single = client.post("/predict", content=b'{"x": NaN, "y": 2, "mode": "ok", "delay": 0}', headers=JSON)
        infinite = client.post("/predict", content=b'{"x": 1, "y": -Infinity, "mode": "ok", "delay": 0}', headers=JSON)
        overflow = client.post("/predict", content=b'{"x": 1e999, "y": 2, "mode": "ok", "delay": 0}', headers=JSON)
        batch = client.post("/predict/batch", content=b'[{"x": 1, "y": 2, "mode": "ok", "delay": 0},'
                                                        b' {"x": 1, "y": 2, "mode": "ok", "delay": Infinity}]',
                            headers=JSON)
        v2 = client.post("/v2/models/toy/infer", headers=JSON, content=b'{"inputs": [{"name": "payload", "shape": [1], '
                         b'"datatype": "JSON", "data": [{"x": 1, "y": NaN, "mode": "ok", "delay": 0}]}]}')
        errors = model_errors(client)
    assert single.status_code == 422
    assert single.json()["detail"] == [
        {"loc": ["body", "x"], "msg": "Input should be a finite number (got NaN)", "type": "finite_number"}]
    assert infinite.status_code == 422 and infinite.json()["detail"][0]["loc"] == ["body", "y"]
    assert overflow.status_code == 422 and overflow.json()["detail"][0]["loc"] == ["body", "x"]
    items = batch.json()["items"]
    assert items[0]["status"] == 200
    assert items[1] == {"status": 422, "detail": [{
        "loc": ["body", 1, "delay"], "msg": "Input should be a finite number (got Infinity)", "type": "finite_number"}]}
    assert v2.status_code == 400
    assert "element 0: body.y: Input should be a finite number (got NaN)" in v2.json()["error"]
    assert errors == 0  # nothing reached the model, so no alert on model errors


@pytest.mark.parametrize("path", ["/predict/batch", "/predict", "/v2/models/toy/infer"])
def test_a_deeply_nested_body_is_422_or_400_not_500(serve: Serve, path: str) -> None:
    service = serve(max_body_bytes=1024 * 1024)
    deep = b"[" * 100_000 + b"]" * 100_000
    nested_item = b"[" + b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b', "y": 1, "mode": "ok", "delay": 0}]'
    with httpx.Client(base_url=service.url, timeout=10) as client:
        answers = [client.post(path, content=body, headers=JSON) for body in (deep, nested_item)]
        alive = client.get("/healthz")
    expected = 400 if path.startswith("/v2") else 422
    for answer in answers:
        assert answer.status_code in (expected, 200), answer.text[:300]
        if answer.status_code == 200:  # the batch answers the nested item on its own
            assert answer.json()["items"][0]["status"] == 422
    assert alive.status_code == 200
