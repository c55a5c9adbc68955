"""The verification REST API (web process): submit a code, ask for a new one, read the status.

Refusals and outages raised by the services reach the client through
`coffeeshop.web.api_errors`, which answers them with their status and words."""

from django.core.validators import RegexValidator
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from coffeeshop.web.schema import error_responses
from coffeeshop.web.serializers import StrictSerializer, StringField
from customers.errors import CustomerNotFound
from verification import services
from verification.codes import MAX_CODE_LENGTH, MIN_CODE_LENGTH
from verification.contracts import (
    Channel,
    DeliveryStatus,
    Refusal,
    VerificationResult,
    VerificationState,
)
from verification.errors import VerificationNotFound
from verification.selectors import verification_get_view

IDEMPOTENCY_KEY_MAX_LENGTH = 100
IDEMPOTENCY_KEY_PATTERN = rf"^[\x20-\x7e]{{1,{IDEMPOTENCY_KEY_MAX_LENGTH}}}$"

IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
    location=OpenApiParameter.HEADER,
    description="Makes retries safe: a repeated key gets the first answer and is counted once. "
    "Keys belong to one run: to a run started since, a key sent before is a new request.",
)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not key.isascii() or not key.isprintable() or not 0 < len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
        raise exceptions.ValidationError(
            {"Idempotency-Key": [f"Use 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} printable characters."]}
        )
    return key


class CustomerVerifyApi(APIView):
    """Submit a code. The workflow decides; wrong and expired codes cost an attempt.

    Send an `Idempotency-Key` header to make retries safe: the same key is answered with the
    first answer and never counted twice.
    """

    throttle_scope = "verify"

    @extend_schema_serializer(component_name="VerifyCode")
    class InputSerializer(StrictSerializer):
        """The code the customer typed."""

        verification_code = StringField(
            trim_whitespace=True,
            validators=[
                RegexValidator(
                    rf"^[0-9]{{{MIN_CODE_LENGTH},{MAX_CODE_LENGTH}}}$",
                    f"Enter the {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH} digit code.",
                )
            ],
            help_text="The digits sent to the customer (by text, call or email).",
        )

    @extend_schema_serializer(component_name="VerifyCodeResult")
    class OutputSerializer(serializers.Serializer):
        customer_id = serializers.UUIDField()
        result = serializers.ChoiceField(choices=[result.value for result in VerificationResult])
        attempts_remaining = serializers.IntegerField(min_value=0)

    @extend_schema(
        operation_id="customers_verify",
        tags=["verification"],
        summary="Submit the texted code",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=InputSerializer,
        responses={
            200: OpenApiResponse(
                OutputSerializer,
                description="The workflow's verdict; after the end, the final one again.",
            ),
            **error_responses(
                400,
                404,
                409,
                413,
                415,
                422,
                429,
                503,
                e404=CustomerNotFound.message,
                e409=f"`{Refusal.NO_VERIFICATION}`, or `{Refusal.VERIFICATION_ENDED}` for a "
                "cancelled run.",
            ),
        },
    )
    def post(self, request: Request, customer_id) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = _idempotency_key(request)
        answer = services.verification_submit_code(
            customer_id=customer_id,
            code=serializer.validated_data["verification_code"],
            idempotency_key=key,
        )
        return Response(
            {
                "customer_id": str(customer_id),
                "result": answer.result.value,
                "attempts_remaining": answer.attempts_remaining,
            }
        )


class CustomerResendCodeApi(APIView):
    """Send a new code. Refused with 429 during the cooldown, 409 past the send limit.

    Send an `Idempotency-Key` header to make retries safe: the same key is answered with the
    first answer and sends nothing twice.
    """

    throttle_scope = "resend"

    @extend_schema_serializer(component_name="ResendCode")
    class InputSerializer(StrictSerializer):
        """Optionally, how to send the new code."""

        channel = serializers.ChoiceField(
            choices=[channel.value for channel in Channel],
            required=False,
            help_text="`voice`: call me instead; `email`: email me instead; among the channels "
            "the verification offers (VERIFICATION_CHANNELS). Left out: the current channel.",
        )

    @extend_schema_serializer(component_name="ResendCodeResult")
    class OutputSerializer(serializers.Serializer):
        customer_id = serializers.UUIDField()
        sends_remaining = serializers.IntegerField(min_value=0)
        retry_after_seconds = serializers.IntegerField(
            min_value=0,
            allow_null=True,
            help_text="The cooldown before another code may be asked for; null when this was "
            "the run's last code (`sends_remaining` 0).",
        )

    @extend_schema(
        operation_id="customers_resend_code",
        tags=["verification"],
        summary="Send a new code, by text or another channel; the old one stops working",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=InputSerializer,
        responses={
            202: OpenApiResponse(OutputSerializer, description="A new code is on its way."),
            **error_responses(
                400,
                404,
                409,
                413,
                415,
                422,
                429,
                503,
                e400="An unknown `channel`, or a malformed `Idempotency-Key` header.",
                e404=CustomerNotFound.message,
                e409=f"`{Refusal.NO_VERIFICATION}`, `{Refusal.RESEND_LIMIT_REACHED}`, "
                f"`{Refusal.CHANNEL_NOT_OFFERED}` or `{Refusal.VERIFICATION_ENDED}`.",
                e429=f"`{Refusal.RESEND_COOLDOWN}`, `throttled` or "
                f"`{Refusal.PHONE_RATE_LIMITED}`. Wait `Retry-After` seconds.",
            ),
        },
    )
    def post(self, request: Request, customer_id) -> Response:
        # An empty body is {}; any other JSON but an object is refused, as on :verify.
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        channel = serializer.validated_data.get("channel")
        sent = services.verification_resend_code(
            customer_id=customer_id,
            idempotency_key=_idempotency_key(request),
            channel=Channel(channel) if channel else None,
        )
        return Response(
            {
                "customer_id": str(customer_id),
                "sends_remaining": sent.sends_remaining,
                "retry_after_seconds": sent.retry_after_seconds if sent.sends_remaining else None,
            },
            status=status.HTTP_202_ACCEPTED,
        )


class SendSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=[channel.value for channel in Channel])
    requested_at = serializers.DateTimeField()
    delivery_status = serializers.ChoiceField(
        choices=[status.value for status in DeliveryStatus], allow_null=True
    )


class VerificationDetailSerializer(serializers.Serializer):
    workflow_id = serializers.CharField()
    run_id = serializers.CharField()
    status = serializers.ChoiceField(choices=[state.value for state in VerificationState])
    attempts_remaining = serializers.IntegerField(
        min_value=0, allow_null=True, help_text="Null once the run has ended."
    )
    sends_remaining = serializers.IntegerField(min_value=0, allow_null=True)
    code_expires_at = serializers.DateTimeField(allow_null=True)
    resend_available_at = serializers.DateTimeField(allow_null=True)
    window_ends_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    live = serializers.BooleanField(
        help_text="True: read from the running workflow; false: from the database."
    )
    delivery_status = serializers.ChoiceField(
        choices=[status.value for status in DeliveryStatus],
        allow_null=True,
        help_text="What the provider last said about the current code; null until it says.",
    )
    end_reason = serializers.CharField(
        allow_blank=True,
        help_text="Why an `undeliverable` run ended: `invalid_number`, `not_mobile`, "
        "`unsubscribed`, `unreachable`, `region_not_allowed`, or `send_failed` (the provider "
        "failed every try for minutes: start again later); empty otherwise.",
    )
    channel = serializers.ChoiceField(
        choices=[channel.value for channel in Channel],
        allow_null=True,
        help_text="How the latest code was sent: `sms`, `voice` or `email`; null before any was.",
    )
    sends = SendSerializer(many=True, help_text="Every code sent in this run, oldest first.")
    next_channel = serializers.ChoiceField(
        choices=[channel.value for channel in Channel],
        allow_null=True,
        help_text="Where the run moves on to by itself if no right code comes first.",
    )
    next_channel_at = serializers.DateTimeField(allow_null=True, help_text="And when.")
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=[channel.value for channel in Channel]),
        help_text="The channels a resend may ask for; empty once the run has ended.",
    )
    fallback_channel = serializers.ChoiceField(
        choices=[channel.value for channel in Channel],
        allow_null=True,
        help_text="The channel the latest send failed on for good, when the code before it "
        "(on `channel`) was kept working instead; null otherwise.",
    )
    fallback_reason = serializers.CharField(
        allow_blank=True,
        help_text="Why that send failed, as `end_reason` says it; empty otherwise.",
    )


class CustomerVerificationApi(APIView):
    """The customer's current verification, live from the workflow while it runs."""

    @extend_schema_serializer(component_name="CustomerVerification")
    class OutputSerializer(serializers.Serializer):
        customer_id = serializers.UUIDField()
        verification = VerificationDetailSerializer()

    @extend_schema(
        operation_id="customers_verification_get",
        tags=["verification"],
        summary="Get the current verification's status",
        responses={
            200: OutputSerializer,
            **error_responses(404, 503, e404=VerificationNotFound.message),
        },
    )
    def get(self, request: Request, customer_id) -> Response:
        view = verification_get_view(customer_id=customer_id)
        if view is None:
            raise VerificationNotFound
        pending = view.state == VerificationState.PENDING
        return Response(
            {
                "customer_id": str(customer_id),
                "verification": {
                    "workflow_id": view.workflow_id,
                    "run_id": view.run_id,
                    "status": view.state.value,
                    "attempts_remaining": view.attempts_remaining,
                    "sends_remaining": view.sends_remaining,
                    "code_expires_at": view.code_expires_at,
                    "resend_available_at": view.resend_available_at,
                    "window_ends_at": view.window_ends_at,
                    "started_at": view.started_at,
                    "finished_at": view.finished_at,
                    "live": view.live,
                    "delivery_status": view.delivery_status,
                    "end_reason": view.end_reason,
                    "channel": view.channel,
                    "sends": [
                        {
                            "channel": send.channel,
                            "requested_at": send.requested_at,
                            "delivery_status": send.delivery_status,
                        }
                        for send in view.sends
                    ],
                    "next_channel": view.next_channel,
                    "next_channel_at": view.next_channel_at,
                    "channels": list(view.channels) if pending else [],
                    "fallback_channel": view.fallback_channel,
                    "fallback_reason": view.fallback_reason,
                },
            }
        )
