"""Running the service: ``python main.py`` → uvicorn, with the start-up and shutdown a platform expects.

- Start-up failure (a load cell, a parameter override, the warm-up) is logged with where it failed, and the
  process exits 3 (uvicorn's start-up failure code), before it ever accepts a connection.
- SIGTERM: the service turns not-ready at once; it keeps accepting for ``NBSHIP_DRAIN_SECONDS`` (default 0;
  set it to a few seconds on Kubernetes, where endpoints are removed while the pod is already terminating),
  then closes the listener and finishes in-flight requests for up to ``shutdown_grace_seconds``; exit 0.
- uvicorn's access log is off: the service middleware writes one JSON line per request instead.

``uvicorn main:app`` also works (same app, uvicorn's own signal handling and exit codes).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from .logs import SERVICE, uvicorn_log_config

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .service import Service

log = logging.getLogger(SERVICE)


def _ignore(sig: int, frame: FrameType | None) -> None:
    """Installed before uvicorn runs: uvicorn re-raises the signal it shut down on, and that must not kill us."""


def run(app: FastAPI, *, host: str | None = None, port: int | None = None) -> NoReturn:
    """Serve ``app`` until SIGTERM/SIGINT; exit 0 after a graceful shutdown, 3 when start-up failed.

    Raises:
        SystemExit: always, with that exit code.
    """
    import uvicorn

    service: Service = app.state.service
    host = host or os.environ.get("NBSHIP_HOST", "0.0.0.0")
    port = port or int(os.environ.get("NBSHIP_PORT") or service.manifest.service.port)
    drain = float(os.environ.get("NBSHIP_DRAIN_SECONDS", "0"))
    config = uvicorn.Config(
        app, host=host, port=port, lifespan="on", access_log=False, log_config=uvicorn_log_config(),
        timeout_graceful_shutdown=math.ceil(service.settings.shutdown_grace_seconds), server_header=False,
    )

    class Server(uvicorn.Server):
        draining = False

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            service.ready = False
            service.draining = True
            if sig == signal.SIGTERM and drain > 0 and not self.draining:
                self.draining = True
                log.info(f"SIGTERM: not ready; still accepting for {drain:g} s, then finishing in-flight requests",
                         extra={"fields": {"event": "draining"}})
                timer = threading.Timer(drain, super().handle_exit, (sig, frame))
                timer.daemon = True
                timer.start()
                return
            super().handle_exit(sig, frame)

    server = Server(config)
    signal.signal(signal.SIGTERM, _ignore)
    signal.signal(signal.SIGINT, _ignore)
    server.run()
    if not server.started:
        sys.exit(1)
    if service.pool.busy:
        log.warning(f"exiting with {service.pool.busy} timed-out prediction(s) still running; they are abandoned",
                    extra={"fields": {"event": "abandoned"}})
    sys.exit(0)
