"""The prediction pool: bounded admission, deadlines, and honest slot accounting after a timeout."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from nbship.runtime.executor import Overloaded, PredictionPool, PredictionTimeout


def test_beyond_running_plus_queued_requests_are_refused_at_once() -> None:
    async def scenario() -> list[str]:
        pool = PredictionPool(max_concurrency=1, queue_size=1)
        release = threading.Event()

        async def one() -> str:
            try:
                return str(await pool.run(lambda _: release.wait(5) and "done", None, 5))
            except Overloaded:
                return "refused"

        tasks = [asyncio.ensure_future(one()) for _ in range(3)]
        await asyncio.sleep(0.05)
        release.set()
        outcome = await asyncio.gather(*tasks)
        pool.close()
        return outcome

    assert sorted(asyncio.run(scenario())) == ["done", "done", "refused"]


def test_a_timed_out_prediction_keeps_its_slot_until_it_really_ends() -> None:
    async def scenario() -> None:
        pool = PredictionPool(max_concurrency=1, queue_size=0)
        release = threading.Event()
        started = time.monotonic()
        with pytest.raises(PredictionTimeout):
            await pool.run(lambda _: release.wait(5), None, 0.1)
        assert time.monotonic() - started < 1  # the caller is answered at the deadline
        assert pool.busy == 1
        with pytest.raises(Overloaded):  # the worker is still busy: no second thread is started
            await pool.run(lambda x: x, 1, 1)
        release.set()
        for _ in range(100):
            if pool.admitted == 0:
                break
            await asyncio.sleep(0.01)
        assert await pool.run(lambda x: x + 1, 1, 1) == 2
        pool.close()

    asyncio.run(scenario())


def test_a_queued_prediction_past_its_deadline_never_runs() -> None:
    async def scenario() -> list[int]:
        pool = PredictionPool(max_concurrency=1, queue_size=1)
        release = threading.Event()
        ran: list[int] = []
        blocker = asyncio.ensure_future(pool.run(lambda _: release.wait(5), None, 5))
        await asyncio.sleep(0.02)
        with pytest.raises(PredictionTimeout):
            await pool.run(ran.append, 1, 0.05)
        release.set()
        await blocker
        await asyncio.sleep(0.05)
        pool.close()
        return ran

    assert asyncio.run(scenario()) == []


def test_exceptions_reach_the_caller() -> None:
    async def scenario() -> None:
        pool = PredictionPool(max_concurrency=1, queue_size=0)
        with pytest.raises(ZeroDivisionError):
            await pool.run(lambda x: x / 0, 1, 1)
        assert await pool.run(lambda x: x * 2, 2, 1) == 4
        pool.close()

    asyncio.run(scenario())


def test_stalled_seconds_counts_only_while_every_worker_is_busy() -> None:
    async def scenario() -> tuple[float, float, float, float]:
        pool = PredictionPool(max_concurrency=2, queue_size=0)
        release = threading.Event()
        first = asyncio.ensure_future(pool.run(lambda _: release.wait(5), None, 5))
        await asyncio.sleep(0.2)
        one_busy = pool.stalled_seconds()
        submitted = time.monotonic()
        second = asyncio.ensure_future(pool.run(lambda _: release.wait(5), None, 5))
        await asyncio.sleep(0.3)
        both_busy = pool.stalled_seconds()
        since_second = time.monotonic() - submitted
        release.set()
        await asyncio.gather(first, second)
        after = pool.stalled_seconds()
        pool.close()
        return one_busy, both_busy, since_second, after

    one_busy, both_busy, since_second, after = asyncio.run(scenario())
    assert one_busy == 0.0 and after == 0.0
    # the younger job's age: at most the time since it was submitted, while the older job is 0.2 s older than that
    # (bounds from clocks, not sleeps, so a loaded machine cannot fail it)
    assert 0.0 < both_busy <= since_second
