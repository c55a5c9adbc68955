"""The SMS channel and its backends (worker process). The project fakes only the provider.

`SmsChannel` is the `sms` channel of `verification.channels`: it words the code from
`templates/verification/channels/sms.txt` and sends it through the SMS backend.

Choose the backend with the SMS_BACKEND setting: `twilio` sends through Twilio (`twilio.py`),
`console` prints messages to the worker's log, `locmem` keeps them in `outbox` for tests. A dotted
path names any class with the same `send` method.

A backend's `send` returns the provider's id for the message (None when there is none) and
raises `SmsUndeliverable` (`channels.Undeliverable`) when the provider says this number can never
get the text. Anything else it raises is transient: Temporal retries the send with backoff.
"""

import re
import sys
import threading
from dataclasses import dataclass

from django.conf import settings

from coffeeshop.phones import phone_mask
from verification.channels import (
    CodeDelivery,
    ConfiguredBackend,
    Undeliverable,
    channel_message_render,
)

DIGIT = re.compile(r"[0-9]")


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str
    idempotency_key: str
    # Seconds after which the provider should drop a text it has not delivered yet (the code's
    # time to live): a code that arrives after it has expired only confuses.
    validity_seconds: int | None = None
    # Where the provider should post delivery receipts; None when there is no public URL.
    status_callback: str | None = None


# What SMS backends raised before there were other channels; the same class.
SmsUndeliverable = Undeliverable


class ConsoleSmsBackend:
    """Print each message, as the seed did. For local development only.

    With DEBUG off it prints the number masked and every digit of the text hidden, so no code
    reaches a production log (it delivers nothing either: use a real provider's backend).
    """

    def send(self, message: SmsMessage) -> str | None:
        to, body = message.to, message.body
        if not settings.DEBUG:
            to, body = phone_mask(to), DIGIT.sub("•", body)
        sys.stdout.write(f"SMS to {to}: {body}\n")
        sys.stdout.flush()
        return None


outbox: list[SmsMessage] = []
_outbox_lock = threading.Lock()


class LocmemSmsBackend:
    """Keep messages in `verification.sms.outbox`, like Django's locmem mail backend.

    A message's id is its place in the outbox, from 1: "locmem-3" is `outbox[2]`.
    """

    def send(self, message: SmsMessage) -> str | None:
        with _outbox_lock:
            outbox.append(message)
            return f"locmem-{len(outbox)}"


BACKENDS = {
    "console": "verification.sms.ConsoleSmsBackend",
    "locmem": "verification.sms.LocmemSmsBackend",
    "twilio": "verification.twilio.TwilioSmsBackend",
}

_configured = ConfiguredBackend("SMS_BACKEND", BACKENDS)


def sms_backend_class() -> type:
    """The class SMS_BACKEND names; ImportError when it names nothing importable."""
    return _configured.backend_class()


def sms_backend():
    """The configured backend, made once per process (a provider client keeps its connections)."""
    return _configured.get()


def sms_send(message: SmsMessage) -> str | None:
    """Send one SMS through the configured backend; return the provider's message id."""
    return sms_backend().send(message)


class SmsChannel:
    """The `sms` channel: one text with the code, through the SMS backend."""

    def send(self, delivery: CodeDelivery) -> str | None:
        return sms_send(
            SmsMessage(
                to=delivery.phone_number,
                body=channel_message_render("sms.txt", delivery),
                idempotency_key=delivery.idempotency_key,
                validity_seconds=delivery.ttl_seconds,
                status_callback=delivery.status_callback,
            )
        )
