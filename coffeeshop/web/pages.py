"""What every HTML page shares: the 503 page for a dependency that does not answer, and the
429 page for a form sent past its per-client-IP throttle."""

import functools
import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from coffeeshop.errors import DatabaseUnavailable, Unavailable
from coffeeshop.web.api_errors import (
    DATABASE_OUTAGES,
    UNAVAILABLE_MESSAGES,
    error_body,
    is_api_path,
)
from coffeeshop.web.metrics import rate_limited_observe
from coffeeshop.web.text import wait_text
from coffeeshop.web.throttles import ScopedThrottled, client_ip_throttle

logger = logging.getLogger(__name__)

View = Callable[..., HttpResponse]


def unavailable_page(*, retry_to: str) -> Callable[[View], View]:
    """A 503 page with Retry-After when Temporal or the database does not answer the view.

    "Try again" repeats a GET; after a POST it leads to the page named `retry_to`, reversed with
    the view's own URL arguments.
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except (Unavailable, *DATABASE_OUTAGES) as exc:
                retry_url = request.get_full_path()
                if request.method != "GET":
                    retry_url = reverse(retry_to, kwargs=kwargs)
                outage = exc if isinstance(exc, Unavailable) else DatabaseUnavailable()
                return unavailable_response(request, outage, retry_url)

        return wrapper

    return decorate


def unavailable_response(request: HttpRequest, exc: Unavailable, retry_url: str) -> HttpResponse:
    """The 503 page, with Retry-After."""
    response = render(request, "unavailable.html", {"retry_url": retry_url}, status=503)
    response["Retry-After"] = str(exc.retry_after)
    return response


def throttled_page(*, scope: str, back_to: str, back_text: str) -> Callable[[View], View]:
    """Count each POST against the client IP's `scope` throttle, the API's counter of that name.

    Every POST that reaches the view counts, whatever its outcome, as the API counts its
    requests. Past the rate the view does not run and the POST is not counted: the 429 page, with
    Retry-After, says how long to wait and links back (`back_text`) to the page named `back_to`,
    reversed with the view's own URL arguments. GETs are never counted.
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "POST":
                try:
                    client_ip_throttle(request, scope=scope)
                except ScopedThrottled as exc:
                    back = {"back_url": reverse(back_to, kwargs=kwargs), "back_text": back_text}
                    return throttled_response(request, exc, "throttled.html", back)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def throttled_response(
    request: HttpRequest, exc: ScopedThrottled, template: str, context: dict
) -> HttpResponse:
    """`template` as a 429, with Retry-After and the wait in words as `wait`; counted in metrics."""
    rate_limited_observe(f"throttle:{exc.scope}")
    context = {**context, "wait": wait_text(exc.wait)}
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(exc.wait)
    return response


class DatabaseOutageMiddleware:
    """Answer 503, never 500, when the database cannot be reached while a view runs.

    DRF's views answer through `api_errors.exception_handler`; this covers the rest: the pages,
    the admin, and any plain view under the API prefixes (in the JSON shape there).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_OUTAGES):
            return None
        logger.warning("The database did not answer: %s", exception)
        outage = DatabaseUnavailable()
        if is_api_path(request.path):
            message = UNAVAILABLE_MESSAGES[outage.code]
            response = JsonResponse(error_body(outage.code, message), status=503)
            response["Retry-After"] = str(outage.retry_after)
            return response
        return unavailable_response(request, outage, request.get_full_path())
