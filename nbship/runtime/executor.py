"""Running predictions: a fixed set of worker threads, admission bounded by time, and a deadline per request.

The event loop never runs notebook code: each prediction goes to one of ``max_concurrency`` worker threads.
Admission is measured in time: a request is refused at once (503, ``Retry-After``) when the measured time per
payload says it would wait for a worker longer than ``budget_seconds`` (half its deadline, by the service),
rather than queue until it answers 504; ``queue_size``, when set, is a hard cap on waiting requests as well.
A request that misses its deadline answers 504 and the loop moves on.

Adaptive batching (``run_batch``): a worker that frees up takes the request at the head of the queue and,
behind it, every waiting request for the same ``Batcher`` (up to ``max_batch_size`` payloads), and hands all
their payloads to one call; it never waits for more to arrive, so a lone request is answered as soon as alone.

A Python thread cannot be killed, so a timed-out prediction *keeps its slot until it really ends*: admission
counts it as running, and a model that hangs shows up as 503s and a busy-slots gauge instead of an
ever-growing set of threads competing for the same cores. A prediction still waiting in the queue when its
deadline passes is cancelled and never runs. Workers are daemon threads, so a runaway prediction cannot hold
the process past shutdown. ``stalled_seconds`` tells liveness how long *every* worker has been stuck.

Hand-offs are kept to one per batch in each direction: a request waits on a plain asyncio future of its own loop
(no ``concurrent.futures`` chaining, no task per request), and a worker wakes the loop once for a whole batch
(``call_soon_threadsafe``), which answers and frees every request of that batch in one callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

_SMOOTHING = 0.2  # weight of the newest cycle in the running averages of time per payload and per cycle


class Overloaded(Exception):
    """No room: the expected wait exceeds the budget, or the queue cap is reached."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(f"overloaded; retry after {retry_after} s")
        self.retry_after = retry_after


class PredictionTimeout(Exception):
    """The prediction did not finish before its deadline (it may still be running in its worker)."""


class BatchFunction(Protocol):
    enabled: bool  # whether requests may be merged into one call

    def __call__(self, payloads: Sequence[Any], deadlines: Sequence[float]) -> list[Any]: ...


class BatchObserver(Protocol):
    def observe_batch(self, payloads: int) -> None: ...

    def observe_wait(self, seconds: float) -> None: ...


_QUEUED, _RUNNING, _CANCELLED = 0, 1, 2


@dataclass(eq=False)
class _Job:
    waiter: asyncio.Future[Any]  # of the request's loop: set only on that loop
    function: Callable[..., Any]
    argument: Any
    size: int  # payloads: 1 for a plain job
    batch: bool  # called as function(payloads, deadlines), answering one result per payload
    merge: bool  # may share a call with other waiting jobs of the same function
    deadline: float
    enqueued: float = field(default_factory=time.monotonic)
    state: int = _QUEUED  # _QUEUED → _RUNNING (a worker took it) or _CANCELLED (its deadline passed first)


class PredictionPool:
    """``max_concurrency`` worker threads; admission by expected wait, optionally capped by ``queue_size``."""

    def __init__(self, max_concurrency: int, queue_size: int | None, *, budget_seconds: float | None = None,
                 max_batch_size: int = 1, observer: BatchObserver | None = None) -> None:
        self.max_concurrency = max_concurrency
        self.capacity = None if queue_size is None else max_concurrency + queue_size
        self.budget_seconds = budget_seconds
        self.max_batch_size = max_batch_size
        self.observer = observer
        self.admitted = 0  # requests running + waiting; touched only on the event-loop thread
        self.admitted_payloads = 0  # their payloads (a /predict/batch request counts each item)
        self.busy = 0  # workers executing now, timed-out jobs included
        self.running = 0  # requests executing now
        self.seconds_per_payload = 0.0  # running averages over the workers' cycles (wall time)
        self.seconds_per_cycle = 0.0
        self._measured = False  # a real cycle has replaced the seed
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
        return max(self.admitted - self.running, 0)

    def seed(self, seconds_per_payload: float) -> None:
        """Start the averages from a measurement (the warm-up prediction) until the first cycle is measured."""
        if self.seconds_per_payload == 0.0:
            self.seconds_per_payload = self.seconds_per_cycle = seconds_per_payload

    def expected_wait(self, payloads: int) -> float:
        """Seconds until ``payloads`` more would be answered, from the measured times and what is admitted."""
        backlog = self.admitted_payloads + payloads
        return self.seconds_per_cycle + backlog * self.seconds_per_payload / self.max_concurrency

    def stalled_seconds(self) -> float:
        """How long every worker has been on its current job (the youngest job's age); 0 while one is free."""
        started = list(self._since)
        if not started or any(since is None for since in started):
            return 0.0
        return time.monotonic() - max(since for since in started if since is not None)

    async def run(self, function: Callable[[Any], Any], argument: Any, timeout: float | None) -> Any:
        """Run ``function(argument)`` on a worker; return its result or raise its exception.

        Raises:
            Overloaded: no room (see the class).
            PredictionTimeout: not done within ``timeout`` seconds (queue wait included).
        """
        return await self._submit(function, argument, 1, False, False, timeout)

    async def run_batch(self, function: BatchFunction, payloads: list[Any], timeout: float) -> list[Any]:
        """``function(payloads, deadlines)`` on a worker, merged with other waiting requests for ``function``
        when it is ``enabled``; per payload, its answer or exception.

        Raises:
            Overloaded, PredictionTimeout: as ``run``.
        """
        result: list[Any] = await self._submit(function, payloads, len(payloads), True, function.enabled, timeout)
        return result

    async def _submit(self, function: Callable[..., Any], argument: Any, size: int, batch: bool, merge: bool,
                      timeout: float | None) -> Any:
        if self.capacity is not None and self.admitted >= self.capacity:
            raise Overloaded()
        if self.budget_seconds is not None and self.admitted:
            wait = self.expected_wait(size)
            if wait > self.budget_seconds:
                raise Overloaded(min(max(math.ceil(wait - self.budget_seconds), 1), 60))
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + (timeout if timeout is not None else math.inf)
        job = _Job(loop.create_future(), function, argument, size, batch, merge, deadline)
        self.admitted += 1
        self.admitted_payloads += size
        self._jobs.put(job)
        timer = loop.call_later(timeout, self._expire, job) if timeout is not None else None
        try:
            return await job.waiter
        except asyncio.CancelledError:  # the request task itself was cancelled (server shutdown)
            self._cancel(job)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _expire(self, job: _Job) -> None:
        """On the loop, at the job's deadline: it answers ``PredictionTimeout``; a queued job never runs."""
        if not job.waiter.done():
            job.waiter.set_exception(PredictionTimeout())
            self._cancel(job)

    def _cancel(self, job: _Job) -> None:
        """A queued job is dropped and frees its slot now; a running one keeps its slot until it ends."""
        with self._lock:
            queued = job.state == _QUEUED
            if queued:
                job.state = _CANCELLED
        if queued:
            self._release(job.size)

    def _deliver(self, outcomes: list[tuple[_Job, bool, Any]]) -> None:
        """On the loop, once per batch: each job's result (or exception) to its request, and its slot freed."""
        for job, ok, value in outcomes:
            self._release(job.size)
            if job.waiter.done():  # answered 504 already, or its request was cancelled
                continue
            if ok:
                job.waiter.set_result(value)
            else:
                job.waiter.set_exception(value)

    def _release(self, size: int) -> None:
        self.admitted -= 1
        self.admitted_payloads -= size

    def _start(self, job: _Job) -> bool:
        """Claim ``job`` for a worker; False when its deadline cancelled it while queued."""
        with self._lock:
            if job.state != _QUEUED:
                return False
            job.state = _RUNNING
            return True

    def _take(self, first: _Job) -> tuple[list[_Job], _Job | None]:
        """``first`` and the waiting jobs for the same function behind it, up to ``max_batch_size`` payloads;
        and the job taken that does not fit (this worker runs it next)."""
        jobs, payloads = [first], first.size
        while payloads < self.max_batch_size:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None or not job.merge or job.function is not first.function \
                    or payloads + job.size > self.max_batch_size:
                return jobs, job
            if self._start(job):
                jobs.append(job)
                payloads += job.size
        return jobs, None

    def _work(self, index: int) -> None:
        carried: _Job | None = None
        has_carried = False
        while True:
            job = carried if has_carried else self._jobs.get()
            carried, has_carried = None, False
            if job is None:
                return
            if not self._start(job):
                continue
            jobs = [job]
            if job.merge:
                jobs, carried = self._take(job)
                has_carried = carried is not None
            started = time.monotonic()
            with self._lock:
                self.busy += 1
                self.running += len(jobs)
                self._since[index] = started
            try:
                self._execute(jobs, started)
            finally:
                ended = time.monotonic()
                payloads = sum(j.size for j in jobs)
                with self._lock:
                    self.busy -= 1
                    self.running -= len(jobs)
                    self._since[index] = None
                    cycle = ended - started
                    weight = _SMOOTHING if self._measured else 1.0  # the first cycle replaces the warm-up's seed
                    self._measured = True
                    self.seconds_per_cycle += weight * (cycle - self.seconds_per_cycle)
                    self.seconds_per_payload += weight * (cycle / max(payloads, 1) - self.seconds_per_payload)
            # Hand the GIL to the event loop before taking more: it answers this batch and reads the requests that
            # arrived meanwhile, so they join the next batch instead of the one after (a yield, not a wait).
            time.sleep(0)

    def _execute(self, jobs: list[_Job], started: float) -> None:
        observer = self.observer
        first = jobs[0]
        if observer is not None and first.batch:
            observer.observe_batch(sum(j.size for j in jobs))
            for job in jobs:
                observer.observe_wait(started - job.enqueued)
        outcomes: list[tuple[_Job, bool, Any]]
        try:
            if first.batch:
                payloads = [p for job in jobs for p in job.argument]
                deadlines = [job.deadline for job in jobs for _ in range(job.size)]
                results = first.function(payloads, deadlines)
                outcomes, start = [], 0
                for job in jobs:
                    outcomes.append((job, True, results[start:start + job.size]))
                    start += job.size
            else:
                outcomes = [(first, True, first.function(first.argument))]
        except BaseException as e:  # handed to the awaiting requests, which map it to a 500
            outcomes = [(job, False, e) for job in jobs]
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, bool, Any]]] = {}
        for outcome in outcomes:  # one loop in a service; tests may run several
            by_loop.setdefault(outcome[0].waiter.get_loop(), []).append(outcome)
        for loop, delivered in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: the process is exiting, nobody waits
                loop.call_soon_threadsafe(self._deliver, delivered)

    def close(self) -> None:
        """Let idle workers exit; busy ones finish their job first."""
        for _ in self._threads:
            self._jobs.put(None)
