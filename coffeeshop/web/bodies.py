"""Request bodies Django can read: a body without a Content-Length is refused (411)."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# The methods whose body a view reads (DRF parses one for each of them).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class LengthRequiredMiddleware:
    """Answer 411 to a request that sends its body in chunks, with no Content-Length.

    gunicorn decodes a chunked body, but Django reads CONTENT_LENGTH bytes of it: none. Served
    as empty, such a body slipped past the size limit (the parser never saw it) and turned a
    request with a body into one without. Browsers and HTTP libraries send a Content-Length for
    a body they hold; a client that streams one must send it whole. Under the API prefixes the
    answer is in the JSON error shape (`ApiErrorMiddleware`).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        if (
            "HTTP_TRANSFER_ENCODING" in meta
            and not meta.get("CONTENT_LENGTH")
            and request.method in BODY_METHODS
        ):
            return HttpResponse(
                "Send the request body with a Content-Length.\n",
                status=411,
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)
