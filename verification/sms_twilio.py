"""The Twilio SMS backend (worker process), through the official `twilio` SDK.

Settings: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, and TWILIO_MESSAGING_SERVICE_SID or
TWILIO_FROM_NUMBER (the system checks refuse to start without them). TWILIO_API_BASE_URL points
the SDK at another host, for a test double or a proxy; everything else is the SDK as shipped.

Twilio's errors are sorted here: a number Twilio will never text (invalid, a landline, opted
out, a country the account may not text) raises SmsUndeliverable, which ends the run; anything
else (429, 5xx, timeouts, a refused credential) propagates, and Temporal retries the send.
"""

import threading

from django.conf import settings
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from verification.contracts import UndeliverableReason
from verification.sms import SmsMessage, SmsUndeliverable

TWILIO_API_HOST = "https://api.twilio.com"
REQUEST_TIMEOUT_SECONDS = 8.0  # under the send activity's 10 s, so Twilio's answer wins the race
# Twilio's validity period is 1 to 36000 seconds (ValidityPeriod on the Message resource).
MAX_VALIDITY_SECONDS = 36_000

# https://www.twilio.com/docs/api/errors: the ones that mean "this number, never".
UNDELIVERABLE_CODES = {
    21211: UndeliverableReason.INVALID_NUMBER,  # Invalid 'To' phone number
    21265: UndeliverableReason.INVALID_NUMBER,  # 'To' number cannot be a short code
    21614: UndeliverableReason.NOT_MOBILE,  # 'To' number is not a valid mobile number
    21610: UndeliverableReason.UNSUBSCRIBED,  # the recipient replied STOP
    21612: UndeliverableReason.UNREACHABLE,  # the 'To' number is not reachable via SMS
    21408: UndeliverableReason.REGION_NOT_ALLOWED,  # geo permissions do not allow this country
}


class _RebasedHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client, sending what it would send to api.twilio.com to `base_url`."""

    def __init__(self, base_url: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        if url.startswith(TWILIO_API_HOST):
            url = self.base_url + url[len(TWILIO_API_HOST) :]
        return super().request(method, url, *args, **kwargs)


class TwilioSmsBackend:
    """Send with `client.messages.create`; return Twilio's message SID."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: Client | None = None
        self._client_settings: tuple[str, str, str] | None = None

    def send(self, message: SmsMessage) -> str | None:
        sender = (
            {"messaging_service_sid": settings.TWILIO_MESSAGING_SERVICE_SID}
            if settings.TWILIO_MESSAGING_SERVICE_SID
            else {"from_": settings.TWILIO_FROM_NUMBER}
        )
        options = {}
        if message.validity_seconds:
            options["validity_period"] = max(1, min(message.validity_seconds, MAX_VALIDITY_SECONDS))
        if message.status_callback:
            options["status_callback"] = message.status_callback
        try:
            sent = self._twilio().messages.create(
                to=message.to, body=message.body, **sender, **options
            )
        except TwilioRestException as exc:
            reason = UNDELIVERABLE_CODES.get(exc.code or 0)
            if reason is not None:
                raise SmsUndeliverable(reason, exc.code) from exc
            raise
        return sent.sid

    def _twilio(self) -> Client:
        wanted = (
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            settings.TWILIO_API_BASE_URL,
        )
        with self._lock:
            if self._client is None or self._client_settings != wanted:
                sid, token, base_url = wanted
                http_client = (
                    _RebasedHttpClient(base_url, timeout=REQUEST_TIMEOUT_SECONDS)
                    if base_url
                    else TwilioHttpClient(timeout=REQUEST_TIMEOUT_SECONDS)
                )
                self._client = Client(sid, token, http_client=http_client)
                self._client_settings = wanted
            return self._client
