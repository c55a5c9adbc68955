"""Verification's refusals and endings, and the one place their words are written.

Every refusal is a `VerificationRefused` carrying a `contracts.Refusal` reason. This module maps
each reason to its HTTP status (`REFUSAL_STATUS`) and writes the sentence a person reads, once:
the API sends it as `error.message`, the pages show it as a notice, and the admin prefixes it with
the customer's name. No view, API or admin module writes a refusal's words of its own.

Outages are not refusals: `coffeeshop.temporal.client.TemporalUnavailable` covers them, and
`RequestNotAnswered` the one outage a client must hear more about.
"""

from datetime import datetime
from enum import StrEnum

from django.conf import settings
from django.utils import formats, timezone
from django.utils.translation import ngettext

from coffeeshop.errors import NotFound, Refused
from coffeeshop.phones import phone_region_refusal_text
from coffeeshop.temporal.client import TemporalUnavailable
from coffeeshop.web.text import wait_text
from verification.contracts import Channel, Refusal, UndeliverableReason, VerificationState

REFUSAL_STATUS = {
    Refusal.NO_VERIFICATION: 409,
    Refusal.VERIFICATION_ENDED: 409,
    Refusal.RESEND_COOLDOWN: 429,
    Refusal.RESEND_LIMIT_REACHED: 409,
    Refusal.PHONE_RATE_LIMITED: 429,
    Refusal.RUN_LIMIT_REACHED: 429,
    Refusal.ALREADY_VERIFIED: 409,
    Refusal.PHONE_REGION_NOT_ALLOWED: 409,
    Refusal.CHANNEL_NOT_OFFERED: 409,
    # As the IETF's Idempotency-Key draft says: the key is taken, by another request body.
    Refusal.IDEMPOTENCY_KEY_REUSED: 422,
}


class VerificationNotFound(NotFound):
    """No customer has this id, or none of their verifications has started."""

    message = "No such customer, or no verification yet."

    def __init__(self) -> None:
        super().__init__(self.message)


class RequestNotAnswered(TemporalUnavailable):
    """A code or a resend that Temporal, or the worker behind it, did not answer in time.

    The web tier cannot tell which: a Temporal server that hangs and a worker that is away both
    leave the update unanswered until the time bound. Either may still carry it out (Temporal
    keeps an update it has taken until a worker comes back): unlike other outages, the request
    may already be on its way, and only a retry under the same Idempotency-Key is sure not to
    count or send twice.
    """

    public_message = (
        "Temporal or its worker did not answer in time. The request may still be carried out "
        "once they do: retry with the same Idempotency-Key to get its answer without it being "
        "carried out twice."
    )


class PhoneLimit(StrEnum):
    """The per-phone-number limit a PHONE_RATE_LIMITED refusal hit."""

    STARTS_PER_DAY = "starts"
    SENDS_PER_HOUR = "sends"


class VerificationRefused(Refused):
    """A request about a verification that the rules refuse; `reason` says which rule."""

    reason: Refusal

    def __init__(
        self,
        reason: Refusal,
        *,
        retry_after: int | None = None,
        state: VerificationState | None = None,
        phone_limit: PhoneLimit | None = None,
        limit: int | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        self.state = state
        self.phone_limit = phone_limit
        self.limit = limit
        self.retry_at = retry_at
        super().__init__(
            reason,
            _message(reason, retry_after, state, phone_limit, limit, retry_at),
            status=REFUSAL_STATUS[reason],
            retry_after=retry_after,
        )

    @property
    def notice_level(self) -> str:
        """How a page shows it: a cooldown is news ("info"), every other refusal an "error"."""
        return "info" if self.reason is Refusal.RESEND_COOLDOWN else "error"


def _message(
    reason: Refusal,
    retry_after: int | None,
    state: VerificationState | None,
    phone_limit: PhoneLimit | None,
    limit: int | None,
    retry_at: datetime | None,
) -> str:
    match reason:
        case Refusal.NO_VERIFICATION:
            return "There is no verification for this customer."
        case Refusal.VERIFICATION_ENDED if state is VerificationState.VERIFIED:
            return _message(Refusal.ALREADY_VERIFIED, None, None, None, None, None)
        case Refusal.VERIFICATION_ENDED:
            ended = f" ({state.value})" if state else ""
            return (
                f"This verification has ended{ended}. A new one starts from the code page "
                '("Start again") or the admin ("Start a new verification").'
            )
        case Refusal.RESEND_COOLDOWN:
            wait = max(1, retry_after or 1)
            return "A new code was sent moments ago. " + ngettext(
                "You can ask for another in %(n)d second.",
                "You can ask for another in %(n)d seconds.",
                wait,
            ) % {"n": wait}
        case Refusal.RESEND_LIMIT_REACHED:
            return "No more codes can be sent for this verification."
        case Refusal.PHONE_RATE_LIMITED:
            if phone_limit is PhoneLimit.STARTS_PER_DAY:
                what = "Too many verifications were started for this phone number today."
            else:
                what = "Too many codes were sent to this phone number in the last hour."
            return f"{what} Try again in {wait_text(retry_after or 1)}."
        case Refusal.RUN_LIMIT_REACHED:
            count = limit or 0
            when = formats.date_format(timezone.localtime(retry_at), "H:i T \\o\\n j F")
            started = ngettext(
                "%(n)d verification was started in the last 24 hours",
                "%(n)d verifications were started in the last 24 hours",
                count,
            ) % {"n": count}
            return f"{started}, which is the most we allow. The next can start after {when}."
        case Refusal.ALREADY_VERIFIED:
            return "This phone number is verified already."
        case Refusal.PHONE_REGION_NOT_ALLOWED:
            return phone_region_refusal_text(settings.PHONE_ALLOWED_REGIONS)
        case Refusal.CHANNEL_NOT_OFFERED:
            return "We cannot send a code that way for this verification."
        case Refusal.IDEMPOTENCY_KEY_REUSED:
            return (
                "This Idempotency-Key was sent before with a different request. "
                "Send a new key with each new request, and the same key only with its retries."
            )


# Why a channel could not reach the customer, by channel, from an UndeliverableReason value.
UNDELIVERABLE_TEXT = {
    Channel.SMS: {
        UndeliverableReason.INVALID_NUMBER: "It is not a phone number that can get texts.",
        UndeliverableReason.NOT_MOBILE: "It is not a mobile number.",
        UndeliverableReason.UNSUBSCRIBED: (
            "It has opted out of our texts. Reply START to any of our messages to opt back in."
        ),
        UndeliverableReason.UNREACHABLE: "It cannot get text messages at the moment.",
        UndeliverableReason.REGION_NOT_ALLOWED: "We cannot text numbers in its country.",
    },
    Channel.VOICE: {
        UndeliverableReason.INVALID_NUMBER: "It is not a phone number we can call.",
        UndeliverableReason.UNREACHABLE: "It cannot take our calls at the moment.",
        UndeliverableReason.REGION_NOT_ALLOWED: "We cannot call numbers in its country.",
    },
    Channel.EMAIL: {
        UndeliverableReason.UNREACHABLE: "Your email address does not take our emails.",
    },
}
SEND_FAILED_TEXT = "Our provider could not send it just now. Try again in a few minutes."
UNDELIVERABLE_FALLBACK = {
    Channel.SMS: "Our text message provider refused it.",
    Channel.VOICE: "Our phone call provider refused it.",
    Channel.EMAIL: "Our email server refused your address.",
}


def undeliverable_text(reason: str, channel: Channel | None = None) -> str:
    """Why `channel` (a text when unknown) could not reach the customer, for their eyes."""
    channel = channel or Channel.SMS
    if reason == UndeliverableReason.SEND_FAILED:
        return SEND_FAILED_TEXT
    try:
        return UNDELIVERABLE_TEXT[channel][UndeliverableReason(reason)]
    except (KeyError, ValueError):
        return UNDELIVERABLE_FALLBACK[channel]
