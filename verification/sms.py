"""SMS backends. The project fakes only this: the provider lies outside it.

Choose one with the SMS_BACKEND setting: `console` prints messages to the worker's log, `locmem`
keeps them in `outbox` for tests. A dotted path names any class with a `send` method.
"""

import sys
import threading
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str
    idempotency_key: str


class ConsoleSmsBackend:
    """Print each message, as the seed did. For local development only."""

    def send(self, message: SmsMessage) -> None:
        sys.stdout.write(f"SMS to {message.to}: {message.body}\n")
        sys.stdout.flush()


outbox: list[SmsMessage] = []
_outbox_lock = threading.Lock()


class LocmemSmsBackend:
    """Keep messages in `verification.sms.outbox`, like Django's locmem mail backend."""

    def send(self, message: SmsMessage) -> None:
        with _outbox_lock:
            outbox.append(message)


BACKENDS = {"console": ConsoleSmsBackend, "locmem": LocmemSmsBackend}


def sms_send(*, to: str, body: str, idempotency_key: str) -> None:
    """Send one SMS through the configured backend."""
    name = settings.SMS_BACKEND
    backend_class = BACKENDS.get(name) or import_string(name)
    backend_class().send(SmsMessage(to=to, body=body, idempotency_key=idempotency_key))
