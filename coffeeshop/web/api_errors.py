"""One JSON error shape for the whole API: {"error": {"code", "message", "fields"?}}.

This is the one place errors become API responses. `exception_handler` (DRF's hook) turns the
project's `Refused` into its status and reason code, `Unavailable` into 503 with Retry-After and
a fixed sentence (what failed goes to the log, never to the client), and DRF's and Django's own
exceptions into the same shape, and counts each 429 by the limit that gave it
(`coffeeshop.web.metrics`). `ApiErrorMiddleware` reshapes whatever else answers an error under
the API prefixes (Django's 404 for an unrouted path, its 400 for a bad Host, its 500, a 411)
into JSON too, with DEBUG on as well as off, and keeps every API answer out of caches.
"""

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from coffeeshop.errors import DatabaseUnavailable, NotFound, Refused, Unavailable
from coffeeshop.temporal.client import TemporalUnavailable
from coffeeshop.web.metrics import rate_limited_observe
from coffeeshop.web.parsers import PayloadTooLarge

logger = logging.getLogger(__name__)

API_PATH_PREFIXES = ("/v1/", "/codec/")


def is_api_path(path: str) -> bool:
    """Whether `path` is under the API (the prefixes, or one of them without its slash)."""
    return path.startswith(API_PATH_PREFIXES) or f"{path}/" in API_PATH_PREFIXES


# What Django raises when the database cannot be reached; an IntegrityError is no outage.
DATABASE_OUTAGES = (OperationalError, InterfaceError)

# API answers carry personal data (a customer, the state of their verification): no cache,
# shared or private, may keep one.
API_CACHE_CONTROL = "private, no-store"
# The headers of Django's own answer that its JSON replacement does not take over.
BODY_HEADERS = frozenset({"content-type", "content-length"})

# What a client reads when a dependency does not answer, by `Unavailable.code`. Fixed sentences:
# the exception's own words (the SDK's "tcp connect error", an address) go to the log only.
UNAVAILABLE_MESSAGES = {
    Unavailable.code: "A service we depend on is not answering. Try again shortly.",
    DatabaseUnavailable.code: "The database is not answering. Try again shortly.",
    TemporalUnavailable.code: "The service cannot complete the request right now. Try again "
    "shortly.",
}

# Django's own error responses under the API prefixes, as (code, message) by status.
DJANGO_ERRORS = {
    400: ("bad_request", "The request could not be understood."),
    403: ("permission_denied", "You may not do this."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "This method is not allowed here."),
    411: ("length_required", "Send the request body with a Content-Length header."),
    500: ("server_error", "Something went wrong on our side."),
}


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
    """DRF's handler, reshaped into our error body; our errors mapped by their type."""
    if isinstance(exc, Refused):
        return _refused_response(exc)
    if isinstance(exc, Unavailable):
        logger.warning("Answered 503 %s: %s", exc.code, exc)
        return _unavailable_response(exc)
    if isinstance(exc, DATABASE_OUTAGES):
        logger.warning("The database did not answer: %s", exc)
        return _unavailable_response(DatabaseUnavailable())
    if isinstance(exc, NotFound):
        exc = exceptions.NotFound(str(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        # Answered here, not by Django: with DEBUG on, its debug page for one (more than 1,000
        # query parameters, say) reads the request again, fails the same way, and answers a
        # bare 500.
        exc = UnreadableRequest()
    elif isinstance(exc, exceptions.Throttled):
        scope = (
            getattr(exc, "scope", None)
            or getattr(context.get("view"), "throttle_scope", None)
            or "other"
        )
        rate_limited_observe(f"throttle:{scope}")
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


class UnreadableRequest(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "The request could not be understood."


def _refused_response(exc: Refused) -> Response:
    if exc.status == status.HTTP_429_TOO_MANY_REQUESTS:
        rate_limited_observe(exc.code)
    response = Response(error_body(exc.code, str(exc)), status=exc.status)
    if exc.retry_after is not None:
        response["Retry-After"] = str(max(1, exc.retry_after))
    return response


def _unavailable_response(exc: Unavailable) -> Response:
    message = exc.public_message or UNAVAILABLE_MESSAGES.get(
        exc.code, UNAVAILABLE_MESSAGES[Unavailable.code]
    )
    response = Response(error_body(exc.code, message), status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response["Retry-After"] = str(exc.retry_after)
    return response


class ApiErrorMiddleware:
    """Answer every error under the API prefixes in the JSON shape, whoever produced it, and mark
    every answer there `Cache-Control: private, no-store`.

    DRF's views answer in JSON already. What reaches here as HTML is Django's own answer: a 404
    for a path no route matches (with DEBUG on, the technical 404 page, which bypasses
    `handler404`), a 400 for a disallowed Host, a 411, a 500 for an unhandled exception. The log
    keeps the details; the client gets the shape, with the headers the middleware below put on
    Django's answer (the security headers among them).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not is_api_path(request.path):
            return response
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            response = _json_error_from(response)
        response["Cache-Control"] = API_CACHE_CONTROL
        return response


def _json_error_from(response: HttpResponse) -> JsonResponse:
    """Django's error answer as our JSON error, with its status, headers and cookies."""
    code, message = DJANGO_ERRORS.get(
        response.status_code, ("error", "The request could not be completed.")
    )
    reshaped = JsonResponse(error_body(code, message), status=response.status_code)
    for header, value in response.items():
        if header.lower() not in BODY_HEADERS:
            reshaped[header] = value
    reshaped["Content-Length"] = str(len(reshaped.content))
    reshaped.cookies = response.cookies
    return reshaped


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
