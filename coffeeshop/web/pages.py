"""What every HTML page shares: the 503 page for a dependency that does not answer."""

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from coffeeshop.errors import Unavailable

View = Callable[..., HttpResponse]


def unavailable_page(*, retry_to: str) -> Callable[[View], View]:
    """Answer 503 with a page that says so, and Retry-After, when a dependency does not answer.

    "Try again" repeats a GET; after a POST it leads to the page named `retry_to`, reversed with
    the view's own URL arguments.
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except Unavailable as exc:
                retry_url = request.get_full_path()
                if request.method != "GET":
                    retry_url = reverse(retry_to, kwargs=kwargs)
                response = render(request, "unavailable.html", {"retry_url": retry_url}, status=503)
                response["Retry-After"] = str(exc.retry_after)
                return response

        return wrapper

    return decorate
