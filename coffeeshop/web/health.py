"""GET (or HEAD) /healthz: is the database reachable, and does Temporal answer?"""

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.service import RPCError

from coffeeshop.temporal.client import TemporalUnavailable, gateway

HEALTH_TIMEOUT_SECONDS = 3.0


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database(), "temporal": _temporal()}
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return "unavailable"
    return "ok"


def _temporal() -> str:
    """Whether Temporal answers a ping: "ok", or "unavailable" whatever the failure."""

    async def ping(client: Client) -> None:
        await client.workflow_service.get_system_info(GetSystemInfoRequest())

    try:
        gateway.call(ping, timeout=HEALTH_TIMEOUT_SECONDS)
    except (TemporalUnavailable, RPCError):
        return "unavailable"
    return "ok"
