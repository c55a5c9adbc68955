"""GET (or HEAD) /healthz: is the database reachable and migrated, does the cache answer (the
throttles and limits count there), and does Temporal answer?"""

import logging

from django.core.cache import cache
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from coffeeshop.temporal.client import TemporalUnavailable, gateway

HEALTH_TIMEOUT_SECONDS = 3.0
CACHE_PROBE_KEY = "coffeeshop:healthz"

logger = logging.getLogger(__name__)

# Once this process has seen every migration applied, it need not look again.
_migrated = False


@csrf_exempt  # GET and HEAD only: anything else is a 405, not the CSRF page's 403
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database(), "cache": _cache(), "temporal": _temporal()}
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)


def _database() -> str:
    """ "ok", "unavailable", or "not migrated": reachable, but without the tables every request
    needs (each would answer 503, and log that a table is missing)."""
    global _migrated
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if not _migrated:
            executor = MigrationExecutor(connection)
            _migrated = not executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        return "unavailable"
    return "ok" if _migrated else "not migrated"


def _cache() -> str:
    """ "ok", or "unavailable": a database cache whose table was never made, a cache server
    away (every throttled request would fail)."""
    try:
        cache.get(CACHE_PROBE_KEY)
    except Exception as exc:  # each backend fails its own way
        logger.warning("The cache did not answer: %s", exc)
        return "unavailable"
    return "ok"


def _temporal() -> str:
    """Whether Temporal answers for our namespace: "ok", or "unavailable" whatever the failure
    (a namespace it does not know among them: every call the app makes would fail)."""

    async def ping(client: Client) -> None:
        request = DescribeNamespaceRequest(namespace=client.namespace)
        await client.workflow_service.describe_namespace(request)

    try:
        gateway.call(ping, timeout=HEALTH_TIMEOUT_SECONDS)
    except (TemporalUnavailable, RPCError):
        return "unavailable"
    return "ok"
