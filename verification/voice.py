"""The voice channel and its backends (worker process): a call that reads the code out.

`VoiceChannel` is the `voice` channel of `verification.channels`: it renders the call's TwiML
from `templates/verification/channels/voice.xml` at send time (the code said digit by digit,
twice) and hands it to the voice backend, which passes it on and never writes it anywhere.

Choose the backend with the VOICE_BACKEND setting: `twilio` calls through Twilio (`twilio.py`),
`console` prints what the call would say to the worker's log, `locmem` keeps calls in `calls` for
tests. A dotted path names any class with the same `send(call)` method. Errors as in `sms.py`:
`channels.Undeliverable` for a number that can never take the call, anything else transient.
"""

import re
import sys
import threading
from dataclasses import dataclass, field
from xml.etree import ElementTree

from django.conf import settings

from coffeeshop.phones import phone_mask
from verification.channels import CodeDelivery, ConfiguredBackend, channel_message_render

DIGIT = re.compile(r"[0-9]")
# Twilio's ring time is 5 to 600 s (Timeout on the Call resource); 60 is its default.
MAX_RING_SECONDS = 60
MIN_RING_SECONDS = 5


@dataclass(frozen=True)
class VoiceCall:
    to: str = field(repr=False)
    twiml: str = field(repr=False)  # what the call says, the code in it
    idempotency_key: str
    # Seconds the phone may ring: no longer than the code lives, so no dead code is read out.
    ring_seconds: int = MAX_RING_SECONDS
    # Where the provider should post the call's progress; None when there is no public URL.
    status_callback: str | None = None

    @property
    def spoken(self) -> str:
        """The words the call says, as one line: every `<Say>` of the TwiML, in order."""
        # Our own TwiML, rendered from our template a moment ago: nothing untrusted to parse.
        says = ElementTree.fromstring(self.twiml).iter("Say")  # noqa: S314
        return " ".join(" ".join((say.text or "").split()) for say in says)


class ConsoleVoiceBackend:
    """Print what each call would say. For local development only.

    With DEBUG off it prints the number masked and every digit hidden, as the console SMS backend
    does, so no code reaches a production log (it calls nobody either: use a real backend).
    """

    def send(self, call: VoiceCall) -> str | None:
        to, spoken = call.to, call.spoken
        if not settings.DEBUG:
            to, spoken = phone_mask(to), DIGIT.sub("•", spoken)
        sys.stdout.write(f"CALL to {to}: {spoken}\n")
        sys.stdout.flush()
        return None


calls: list[VoiceCall] = []
_calls_lock = threading.Lock()


class LocmemVoiceBackend:
    """Keep calls in `verification.voice.calls`, as the locmem SMS backend keeps texts.

    A call's id is its place in the list, from 1: "locmem-call-3" is `calls[2]`.
    """

    def send(self, call: VoiceCall) -> str | None:
        with _calls_lock:
            calls.append(call)
            return f"locmem-call-{len(calls)}"


BACKENDS = {
    "console": "verification.voice.ConsoleVoiceBackend",
    "locmem": "verification.voice.LocmemVoiceBackend",
    "twilio": "verification.twilio.TwilioVoiceBackend",
}

_configured = ConfiguredBackend("VOICE_BACKEND", BACKENDS)


def voice_backend_class() -> type:
    """The class VOICE_BACKEND names; ImportError when it names nothing importable."""
    return _configured.backend_class()


def voice_backend():
    """The configured backend, made once per process."""
    return _configured.get()


def voice_send(call: VoiceCall) -> str | None:
    """Place one call through the configured backend; return the provider's call id."""
    return voice_backend().send(call)


class VoiceChannel:
    """The `voice` channel: a call that reads the code out, through the voice backend."""

    def send(self, delivery: CodeDelivery) -> str | None:
        return voice_send(
            VoiceCall(
                to=delivery.phone_number,
                twiml=channel_message_render("voice.xml", delivery),
                idempotency_key=delivery.idempotency_key,
                ring_seconds=max(MIN_RING_SECONDS, min(delivery.ttl_seconds, MAX_RING_SECONDS)),
                status_callback=delivery.status_callback,
            )
        )
