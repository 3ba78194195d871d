"""Adaptive batching: waiting requests merged into one predict call, admission by time, and the check-time proof."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nbship.runtime.batching import Batcher, variants
from nbship.runtime.executor import Overloaded, PredictionPool
from nbship.runtime.manifest import read_manifest
from nbship.runtime.pipeline import Pipeline
from tests.batching_notebooks import INDEPENDENT, ONE_ROW, ROW_DEPENDENT, rows_notebook


def rows_pipeline(calls: list[int], gate: threading.Event | None = None) -> Pipeline:
    """x → 2x through a predict over numpy rows; ``calls`` records each predict call's row count."""

    def predict(rows: Any) -> Any:
        calls.append(len(rows))
        if gate is not None:
            gate.wait(5)
        if np.isnan(rows).any():
            raise ValueError("NaN row")
        return rows[:, 0] * 2

    return Pipeline(
        manifest=None,  # type: ignore[arg-type]
        preprocess=lambda payload: np.array([[float(payload)]]),
        predict=predict,
        postprocess=lambda output: float(output[0]),
        load_seconds=0.0,
    )


def test_one_bad_payload_fails_alone_and_the_others_keep_their_answers() -> None:
    calls: list[int] = []
    batcher = Batcher(rows_pipeline(calls), lambda answer: answer, enabled=True)
    far = time.monotonic() + 60
    results = batcher([1, 2, float("nan"), 4], [far] * 4)
    assert results[:2] == [2.0, 4.0] and results[3] == 8.0
    assert isinstance(results[2], ValueError)
    assert calls == [4, 1, 1, 1, 1]  # the batched call raised: each payload ran alone


def test_disabled_batching_calls_predict_once_per_payload() -> None:
    calls: list[int] = []
    batcher = Batcher(rows_pipeline(calls), lambda answer: answer, enabled=False)
    assert batcher([1, 2, 3], [time.monotonic() + 60] * 3) == [2.0, 4.0, 6.0]
    assert calls == [1, 1, 1]


def test_requests_waiting_for_a_worker_go_through_one_predict_call() -> None:
    calls: list[int] = []
    gate = threading.Event()
    batcher = Batcher(rows_pipeline(calls, gate), lambda answer: answer, enabled=True)
    sizes: list[int] = []

    class Observer:
        def observe_batch(self, payloads: int) -> None:
            sizes.append(payloads)

        def observe_wait(self, seconds: float) -> None:
            pass

    async def scenario() -> list[Any]:
        pool = PredictionPool(1, None, max_batch_size=32, observer=Observer())
        first = asyncio.ensure_future(pool.run_batch(batcher, [1], 5))
        await asyncio.sleep(0.1)  # the worker is on the first request; the next six wait
        rest = [asyncio.ensure_future(pool.run_batch(batcher, [n], 5)) for n in range(2, 7)]
        many = asyncio.ensure_future(pool.run_batch(batcher, [10, 11], 5))  # a /predict/batch request
        await asyncio.sleep(0.1)
        gate.set()
        answers = await asyncio.gather(first, *rest, many)
        pool.close()
        return answers

    answers = asyncio.run(scenario())
    assert answers == [[2.0], [4.0], [6.0], [8.0], [10.0], [12.0], [20.0, 22.0]]
    assert calls == [1, 7] and sizes == [1, 7]  # never waits to fill: the lone first request went alone


def test_a_batch_is_capped_at_max_batch_size() -> None:
    calls: list[int] = []
    gate = threading.Event()
    batcher = Batcher(rows_pipeline(calls, gate), lambda answer: answer, enabled=True)

    async def scenario() -> None:
        pool = PredictionPool(1, None, max_batch_size=3)
        tasks = [asyncio.ensure_future(pool.run_batch(batcher, [n], 5)) for n in range(8)]
        await asyncio.sleep(0.1)
        gate.set()
        assert [a[0] for a in await asyncio.gather(*tasks)] == [2.0 * n for n in range(8)]
        pool.close()

    asyncio.run(scenario())
    assert sum(calls) == 8 and max(calls) == 3 and len(calls) >= 3


def test_admission_follows_the_measured_time_and_refuses_real_overload_with_retry_after() -> None:
    async def scenario() -> tuple[int, int, int]:
        pool = PredictionPool(1, None, budget_seconds=1.0)
        pool.seed(0.25)  # as the warm-up would: 0.25 s per payload, one worker
        release = threading.Event()
        tasks = [asyncio.ensure_future(pool.run(lambda _: release.wait(5), None, 10)) for _ in range(3)]
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded) as refused:  # 0.25 + 4 × 0.25 > 1 s (the third: 0.25 + 3 × 0.25)
            await pool.run(lambda x: x, 1, 10)
        release.set()
        await asyncio.gather(*tasks)
        pool.close()
        return len(tasks), refused.value.retry_after, pool.admitted

    admitted, retry_after, left = asyncio.run(scenario())
    assert admitted == 3 and retry_after >= 1 and left == 0


def test_variants_change_numbers_then_texts() -> None:
    example = {"n": 3, "f": 1.5, "on": True, "text": "hi", "rows": [1.0]}
    assert variants(example, 1) == {"n": 4, "f": 1.5 * 1.37 + 0.5, "on": True, "text": "hi", "rows": [1.87]}
    assert variants(example, 5) == {**example, "text": "hi hi hi"}


def check_batching(folder: Path, body: str, answer: float) -> Any:
    from nbship.project import check_notebook

    result = check_notebook(rows_notebook(folder, body, answer))
    assert result.spec is not None and not result.errors  # not batchable is a note, not a finding
    return result.spec.batching


def test_check_proves_a_row_wise_predict_batchable_and_the_manifest_records_it(tmp_path: Path) -> None:
    from nbship.project import render_project

    batching = check_batching(tmp_path / "ok", INDEPENDENT, 3.0)
    assert batching.enabled and batching.sizes == (1, 2, 7)
    render_project(tmp_path / "ok" / "rows.ipynb", tmp_path / "ctx", lock=False)
    manifest = read_manifest(tmp_path / "ctx")
    # one worker by default: the waiting requests share its call, where more threads would split the batch
    assert manifest.batching.enabled and manifest.service.max_concurrency == 1


def test_a_predict_whose_rows_depend_on_each_other_is_not_batched(tmp_path: Path) -> None:
    batching = check_batching(tmp_path / "dep", ROW_DEPENDENT, 0.0)
    assert not batching.enabled
    assert "rows depend on the others" in batching.note and "in a batch of 2" in batching.note


def test_a_predict_answering_another_number_of_rows_is_not_batched(tmp_path: Path) -> None:
    batching = check_batching(tmp_path / "one", ONE_ROW, 3.0)
    assert not batching.enabled and "predict returned 1 rows for a batch of 2 rows" in batching.note


def test_server_batching_false_turns_it_off(tmp_path: Path) -> None:
    from nbship.project import render_project

    notebook = rows_notebook(tmp_path / "off", INDEPENDENT, 3.0, config="server:\n  batching: false\n")
    render_project(notebook, tmp_path / "ctx", lock=False, verify=False)
    off = read_manifest(tmp_path / "ctx")
    assert off.batching.note == "turned off by server.batching: false" and off.service.max_concurrency == 4
    render_project(rows_notebook(tmp_path / "on", INDEPENDENT, 3.0), tmp_path / "ctx2", lock=False, verify=False)
    assert read_manifest(tmp_path / "ctx2").batching.note.startswith("not proven")


def test_a_configured_worker_count_holds_with_batching_proven(tmp_path: Path) -> None:
    from nbship.project import render_project

    notebook = rows_notebook(tmp_path / "nb", INDEPENDENT, 3.0, config="server:\n  max_concurrency: 3\n")
    render_project(notebook, tmp_path / "ctx", lock=False)
    manifest = read_manifest(tmp_path / "ctx")
    assert manifest.batching.enabled and manifest.service.max_concurrency == 3
