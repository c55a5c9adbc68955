"""Twilio's status callbacks (web process): a delivery receipt, checked and passed to its run.

Texts and calls report to the same URL, the one the send gave Twilio, which carries the run's
workflow id: a text posts `MessageSid` and `MessageStatus`, a call `CallSid` and `CallStatus`,
form-encoded, and Twilio signs the whole of it with `X-Twilio-Signature`. A request whose
signature the SDK's `RequestValidator` does not accept is refused with 403 and changes nothing; a
good one gets 204, whether or not its run is still open (Twilio has nothing to retry).
"""

import logging

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from verification import services
from verification.contracts import DeliveryStatus
from verification.metrics import call_delivery_status_observe, sms_delivery_status_observe

logger = logging.getLogger(__name__)

# Twilio's MessageStatus values, folded into ours; those not listed say nothing about delivery.
TWILIO_STATUSES = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.SENT,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
# Twilio's CallStatus values, folded the same way. A call is delivered once it was answered (by
# a person, or by their voicemail) and ran to its end: the code was read out, twice. Busy and
# no-answer reached a working line that did not take the call this time: undelivered, as a text
# the handset never took. Failed (Twilio could not place it) and canceled (it never rang out) are
# failed, as a canceled text is. Both count as failures, so either lets a new code go out at once.
TWILIO_CALL_STATUSES = {
    "queued": DeliveryStatus.QUEUED,
    "initiated": DeliveryStatus.QUEUED,
    "ringing": DeliveryStatus.SENT,
    "in-progress": DeliveryStatus.SENT,
    "completed": DeliveryStatus.DELIVERED,
    "busy": DeliveryStatus.UNDELIVERED,
    "no-answer": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}


class TwilioDeliveryStatusWebhook(APIView):
    """Twilio's status callback, for texts and calls alike."""

    parser_classes = [FormParser]
    authentication_classes = []
    permission_classes = []

    @extend_schema(exclude=True)  # for Twilio, not for API clients
    def post(self, request: Request) -> Response:
        if not self._signed_by_twilio(request):
            logger.warning("A delivery receipt was refused: its Twilio signature does not match.")
            raise exceptions.PermissionDenied("The request is not signed by Twilio.")
        workflow_id = request.query_params.get("workflow", "")
        if "MessageSid" in request.data:
            message_id = request.data.get("MessageSid", "")
            delivery = TWILIO_STATUSES.get(request.data.get("MessageStatus", ""))
            observe = sms_delivery_status_observe
        else:  # a call's: its SID stands for the message id, which the send returned
            message_id = request.data.get("CallSid", "")
            delivery = TWILIO_CALL_STATUSES.get(request.data.get("CallStatus", ""))
            observe = call_delivery_status_observe
        if delivery is not None:
            observe(delivery)
        if delivery is not None and message_id:
            services.verification_delivery_status_record(
                workflow_id=workflow_id, message_id=message_id, status=delivery
            )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @staticmethod
    def _signed_by_twilio(request: Request) -> bool:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not settings.TWILIO_AUTH_TOKEN:
            return False
        # The URL Twilio called, which behind a proxy only PUBLIC_BASE_URL knows.
        if settings.PUBLIC_BASE_URL:
            url = settings.PUBLIC_BASE_URL.rstrip("/") + request.get_full_path()
        else:
            url = request.build_absolute_uri()
        # Imported here: the twilio package costs every web process some 20 MiB otherwise.
        from twilio.request_validator import RequestValidator

        validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
        return validator.validate(url, request.data.dict(), signature)
