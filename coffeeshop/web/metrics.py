"""The web process's Prometheus metrics, and GET /metrics, which serves them to Prometheus.

Counted in the process: every request's latency by route and status (`RequestMetricsMiddleware`,
one histogram observation per request, no database), and 429s by the limit that refused them.
Read at each scrape: the collectors named in METRICS_COLLECTORS (dotted paths), which count the
apps' rows in the database, so their numbers are right whichever process answers and however
often processes restart.

Under gunicorn each worker process counts its own requests. With PROMETHEUS_MULTIPROC_DIR set in
the environment before the process starts, prometheus_client keeps every process's counts in
files in that directory and a scrape answered by any process adds them all up; empty it whenever
gunicorn starts. Without it (runserver, tests) the counts live in this process's memory.

/metrics is not public: it answers only a request carrying `Authorization: Bearer
<METRICS_TOKEN>`, and is off (404) while METRICS_TOKEN is empty.
"""

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.utils.module_loading import import_string
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# prometheus_client chooses its storage by this variable when it is imported, and so do we.
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ
# The *_created series exist only in a single process; without them both modes answer alike.
disable_created_metrics()

# This process's own metrics. In multiprocess mode they are written to files instead, and a scrape
# reads the files.
REGISTRY = CollectorRegistry()

# Up to TEMPORAL_REQUEST_TIMEOUT (10 s), past which the API answers 503; 50 and 100 ms are the
# benchmark's p95 targets for a status read and a code submission.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_DURATION = Histogram(
    "coffeeshop_http_request_duration_seconds",
    "Time to answer a request, by method, route pattern and status code.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "coffeeshop_http_rate_limited",
    "Requests answered 429, on the API and the pages' forms, by the limit that refused them: "
    "throttle:<scope> for the per-IP throttles, else the refusal's error code.",
    ["limit"],
    registry=REGISTRY,
)


def rate_limited_observe(limit: str) -> None:
    """Count one request refused with 429 by `limit` (a throttle scope or a refusal's code)."""
    RATE_LIMITED.labels(limit).inc()


class RequestMetricsMiddleware:
    """Time every request, whatever answers it; first in MIDDLEWARE, so it sees the final status.

    The route is the URL pattern that matched, never the path, so ids do not multiply the series;
    requests no route matched count under `<static>` (WhiteNoise's files) or `<unmatched>`.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        method = request.method if request.method in METHODS else "other"
        match = request.resolver_match
        if match is not None:
            route = match.route
        elif request.path.startswith(settings.STATIC_URL):
            route = "<static>"
        else:
            route = "<unmatched>"
        REQUEST_DURATION.labels(method, route, str(response.status_code)).observe(elapsed)
        return response


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics: the Prometheus text format, for a bearer of METRICS_TOKEN only."""
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponseNotFound(
            "Metrics are off: set METRICS_TOKEN.\n", content_type="text/plain"
        )
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        offered.strip().encode(), token.encode()
    ):
        response = HttpResponse(
            "Send METRICS_TOKEN as a bearer token.\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    try:
        body = generate_latest(_Scrape())
    except Exception:  # a scrape must never answer 500; the log keeps what went wrong
        logger.exception("The metrics could not be collected")
        return HttpResponse(
            "The metrics could not be collected.\n", status=503, content_type="text/plain"
        )
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


class _Scrape:
    """What one scrape answers: the counts of this process (or of every process), then the
    METRICS_COLLECTORS, made afresh so each reads the database once."""

    def collect(self) -> Iterable:
        counted: Collector = MultiProcessCollector(None) if MULTIPROCESS else REGISTRY
        yield from counted.collect()
        for path in settings.METRICS_COLLECTORS:
            yield from import_string(path)().collect()
