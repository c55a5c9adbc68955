"""The verification REST API: submit a code, ask for a new one, read the live status."""

from django.shortcuts import get_object_or_404
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from coffeeshop.api_errors import Conflict
from customers.models import Customer
from verification import services
from verification.codes import MAX_CODE_LENGTH, MIN_CODE_LENGTH, code_is_well_formed
from verification.selectors import verification_get_view

IDEMPOTENCY_KEY_MAX_LENGTH = 100


class TooManyRequests(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "Too many requests."
    default_code = "too_many_requests"


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

    class InputSerializer(serializers.Serializer):
        verification_code = serializers.CharField(max_length=32, trim_whitespace=True)

        def validate_verification_code(self, value: str) -> str:
            if not code_is_well_formed(value):
                raise serializers.ValidationError(
                    f"Enter the {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH} digit code."
                )
            return value

    class OutputSerializer(serializers.Serializer):
        customer_id = serializers.UUIDField()
        result = serializers.CharField()
        attempts_remaining = serializers.IntegerField()

    def post(self, request: Request, customer_id) -> Response:
        customer = get_object_or_404(Customer, pk=customer_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = _idempotency_key(request)
        try:
            answer = services.verification_submit_code(
                customer=customer,
                code=serializer.validated_data["verification_code"],
                idempotency_key=key,
            )
        except services.NoVerification as exc:
            raise Conflict(str(exc), code="no_verification") from exc
        except services.VerificationEnded as exc:
            raise Conflict(str(exc), code="verification_cancelled") from exc
        return Response(
            {
                "customer_id": str(customer.id),
                "result": answer.result.value,
                "attempts_remaining": answer.attempts_remaining,
            }
        )


class CustomerResendCodeApi(APIView):
    """Send a new code. Refused with 429 during the cooldown, 409 past the send limit."""

    def post(self, request: Request, customer_id) -> Response:
        customer = get_object_or_404(Customer, pk=customer_id)
        try:
            sent = services.verification_resend_code(customer=customer)
        except services.NoVerification as exc:
            raise Conflict(str(exc), code="no_verification") from exc
        except services.ResendRefused as exc:
            if exc.reason == "cooldown":
                error = TooManyRequests(str(exc), code="resend_cooldown")
                error.wait = exc.retry_after
                raise error from exc
            raise Conflict(str(exc), code=f"resend_{exc.reason}") from exc
        return Response(
            {
                "customer_id": str(customer.id),
                "sends_remaining": sent.sends_remaining,
                "retry_after_seconds": sent.retry_after_seconds,
            },
            status=status.HTTP_202_ACCEPTED,
        )


class CustomerVerificationApi(APIView):
    """The customer's current verification, live from the workflow while it runs."""

    def get(self, request: Request, customer_id) -> Response:
        customer = get_object_or_404(Customer, pk=customer_id)
        view = verification_get_view(customer=customer)
        if view is None:
            raise exceptions.NotFound("This customer has no verification.")
        run = view.verification
        return Response(
            {
                "customer_id": str(customer.id),
                "verification": {
                    "workflow_id": run.workflow_id,
                    "run_id": run.run_id,
                    "status": view.state.value,
                    "attempts_remaining": view.attempts_remaining,
                    "sends_remaining": view.sends_remaining,
                    "code_expires_at": view.code_expires_at,
                    "resend_available_at": view.resend_available_at,
                    "window_ends_at": view.window_ends_at,
                    "started_at": run.started_at,
                    "finished_at": run.finished_at,
                    "live": view.live,
                },
            }
        )
