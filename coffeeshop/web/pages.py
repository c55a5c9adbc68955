"""What every HTML page shares: the 503 page for a dependency that does not answer."""

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from coffeeshop.errors import DatabaseUnavailable, Unavailable
from coffeeshop.web.api_errors import (
    API_PATH_PREFIXES,
    DATABASE_OUTAGES,
    UNAVAILABLE_MESSAGES,
    error_body,
)

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
        outage = DatabaseUnavailable()
        if request.path.startswith(API_PATH_PREFIXES):
            message = UNAVAILABLE_MESSAGES[outage.code]
            response = JsonResponse(error_body(outage.code, message), status=503)
            response["Retry-After"] = str(outage.retry_after)
            return response
        return unavailable_response(request, outage, request.get_full_path())
