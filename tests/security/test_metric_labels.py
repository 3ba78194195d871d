"""Issue 13 point 3: clients cannot create metric series: every label value comes from a closed set."""

from __future__ import annotations

import httpx
import pytest

from tests.security.conftest import Serve

pytestmark = pytest.mark.slow
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def series(client: httpx.Client) -> set[str]:
    return {line.split(" ")[0] for line in client.get("/metrics").text.splitlines() if not line.startswith("#")}


def test_made_up_methods_and_paths_add_no_series(serve: Serve) -> None:
    service = serve()
    with httpx.Client(base_url=service.url, timeout=10) as client:
        client.request("PURGE", "/predict")
        client.request("PURGE", "/made-up")
        client.get("/nowhere")
        series(client)
        before = series(client)
        for i in range(5):
            client.request(f"FOO{i}", "/predict")
            client.request("PURGE", f"/made-up/{i}")
            client.get(f"/nowhere-{i}")
        after = series(client)
        text = client.get("/metrics").text
    assert after == before
    labels = [part for line in text.splitlines() for part in line.split(",")]
    methods = {label.split('"')[1] for label in labels if label.startswith("method=")}
    assert methods <= METHODS | {"other"} and "other" in methods
    assert not any(name in text for name in ("PURGE", "FOO0", "made-up", "nowhere-"))
