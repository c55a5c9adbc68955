"""The API's one request parser: UTF-8 JSON, of bounded size and depth."""

import json

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.json import strict_constant

# What a client reads for a body that does not parse. Fixed: Python's own words ("use
# sys.set_int_max_str_digits()", "decode using utf-8-sig") describe the parser, not the request.
NOT_JSON_MESSAGE = "The request body is not valid JSON."
# For a body over the limit, here and where a Content-Length over it is refused before reading.
TOO_LARGE_MESSAGE = "The request body is larger than {limit} bytes."


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class BoundedJSONParser(BaseParser):
    """JSON bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE bytes (413 past it); anything else is 415.

    Unlike DRF's parser it never reads past its own limit (not a JSONParser subclass, so DRF
    hands it the stream rather than Django's size-checked `request.body`), takes UTF-8 only
    (RFC 8259; a charset parameter naming another codec is ignored), and answers 400 for JSON
    nested too deeply to parse rather than failing with a RecursionError. Its 400s say what is
    wrong in a fixed sentence of its own, never in the words of Python's `json` module.
    """

    media_type = "application/json"
    renderer_class = JSONRenderer
    max_body_bytes: int | None = None

    def parse(self, stream, media_type=None, parser_context=None):
        limit = self.max_body_bytes or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(TOO_LARGE_MESSAGE.format(limit=limit))
        try:
            return json.loads(body.decode("utf-8"), parse_constant=strict_constant)
        except UnicodeDecodeError as exc:
            raise ParseError("The request body is not UTF-8.") from exc
        except ValueError as exc:  # a JSONDecodeError, a NaN, an integer past Python's limit
            raise ParseError(NOT_JSON_MESSAGE) from exc
        except RecursionError as exc:
            raise ParseError("The JSON is nested too deeply.") from exc
