"""One JSON error shape for the whole API: {"error": {"code", "message", "fields"?}}.

DRF's errors reach it through `exception_handler`; Django's own 400, 403, 404 and 500 pages are
replaced by the `handler*` views below for paths under the API prefixes.
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from temporalio.service import RPCError

from coffeeshop.temporal import TemporalUnavailable

logger = logging.getLogger(__name__)

API_PATH_PREFIXES = ("/v1/", "/codec/")


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is temporarily unavailable. Try again shortly."
    default_code = "temporal_unavailable"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class TooManyRequests(exceptions.Throttled):
    """429 with a Retry-After header of `wait` seconds."""

    default_code = "too_many_requests"


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable: `invalid`, `not_found`, …")
    message = serializers.CharField(help_text="For people; may change.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='Only for `invalid`: messages by field path, e.g. "customer.email".',
    )


class ErrorSerializer(serializers.Serializer):
    """The body of every API error response."""

    error = ErrorDetailSerializer()


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, reshaped into our error body; Temporal outages become 503."""
    if isinstance(exc, TemporalUnavailable):
        exc = ServiceUnavailable(str(exc))
    elif isinstance(exc, RPCError):
        # Anything else Temporal refuses (an unknown namespace, say) is an outage for our client.
        logger.error("Temporal refused a call: %s (%s)", exc.message, exc.status)
        exc = ServiceUnavailable("Temporal could not take the request. Try again shortly.")
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        response.data = error_body("invalid", "The request has invalid fields.", fields)
    else:
        detail = getattr(exc, "detail", "")
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        if not isinstance(code, str):
            code = "error"
        response.data = error_body(code, str(detail))
    return response


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 (say, a disallowed Host header): JSON under the API prefixes."""
    if _is_api(request):
        return _json_error(400, "bad_request", "The request could not be understood.")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _json_error(403, "permission_denied", "You may not do this.")
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404, for URLs that match no route: JSON under the API prefixes."""
    if _is_api(request):
        return _json_error(404, "not_found", "Not found.")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500. It says nothing about the cause; the log has the traceback."""
    if _is_api(request):
        return _json_error(500, "server_error", "Something went wrong on our side.")
    return defaults.server_error(request)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PATH_PREFIXES)


def _json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """{"customer": {"email": [...]}} becomes {"customer.email": [...]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "body" if key == "non_field_errors" and not prefix else str(key)
            flat.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
        return flat
    if isinstance(detail, list) and detail and all(isinstance(item, dict) for item in detail):
        flat = {}
        for index, item in enumerate(detail):
            flat.update(_flatten(item, f"{prefix}.{index}"))
        return flat
    items = detail if isinstance(detail, list) else [detail]
    return {prefix or "body": [str(item) for item in items]}
