"""Running predictions: a fixed set of worker threads, a bounded queue, and a deadline per request.

The event loop never runs notebook code: each prediction goes to one of ``max_concurrency`` worker threads;
at most ``queue_size`` more may wait; beyond that a request is refused at once (503, ``Retry-After``) rather
than waiting without bound. A request that misses its deadline answers 504 and the loop moves on.

A Python thread cannot be killed, so a timed-out prediction *keeps its slot until it really ends*: admission
counts it as running, the queue shrinks accordingly, and a model that hangs shows up as 503s and a busy-slots
gauge instead of an ever-growing set of threads competing for the same cores (which would make every other
request slower and hide the problem). A prediction still waiting in the queue when its deadline passes is
cancelled and never runs. Workers are daemon threads, so a runaway prediction cannot hold the process past
shutdown. ``stalled_seconds`` tells liveness how long *every* worker has been stuck on its current job.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class Overloaded(Exception):
    """Every worker is busy and the queue is full."""


class PredictionTimeout(Exception):
    """The prediction did not finish before its deadline (it may still be running in its worker)."""


_Job = tuple["Future[Any]", Callable[[Any], Any], Any]


class PredictionPool:
    """``max_concurrency`` worker threads and room for ``queue_size`` waiting jobs."""

    def __init__(self, max_concurrency: int, queue_size: int) -> None:
        self.max_concurrency = max_concurrency
        self.capacity = max_concurrency + queue_size
        self.admitted = 0  # running + waiting; touched only on the event-loop thread
        self.busy = 0  # jobs executing now, timed-out ones included
        self._since: list[float | None] = [None] * max_concurrency  # when each worker began its current job
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"nbship-predict-{i}", daemon=True)
            for i in range(max_concurrency)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def waiting(self) -> int:
        return max(self.admitted - self.busy, 0)

    def stalled_seconds(self) -> float:
        """How long every worker has been on its current job (the youngest job's age); 0 while one is free."""
        started = list(self._since)
        if not started or any(since is None for since in started):
            return 0.0
        return time.monotonic() - max(since for since in started if since is not None)

    async def run(self, function: Callable[[Any], Any], argument: Any, timeout: float | None) -> Any:
        """Run ``function(argument)`` on a worker; return its result or raise its exception.

        Raises:
            Overloaded: no free worker and no room in the queue.
            PredictionTimeout: not done within ``timeout`` seconds (queue wait included).
        """
        if self.admitted >= self.capacity:
            raise Overloaded()
        future: Future[Any] = Future()
        self.admitted += 1
        self._jobs.put((future, function, argument))
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except asyncio.TimeoutError:
            self._abandon(future)
            raise PredictionTimeout() from None
        except asyncio.CancelledError:  # the request task itself was cancelled (server shutdown)
            self._abandon(future)
            raise
        except BaseException:
            self._release()  # the job ended with an exception: its slot is free
            raise
        # Released here, on the loop, rather than from the worker: one loop wake-up per prediction, not two.
        self._release()
        return result

    def _abandon(self, future: Future[Any]) -> None:
        """Stop waiting for ``future``: a queued job never runs; a running one keeps its slot until it ends."""
        if future.cancel():
            self._release()
            return
        loop = asyncio.get_running_loop()

        def release(_: Future[Any]) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the process is exiting
                loop.call_soon_threadsafe(self._release)

        future.add_done_callback(release)  # runs at once if it has just finished

    def _release(self) -> None:
        self.admitted -= 1

    def _work(self, index: int) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, function, argument = job
            if not future.set_running_or_notify_cancel():
                continue
            with self._lock:
                self.busy += 1
                self._since[index] = time.monotonic()
            try:
                result = function(argument)
            except BaseException as e:  # handed to the awaiting request, which maps it to a 500
                future.set_exception(e)
            else:
                future.set_result(result)
            finally:
                with self._lock:
                    self.busy -= 1
                    self._since[index] = None

    def close(self) -> None:
        """Let idle workers exit; busy ones finish their job first."""
        for _ in self._threads:
            self._jobs.put(None)
