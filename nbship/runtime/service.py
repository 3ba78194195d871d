"""The serving core behind every route: start-up (load + warm-up), readiness, and predictions with their errors.

Routes (``app.py``, ``kserve.py``) only translate HTTP to these calls; every outcome other than a result is a
``Refusal`` carrying the HTTP status, so ``/predict``, ``/predict/batch`` and the V2 ``infer`` endpoint fail alike.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .batch_metrics import BatchMetrics
from .batching import Batcher
from .executor import Overloaded, PredictionPool, PredictionTimeout
from .logs import SERVICE
from .manifest import Manifest, ServiceEntry
from .metrics import Metrics
from .pipeline import Pipeline, load_pipeline, to_jsonable
from .provenance import CellLocator, summary
from .schema import PayloadError, RequestSchema, build_schema, declared_model
from .signals import PredictionSignals

log = logging.getLogger(SERVICE)
# Liveness fails once every worker has been on its current prediction this many times the deadline: the
# requests have long been answered 504, nothing frees a worker but a restart, and readiness alone would
# leave the pod answering 503 for ever.
STALLED_FACTOR = 3
# A request is admitted while the measured time per payload says it would start within this share of its
# deadline; beyond, it is refused at once (503, Retry-After) rather than queued to answer 504.
ADMISSION_SHARE = 0.5


class Refusal(Exception):
    """A request answered with an error status instead of a prediction."""

    def __init__(self, status: int, detail: Any, *, retry_after: int | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


@dataclass
class Service:
    root: Path
    manifest: Manifest
    settings: ServiceEntry  # the manifest's service section: limits, deadlines, logging
    metrics: Metrics
    pool: PredictionPool
    locator: CellLocator
    pipeline: Pipeline | None = None
    schema: RequestSchema | None = None
    ready: bool = False
    draining: bool = False
    lock_sha256: str | None = field(default=None)
    signals: PredictionSignals | None = field(default=None)
    batch_metrics: BatchMetrics | None = field(default=None)
    batcher: Batcher | None = field(default=None)

    @classmethod
    def create(cls, root: Path, manifest: Manifest) -> Service:
        settings = manifest.service
        metrics = Metrics(manifest.name, manifest.version)
        batch_metrics = BatchMetrics(metrics.base, manifest.batching.enabled)
        pool = PredictionPool(
            settings.max_concurrency, settings.queue_size,
            budget_seconds=settings.predict_timeout_seconds * ADMISSION_SHARE,
            max_batch_size=settings.max_batch_size, observer=batch_metrics,
        )
        service = cls(root, manifest, settings, metrics, pool, CellLocator(root, manifest))
        service.signals = PredictionSignals(manifest.name, manifest.version, list(manifest.signals))
        service.batch_metrics = batch_metrics
        metrics.add_gauge("nbship_ready", "1 when loaded, warmed up and not shutting down.", lambda: int(service.ready))
        metrics.add_gauge("nbship_predictions_running", "Worker threads busy (timed-out ones included).",
                          lambda: pool.busy)
        metrics.add_gauge("nbship_predictions_queued", "Predictions waiting for a worker.", lambda: pool.waiting)
        return service

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def example_request(self) -> Any:
        return self.manifest.example.request if self.manifest.example else None

    def start(self) -> None:
        """Run the load cells once, then one warm-up prediction on the example; then the service is ready.

        Raises:
            Exception: whatever start-up raised, after logging it with its notebook cell and line.
        """
        stage = "loading the model"
        try:
            self.pipeline = pipeline = load_pipeline(self.root)
            self.batcher = self._batcher(pipeline)  # before the schema: a request parsed has a batcher to go to
            self.metrics.load_seconds = pipeline.load_seconds
            first = [pipeline.preprocess] if self.manifest.stages.get("preprocess") else []
            declared = declared_model([*first, pipeline.predict])
            self.schema = schema = build_schema(declared, self.example_request, self.name)
            warmup = 0.0
            if self.example_request is not None:
                stage = "the warm-up prediction on the notebook's example"
                started = time.perf_counter()
                pipeline(schema.parse_value(self.example_request))
                warmup = self.metrics.warmup_seconds = time.perf_counter() - started
                self.pool.seed(warmup)
        except Exception as e:
            where = self.locator.locate(e.__traceback__)
            log.error(
                f"start-up failed during {stage}" + (f" at {where}" if where else "") + f": {summary(e)}",
                exc_info=e, extra={"fields": {"event": "startup_failed", "where": where, "error": summary(e)}},
            )
            raise
        self.ready = True
        log.info(
            f"{self.name} {self.version} ready: load cells {pipeline.load_seconds:.3f} s, warm-up {warmup:.3f} s",
            extra={"fields": {"event": "ready", "load_seconds": pipeline.load_seconds, "warmup_seconds": warmup}},
        )

    def liveness(self) -> str | None:
        """None while alive; else why not: every worker stuck past ``STALLED_FACTOR`` × the deadline."""
        stalled = self.pool.stalled_seconds()
        limit = self.settings.predict_timeout_seconds * STALLED_FACTOR
        if stalled <= limit:
            return None
        reason = f"every worker has been on its current prediction for {stalled:.1f} s (limit {limit:g} s)"
        log.error(f"not alive: {reason}", extra={"fields": {"event": "stalled", "stalled_seconds": stalled}})
        return reason

    def parse(self, body: bytes) -> Any:
        """Raises: Refusal: 503 before start-up, 422 for a payload the schema refuses."""
        if self.schema is None:
            raise Refusal(503, "the model is not loaded yet", retry_after=1)
        try:
            return self.schema.parse(body)
        except PayloadError as e:
            raise Refusal(422, e.errors) from None

    def _batcher(self, pipeline: Pipeline) -> Batcher:
        signals, metrics = self.signals, self.batch_metrics
        assert signals is not None and metrics is not None

        def finish(answer: Any) -> tuple[Any, bytes]:
            result = to_jsonable(answer)
            content = json.dumps(result, allow_nan=False).encode()
            signals.observe(result)
            return result, content

        enabled = self.manifest.batching.enabled
        log.info(f"batching {'on' if enabled else 'off'}: {self.manifest.batching.note}",
                 extra={"fields": {"event": "batching", "enabled": enabled}})
        return Batcher(pipeline, finish, enabled, metrics.observe_model)

    async def predict(self, payload: Any, request_id: str) -> bytes:
        """The JSON bytes of the pipeline's answer for one validated payload (batched with other waiting
        requests when batching is on).

        Raises:
            Refusal: 503 when overloaded, 504 past the deadline, 500 when the notebook code raised.
        """
        assert self.batcher is not None
        answer = (await self._run(self.batcher, [payload], request_id))[0]
        if isinstance(answer, Exception):
            self.report_failure(answer, request_id)
            raise Refusal(500, "the model raised an error; the service log has the details")
        return answer[1]  # type: ignore[no-any-return]

    async def predict_many(self, payloads: list[Any], request_id: str) -> list[Any]:
        """Per payload, the jsonable result or the exception it raised: ``predict`` once for all of them when
        batching is on, else one by one on one worker.

        The whole batch has one deadline, the one of a single prediction; past it the request answers 504 and
        the worker starts no further item.

        Raises:
            Refusal: 503 when overloaded, 504 past the deadline.
        """
        assert self.batcher is not None
        answers = await self._run(self.batcher, payloads, request_id)
        results: list[Any] = []
        for answer in answers:
            if isinstance(answer, Exception):
                self.report_failure(answer, request_id)
                results.append(answer)
            else:
                results.append(answer[0])
        return results

    async def _run(self, batcher: Batcher, payloads: list[Any], request_id: str) -> list[Any]:
        timeout = self.settings.predict_timeout_seconds
        try:
            return await self.pool.run_batch(batcher, payloads, timeout)
        except Overloaded as e:
            raise Refusal(503, "too many requests in flight; retry shortly", retry_after=e.retry_after) from None
        except PredictionTimeout:
            self.metrics.prediction_errors["timeout"] += 1
            log.warning(f"prediction exceeded {timeout:g} s",
                        extra={"fields": {"event": "timeout", "request_id": request_id}})
            raise Refusal(504, f"the prediction did not finish within {timeout:g} s") from None

    def report_failure(self, error: BaseException, request_id: str) -> None:
        """Count a failed prediction and log it once, traceback included, located in the notebook."""
        self.metrics.prediction_errors["exception"] += 1
        where = self.locator.locate(error.__traceback__)
        log.error(
            "prediction failed" + (f" at {where}" if where else "") + f": {summary(error)}",
            exc_info=error, extra={"fields": {"event": "prediction_failed", "request_id": request_id,
                                              "where": where, "error": summary(error)}},
        )
