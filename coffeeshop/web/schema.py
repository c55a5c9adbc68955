"""What drf-spectacular needs beyond the views' own @extend_schema: error responses, strict
request bodies, the codec's two authentications and the Retry-After header of every 429."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiResponse

from coffeeshop.web.api_errors import ErrorSerializer

ERROR_DESCRIPTIONS = {
    400: "Invalid input; `error.fields` names each bad field.",
    403: "Not allowed.",
    404: "Not found; `error.message` says what.",
    409: "Conflicts with the current state; `error.code` says how.",
    413: "The request body is too large.",
    415: "The body is not `application/json`.",
    422: "`idempotency_key_reused`: this `Idempotency-Key` came before with another request.",
    429: "Too many requests; wait the number of seconds in `Retry-After`.",
    503: "Temporal, or a worker, did not answer in time; retry (under the same `Idempotency-Key`, "
    "where the operation takes one).",
}


def error_responses(*statuses: int, **descriptions: str) -> dict[int, OpenApiResponse]:
    """Responses for @extend_schema: each status with the error body and a description.

    `descriptions` overrides the default text, keyed as `e409="..."`.
    """
    return {
        code: OpenApiResponse(
            ErrorSerializer, description=descriptions.get(f"e{code}", ERROR_DESCRIPTIONS[code])
        )
        for code in statuses
    }


def add_retry_after_headers(result: dict, generator, request, public) -> dict:
    """Postprocessing hook: every 429 response declares its Retry-After header."""
    header = {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "integer", "minimum": 1},
        }
    }
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            too_many = operation.get("responses", {}).get("429")
            if too_many is not None:
                too_many.setdefault("headers", {}).update(header)
    return result


class StrictSerializerExtension(OpenApiSerializerExtension):
    target_class = "coffeeshop.web.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        return schema


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "coffeeshop.temporal.codec_api.StaffSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


class ThrottledBasicScheme(OpenApiAuthenticationExtension):
    target_class = "coffeeshop.temporal.codec_api.ThrottledBasicAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic"}
