"""One code through one channel (worker process): the interface every channel's backend meets.

`channel_send(channel, delivery)` hands a code to the backend of that channel and returns the
provider's id for what it sent (matched against delivery receipts), or None. The backends:

- `sms`: `verification.sms.SmsChannel`, through the SMS backend SMS_BACKEND names;
- `voice`: `verification.voice.VoiceChannel`, a call that reads the code, through VOICE_BACKEND;
- `email`: `verification.mail.EmailChannel`, through Django's email framework (EMAIL_BACKEND).

Each renders its words from `templates/verification/channels/`, translatable. Every backend raises
the same two errors: `ChannelUnusable` when the customer has no address on this channel (no email
on file), so the run moves on to the next; `Undeliverable` when the provider says this number or
address can never be reached on this channel. Anything else it raises is transient: Temporal
retries the send with backoff.

What a backend raises reaches the run's history as the send's failure, so `channel_send` passes
it on without the provider's own exception as its cause, and with the customer's number and
address masked in its words: a provider's error often quotes them ("The 'To' number ... is not a
valid phone number").
"""

import re
import threading
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.module_loading import import_string

from coffeeshop.emails import email_mask
from coffeeshop.phones import phone_mask
from verification.contracts import Channel, UndeliverableReason

# By dotted path, so that a channel's module may import this one.
CHANNEL_BACKENDS = {
    Channel.SMS: "verification.sms.SmsChannel",
    Channel.VOICE: "verification.voice.VoiceChannel",
    Channel.EMAIL: "verification.mail.EmailChannel",
}
TEMPLATE_DIR = "verification/channels"


@dataclass(frozen=True)
class CodeDelivery:
    """One code to deliver, and everything any channel needs to deliver it."""

    phone_number: str = field(repr=False)
    email: str = field(repr=False)  # empty when the customer gave none
    code: str = field(repr=False)
    ttl_seconds: int
    # The same for every attempt at sending this one code, for providers that take one.
    idempotency_key: str
    # Where the provider should post delivery receipts; None when there is no public URL.
    status_callback: str | None = None

    @property
    def minutes(self) -> int:
        """The code's time to live as people read it: whole minutes, rounded down so that a code
        never dies sooner than its message says; 0 under a minute, which messages give in
        seconds instead."""
        return self.ttl_seconds // 60


class ChannelBackend(Protocol):
    def send(self, delivery: CodeDelivery) -> str | None: ...


class ChannelUnusable(Exception):
    """The customer has no address on this channel (no email on file); try the next one."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(f"The customer cannot be reached by {channel}.")
        self.channel = channel


class ProviderError(Exception):
    """A provider failed in a way that may pass (a 503, a timeout, a refused connection); the
    send is retried. Its words are the provider's, with the customer's contact details masked."""

    def __init__(self, channel: Channel, text: str) -> None:
        super().__init__(f"The {channel} provider failed: {text}")
        self.channel = channel


class Undeliverable(Exception):
    """The provider refused this number or address for good on this channel; sending again would
    not help."""

    def __init__(self, reason: UndeliverableReason, provider_code: int | str | None = None) -> None:
        super().__init__(f"{reason} (provider code {provider_code})")
        self.reason = reason
        self.provider_code = provider_code


def channel_message_render(name: str, delivery: CodeDelivery) -> str:
    """The words of template `name` for this code, in the active language, without surrounding
    blank space."""
    context = {
        "code": delivery.code,
        "spoken_code": ", ".join(delivery.code),  # "1, 2, 3": read out one digit at a time
        "minutes": delivery.minutes,
        "seconds": delivery.ttl_seconds,
    }
    return render_to_string(f"{TEMPLATE_DIR}/{name}", context).strip()


class ConfiguredBackend:
    """The backend a setting names (one of `aliases`, or a dotted path to a class), made once per
    process, and made again when the setting changes (as tests change it)."""

    def __init__(self, setting: str, aliases: dict[str, str]) -> None:
        self.setting = setting
        self.aliases = aliases
        self._lock = threading.Lock()
        self._made: tuple[str, object] | None = None

    def backend_class(self) -> type:
        """The class the setting names; ImportError when it names nothing importable."""
        name = getattr(settings, self.setting)
        return import_string(self.aliases.get(name, name))

    def get(self):
        name = getattr(settings, self.setting)
        with self._lock:
            if self._made is None or self._made[0] != name:
                self._made = (name, self.backend_class()())
            return self._made[1]


_backends_lock = threading.Lock()
_backends: dict[Channel, ChannelBackend] = {}


def channel_backend(channel: Channel) -> ChannelBackend:
    """The backend of `channel`, made once per process."""
    with _backends_lock:
        if channel not in _backends:
            _backends[channel] = import_string(CHANNEL_BACKENDS[Channel(channel)])()
        return _backends[channel]


def channel_send(channel: Channel, delivery: CodeDelivery) -> str | None:
    """Send one code through `channel`, and only that one; return the provider's id for it.

    Raises `ChannelUnusable`, `Undeliverable`, or `ProviderError` for anything else, none of them
    with a word of the customer's number or address.
    """
    try:
        return channel_backend(channel).send(delivery)
    except ChannelUnusable:
        raise
    except Undeliverable as exc:
        raise Undeliverable(exc.reason, exc.provider_code) from None
    except Exception as exc:
        text = contact_redact(f"{type(exc).__name__}: {exc}", delivery)
        raise ProviderError(channel, text) from None


def contact_redact(text: str, delivery: CodeDelivery) -> str:
    """`text` with the delivery's phone number (with or without its `+`) and email masked."""
    if delivery.phone_number:
        masked = phone_mask(delivery.phone_number)
        text = text.replace(delivery.phone_number, masked)
        text = text.replace(delivery.phone_number.removeprefix("+"), masked)
    if delivery.email:
        pattern = re.compile(re.escape(delivery.email), re.IGNORECASE)
        text = pattern.sub(email_mask(delivery.email), text)
    return text
