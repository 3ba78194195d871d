"""The service's own paths, named once: the app serves them, the manifests probe and scrape them, the smoke test
calls them. Part of the static runtime (standard library only), so nbship imports it and the image carries it."""

from __future__ import annotations

PREDICT = "/predict"
READINESS = "/readyz"
LIVENESS = "/healthz"
METRICS = "/metrics"
VERSION = "/version"
