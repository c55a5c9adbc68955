"""SMS backends. The project fakes only this: the provider lies outside it.

Choose one with the SMS_BACKEND setting: `console` prints messages to the worker's log, `locmem`
keeps them in `outbox` for tests. A dotted path names any class with a `send` method.
"""

import re
import sys
import threading
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

from coffeeshop.phones import phone_mask

DIGIT = re.compile(r"[0-9]")


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str
    idempotency_key: str


class ConsoleSmsBackend:
    """Print each message, as the seed did. For local development only.

    With DEBUG off it prints the number masked and every digit of the text hidden, so no code
    reaches a production log (it delivers nothing either: use a real provider's backend).
    """

    def send(self, message: SmsMessage) -> None:
        to, body = message.to, message.body
        if not settings.DEBUG:
            to, body = phone_mask(to), DIGIT.sub("•", body)
        sys.stdout.write(f"SMS to {to}: {body}\n")
        sys.stdout.flush()


outbox: list[SmsMessage] = []
_outbox_lock = threading.Lock()


class LocmemSmsBackend:
    """Keep messages in `verification.sms.outbox`, like Django's locmem mail backend."""

    def send(self, message: SmsMessage) -> None:
        with _outbox_lock:
            outbox.append(message)


BACKENDS = {"console": ConsoleSmsBackend, "locmem": LocmemSmsBackend}


def sms_backend_class() -> type:
    """The class SMS_BACKEND names; ImportError when it names nothing importable."""
    name = settings.SMS_BACKEND
    return BACKENDS.get(name) or import_string(name)


def sms_send(*, to: str, body: str, idempotency_key: str) -> None:
    """Send one SMS through the configured backend."""
    sms_backend_class()().send(SmsMessage(to=to, body=body, idempotency_key=idempotency_key))
