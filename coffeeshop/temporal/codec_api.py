"""A Temporal codec server for staff: POST /codec/decode and /codec/encode.

The Temporal UI and CLI send `{"payloads": [...]}` in protobuf JSON (bytes as base64) and get
the same shape back, run through the payload codec the web tier and the worker use. Only staff
users may call it: logged in to the Django admin (a session cookie, which the UI sends when its
"Include cross-origin credentials" setting is on) or with HTTP Basic credentials (for
`temporal --codec-auth`). CORS lets exactly the Temporal UI's origin (TEMPORAL_UI_URL) read the
answers.

Without either credential the answer is 401 with `WWW-Authenticate: Basic`. The UI is not
affected: its requests are cross-origin, for which browsers never show a login prompt (Fetch
standard), and it treats any error answer alike. Failed Basic logins are counted per client IP
(THROTTLE_CODEC_LOGIN_FAILURE_RATE); past the rate the answer is 429, before any password is
hashed.

CSRF checks are off for it on purpose: both routes are pure functions with no side effects, the
only browser origin allowed to read an answer is the UI's, and JSON bodies force a preflight.
"""

from urllib.parse import urlsplit

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from rest_framework import authentication, permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from temporalio.api.common.v1 import Payloads

from coffeeshop.temporal.codec import PayloadDecryptionError, encryption_codec_from_settings
from coffeeshop.web.api_errors import ErrorSerializer
from coffeeshop.web.parsers import BoundedJSONParser
from coffeeshop.web.throttles import ClientIpFailureThrottle

CODEC_MAX_BODY_BYTES = 8 * 1024 * 1024  # a payload may be 2 MB, and base64 adds a third
CORS_ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"
CORS_MAX_AGE_SECONDS = 600
LOGIN_FAILURES_SCOPE = "codec_login_failures"


class CodecJSONParser(BoundedJSONParser):
    max_body_bytes = CODEC_MAX_BODY_BYTES


class StaffSessionAuthentication(authentication.SessionAuthentication):
    """The admin's session cookie, without DRF's CSRF check (see the module docstring)."""

    def enforce_csrf(self, request):
        return


class ThrottledBasicAuthentication(authentication.BasicAuthentication):
    """HTTP Basic, refused with 429 once the client IP has failed too often, before the hash."""

    www_authenticate_realm = "codec"

    def authenticate(self, request: Request):
        scheme, *_ = authentication.get_authorization_header(request).split() or [b""]
        if scheme.lower() != b"basic":
            return None
        failures = ClientIpFailureThrottle(LOGIN_FAILURES_SCOPE)
        reservation = failures.reserve(request)
        authenticated = super().authenticate(request)  # AuthenticationFailed: the failure stands
        failures.refund(reservation)
        return authenticated


class PayloadSerializer(serializers.Serializer):
    metadata = serializers.DictField(
        child=serializers.CharField(), help_text="Values are base64-encoded bytes."
    )
    data = serializers.CharField(required=False, help_text="Base64-encoded bytes.")


class PayloadsSerializer(serializers.Serializer):
    payloads = PayloadSerializer(many=True)


def codec_cors_origin() -> str:
    """The Temporal UI's origin, the one origin allowed to read codec answers."""
    parts = urlsplit(settings.TEMPORAL_UI_URL)
    return f"{parts.scheme}://{parts.netloc}"


class CodecApi(APIView):
    """Shared plumbing: staff only, CORS for the Temporal UI, payloads in and out."""

    authentication_classes = [StaffSessionAuthentication, ThrottledBasicAuthentication]
    permission_classes = [permissions.IsAdminUser]
    parser_classes = [CodecJSONParser]

    def initial(self, request: Request, *args, **kwargs) -> None:
        # A CORS preflight carries no credentials; it must get its answer before the auth check.
        if request.method == "OPTIONS":
            return
        super().initial(request, *args, **kwargs)

    def get_authenticate_header(self, request: Request) -> str:
        # DRF asks only the first class (the session's, which has no challenge), so without
        # this a missing or wrong credential would be a 403 rather than a 401.
        return ThrottledBasicAuthentication().authenticate_header(request)

    def options(self, request: Request, *args, **kwargs) -> Response:
        response = Response(status=status.HTTP_204_NO_CONTENT)
        if request.headers.get("Origin") == codec_cors_origin():
            response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
            response["Access-Control-Max-Age"] = str(CORS_MAX_AGE_SECONDS)
        return response

    def finalize_response(self, request: Request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        origin = codec_cors_origin()
        if request.headers.get("Origin") == origin:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Credentials"] = "true"
        response["Vary"] = ", ".join(filter(None, [response.get("Vary"), "Origin"]))
        return response

    def transform(self, request: Request, *, decode: bool) -> Response:
        payloads = _payloads_parse(request.data)
        codec = encryption_codec_from_settings()
        if codec is not None:
            try:
                converted = [
                    codec.decode_one(p) if decode else codec.encode_one(p)
                    for p in payloads.payloads
                ]
            except PayloadDecryptionError as exc:
                raise ValidationError({"payloads": [str(exc)]}) from exc
            payloads = Payloads(payloads=converted)
        return Response(_payloads_render(payloads))


CODEC_RESPONSES = {
    200: PayloadsSerializer,
    400: OpenApiResponse(ErrorSerializer, description="Malformed or undecryptable payloads."),
    401: OpenApiResponse(ErrorSerializer, description="No credentials, or wrong ones."),
    403: OpenApiResponse(ErrorSerializer, description="Logged in, but not as staff."),
    413: OpenApiResponse(ErrorSerializer, description="The body is over 8 MiB."),
    415: OpenApiResponse(ErrorSerializer, description="The body is not JSON."),
    429: OpenApiResponse(ErrorSerializer, description="Too many failed logins from this address."),
}


class CodecDecodeApi(CodecApi):
    @extend_schema(
        operation_id="codec_decode",
        tags=["codec"],
        summary="Decrypt Temporal payloads (staff only)",
        description="The Temporal codec server protocol's /decode, for the Temporal UI and CLI.",
        request=PayloadsSerializer,
        responses=CODEC_RESPONSES,
    )
    def post(self, request: Request) -> Response:
        return self.transform(request, decode=True)


class CodecEncodeApi(CodecApi):
    @extend_schema(
        operation_id="codec_encode",
        tags=["codec"],
        summary="Encrypt Temporal payloads (staff only)",
        description="The Temporal codec server protocol's /encode, for the Temporal UI and CLI.",
        request=PayloadsSerializer,
        responses=CODEC_RESPONSES,
    )
    def post(self, request: Request) -> Response:
        return self.transform(request, decode=False)


def _payloads_parse(data: object) -> Payloads:
    if not isinstance(data, dict) or not isinstance(data.get("payloads"), list):
        raise ValidationError({"payloads": ["Send a JSON object with a list of payloads."]})
    try:
        return json_format.ParseDict({"payloads": data["payloads"]}, Payloads())
    except (json_format.ParseError, DecodeError, ValueError, TypeError) as exc:
        raise ValidationError({"payloads": ["The payloads are not valid protobuf JSON."]}) from exc


def _payloads_render(payloads: Payloads) -> dict:
    rendered = json_format.MessageToDict(payloads)
    rendered.setdefault("payloads", [])
    return rendered
