"""Requests Django can read: the Content-Length is checked before a byte of the body is read.

A body without a Content-Length is refused (411), one declared larger than the view reads (413),
and a Content-Length that is no number of bytes (400); so is a query string holding a NUL
character (400), which no filter can compare (PostgreSQL refuses it in text).
"""

from collections.abc import Callable
from urllib.parse import unquote_plus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from coffeeshop.web.api_errors import error_body, is_api_path
from coffeeshop.web.parsers import TOO_LARGE_MESSAGE, PayloadTooLarge

# The methods whose body a view reads (DRF parses one for each of them).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ContentLengthMiddleware:
    """Answer 411, 413 or 400 for a body Django cannot read whole, before anything reads it.

    A body sent in chunks, with no Content-Length: gunicorn decodes it, but Django reads
    CONTENT_LENGTH bytes of it: none. Served as empty, such a body slipped past the size limit
    (the parser never saw it) and turned a request with a body into one without. Browsers and
    HTTP libraries send a Content-Length for a body they hold; a client that streams one must
    send it whole (411).

    A Content-Length above what the view reads (DATA_UPLOAD_MAX_MEMORY_SIZE, or its parser's own
    larger limit: the codec's) is refused at once (413). Read, the body would be waited for: a
    client that declares 100 GB and sends 10 bytes held a web thread until gunicorn's timeout.

    A Content-Length that is not a number (Django would read it as 0, and serve no body) is a
    400. gunicorn refuses one itself; other servers may not.

    Under the API prefixes every answer is in the JSON error shape (the 411 reshaped by
    `ApiErrorMiddleware`); pages get the site's 400 page for a 400 or a 413, and a plain 411.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        if "\x00" in unquote_plus(meta.get("QUERY_STRING", "")):
            return _refusal(request, 400, "bad_request", "The query string holds a NUL character.")
        declared = meta.get("CONTENT_LENGTH") or ""
        if declared and not (declared.isascii() and declared.isdigit()):
            return _refusal(
                request, 400, "bad_request", "The Content-Length header is not a number of bytes."
            )
        if "HTTP_TRANSFER_ENCODING" in meta and not declared and request.method in BODY_METHODS:
            return HttpResponse(
                "Send the request body with a Content-Length.\n",
                status=411,
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable, view_args: tuple, view_kwargs: dict
    ) -> HttpResponse | None:
        limit = body_limit(view_func)
        # Compared as digits first: int() refuses a string of more than 4300 of them.
        declared = (request.META.get("CONTENT_LENGTH") or "").lstrip("0") or "0"
        if limit is not None and (len(declared) > len(str(limit)) or int(declared) > limit):
            message = TOO_LARGE_MESSAGE.format(limit=limit)
            return _refusal(request, 413, PayloadTooLarge.default_code, message)
        return None


def body_limit(view_func: Callable) -> int | None:
    """The most bytes of body `view_func` reads: DATA_UPLOAD_MAX_MEMORY_SIZE, or the larger
    `max_body_bytes` of one of its DRF parsers. None when DATA_UPLOAD_MAX_MEMORY_SIZE is None."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None:
        return None
    parsers = getattr(getattr(view_func, "cls", None), "parser_classes", ())
    return max([limit, *(getattr(parser, "max_body_bytes", None) or 0 for parser in parsers)])


def _refusal(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    """The API's error in the JSON shape; for a page, the site's 400 page with `status`."""
    if is_api_path(request.path):
        return JsonResponse(error_body(code, message), status=status)
    return HttpResponse(render_to_string("400.html"), status=status)
