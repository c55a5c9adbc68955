"""Twilio's SMS and voice backends (worker process), through the official `twilio` SDK.

Settings: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN; for texts TWILIO_MESSAGING_SERVICE_SID or
TWILIO_FROM_NUMBER, for calls TWILIO_FROM_NUMBER (a Messaging Service cannot call). The system
checks refuse to start without them. TWILIO_API_BASE_URL points the SDK at another host, for a
test double or a proxy; everything else is the SDK as shipped. Both backends share one client.

Twilio's errors are sorted here: a number Twilio will never text, or never call (invalid, a
landline for texts, opted out, a country the account may not reach) raises
`channels.Undeliverable`; anything else (429, 5xx, timeouts, a refused credential) propagates,
and Temporal retries the send.
"""

import threading
from typing import NoReturn

from django.conf import settings
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from verification.channels import Undeliverable
from verification.contracts import UndeliverableReason
from verification.sms import SmsMessage
from verification.voice import VoiceCall

TWILIO_API_HOST = "https://api.twilio.com"
REQUEST_TIMEOUT_SECONDS = 8.0  # under the send activity's 10 s, so Twilio's answer wins the race
# Twilio's validity period is 1 to 36000 seconds (ValidityPeriod on the Message resource).
MAX_VALIDITY_SECONDS = 36_000
# The call's progress Twilio reports: ringing (it reached the phone) and completed (its end, with
# how it ended). "initiated" and "answered" would add a signal each and move no status on.
CALL_STATUS_EVENTS = ["ringing", "completed"]

# https://www.twilio.com/docs/api/errors: the ones that mean "this number, never".
UNDELIVERABLE_CODES = {
    21211: UndeliverableReason.INVALID_NUMBER,  # Invalid 'To' phone number
    21265: UndeliverableReason.INVALID_NUMBER,  # 'To' number cannot be a short code
    21614: UndeliverableReason.NOT_MOBILE,  # 'To' number is not a valid mobile number
    21610: UndeliverableReason.UNSUBSCRIBED,  # the recipient replied STOP
    21612: UndeliverableReason.UNREACHABLE,  # the 'To' number is not reachable via SMS
    21408: UndeliverableReason.REGION_NOT_ALLOWED,  # geo permissions do not allow this country
}
# The same for calls. A landline takes calls, and STOP stops texts only.
UNDELIVERABLE_CALL_CODES = {
    21211: UndeliverableReason.INVALID_NUMBER,  # Invalid 'To' phone number
    21217: UndeliverableReason.INVALID_NUMBER,  # Phone number does not appear to be valid
    21214: UndeliverableReason.UNREACHABLE,  # 'To' phone number cannot be reached
    21216: UndeliverableReason.UNREACHABLE,  # Account not allowed to call this number (blocked)
    21215: UndeliverableReason.REGION_NOT_ALLOWED,  # voice geo permissions do not allow it
}

# Refusals of our own account's settings, not of the customer's number: retried like any other
# error (a fixed setting takes effect at the next attempt), each attempt failing with what to fix.
SETTINGS_CODES = {
    20003: "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN: Twilio did not accept them",
    20404: "TWILIO_ACCOUNT_SID, TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER: not found",
    21212: "TWILIO_FROM_NUMBER: it is not a valid phone number",
    21606: "TWILIO_FROM_NUMBER: it cannot send texts to this country, or at all",
    21659: "TWILIO_FROM_NUMBER: it is not a number of this account",
    21703: "TWILIO_MESSAGING_SERVICE_SID: the service has no sender in it",
    21210: "TWILIO_FROM_NUMBER: it is not verified or not a number of this account",
}


class TwilioSettingsRefused(RuntimeError):
    """Twilio refused a request because of our account's settings; str() names the setting."""


def _raise_refusal(exc: TwilioRestException, undeliverable_codes: dict) -> NoReturn:
    """Raise what Twilio's refusal means: Undeliverable, TwilioSettingsRefused, or itself."""
    reason = undeliverable_codes.get(exc.code or 0)
    if reason is not None:
        raise Undeliverable(reason, exc.code) from exc
    hint = SETTINGS_CODES.get(exc.code or 0)
    if hint is not None:
        raise TwilioSettingsRefused(
            f"Twilio refused the request ({exc.code}); check {hint}."
        ) from exc
    raise exc


class _RebasedHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client, sending what it would send to api.twilio.com to `base_url`."""

    def __init__(self, base_url: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        if url.startswith(TWILIO_API_HOST):
            url = self.base_url + url[len(TWILIO_API_HOST) :]
        return super().request(method, url, *args, **kwargs)


_client_lock = threading.Lock()
_client: tuple[tuple[str, str, str], Client] | None = None


def twilio_client() -> Client:
    """The process's one Twilio client (it keeps its connections), made again when the
    credentials or the API's address change."""
    global _client
    wanted = (
        settings.TWILIO_ACCOUNT_SID,
        settings.TWILIO_AUTH_TOKEN,
        settings.TWILIO_API_BASE_URL,
    )
    with _client_lock:
        if _client is None or _client[0] != wanted:
            sid, token, base_url = wanted
            http_client = (
                _RebasedHttpClient(base_url, timeout=REQUEST_TIMEOUT_SECONDS)
                if base_url
                else TwilioHttpClient(timeout=REQUEST_TIMEOUT_SECONDS)
            )
            _client = (wanted, Client(sid, token, http_client=http_client))
        return _client[1]


class TwilioSmsBackend:
    """Send with `client.messages.create`; return Twilio's message SID."""

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
            sent = twilio_client().messages.create(
                to=message.to, body=message.body, **sender, **options
            )
        except TwilioRestException as exc:
            _raise_refusal(exc, UNDELIVERABLE_CODES)
        return sent.sid


class TwilioVoiceBackend:
    """Call with `client.calls.create`, the TwiML inline; return Twilio's call SID.

    The TwiML goes in the request itself (`Twiml`), so no URL of ours ever serves a code.
    """

    def send(self, call: VoiceCall) -> str | None:
        options = {}
        if call.status_callback:
            options["status_callback"] = call.status_callback
            options["status_callback_event"] = CALL_STATUS_EVENTS
        try:
            placed = twilio_client().calls.create(
                to=call.to,
                from_=settings.TWILIO_FROM_NUMBER,
                twiml=call.twiml,
                timeout=call.ring_seconds,
                **options,
            )
        except TwilioRestException as exc:
            _raise_refusal(exc, UNDELIVERABLE_CALL_CODES)
        return placed.sid
