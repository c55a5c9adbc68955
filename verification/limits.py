"""Per-phone-number limits against SMS pumping (web process): starts per day, texts per hour.

They hold across customers, since a pumping attack signs up again and again with one premium
number. Every entry point reaches them through the web services, which refuse with
PHONE_RATE_LIMITED. Counts live in the Django cache under a keyed hash of the number, never the
number itself. A limit of N is N slots, each taken with the cache's atomic `add` and freed by its
timeout: a sliding window that processes sharing the cache count exactly, with no lock. (The
database cache's `add` is atomic but for two processes reviving one expired slot at the same
instant.)
"""

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils.crypto import salted_hmac

from verification.contracts import Refusal
from verification.errors import PhoneLimit, VerificationRefused

KEY_SALT = "coffeeshop.verification.limits"
DAY_SECONDS = 24 * 60 * 60
HOUR_SECONDS = 60 * 60


@dataclass(frozen=True)
class _Window:
    name: PhoneLimit
    limit: int
    seconds: int


def _starts_per_day() -> _Window:
    return _Window(PhoneLimit.STARTS_PER_DAY, settings.PHONE_VERIFICATIONS_PER_DAY, DAY_SECONDS)


def _sends_per_hour() -> _Window:
    return _Window(PhoneLimit.SENDS_PER_HOUR, settings.PHONE_SENDS_PER_HOUR, HOUR_SECONDS)


def phone_limits_hit_start(*, phone_number: str, start_key: str) -> bool:
    """Count a new verification and its first text, or refuse; return whether this call counted.

    A start tried again to the same number under the same `start_key` (the customer and the run
    it follows) is counted once: a signup retried with its request_id, or sent twice at once,
    starts one run.
    """
    return _hit(
        phone_number,
        [_starts_per_day(), _sends_per_hour()],
        token=_token("start", phone_number, start_key),
    )


def phone_limits_hit_send(*, phone_number: str, request_key: str) -> bool:
    """Count one more text to the number, or refuse; return whether this call counted one.

    A request retried to the same number under the same `request_key` (its Idempotency-Key, with
    the customer and the run it was sent to) is counted once: the workflow answers the retry
    without sending again, so it must not use up the hour either. The same key sent for another
    customer or run reaches a workflow that sends, so it counts again.
    """
    return _hit(
        phone_number, [_sends_per_hour()], token=_token("request", phone_number, request_key)
    )


def phone_limits_refund_start(*, phone_number: str, start_key: str) -> None:
    """Give back what a start counted, when the verification could not be started after all."""
    _refund(_token("start", phone_number, start_key))


def phone_limits_refund_send(*, phone_number: str, request_key: str) -> None:
    """Give back the text a request counted, when no text was sent after all."""
    _refund(_token("request", phone_number, request_key))


def _token(kind: str, phone_number: str, key: str) -> str:
    """The cache key of a keyed request to this number: the slots it took, once counted."""
    return f"phone-limit:{kind}:{_digest(f'{phone_number} {key}')}"


def _hit(phone_number: str, windows: list[_Window], *, token: str) -> bool:
    windows = [window for window in windows if window.limit > 0]
    if not windows or cache.get(token) is not None:
        return False  # no limit, or a retry of a request counted already
    taken: list[str] = []
    try:
        for window in windows:
            taken.append(_slot_take(window, phone_number))
    except VerificationRefused:
        cache.delete_many(taken)
        raise
    if not cache.add(token, taken, max(window.seconds for window in windows)):
        cache.delete_many(taken)  # its twin, sent at the same moment, counted it
        return False
    return True


def _slot_take(window: _Window, phone_number: str) -> str:
    """Take a free slot of the window, and return its key; or refuse, saying when one frees."""
    now = time.time()
    slots = [f"{_key(window, phone_number)}:{index}" for index in range(window.limit)]
    for slot in slots:
        if cache.add(slot, now, window.seconds):
            return slot
    taken_at = [t for t in cache.get_many(slots).values() if isinstance(t, int | float)]
    first_free = min(taken_at) + window.seconds if taken_at else now + 1
    raise VerificationRefused(
        Refusal.PHONE_RATE_LIMITED,
        retry_after=max(1, math.ceil(first_free - now)),
        phone_limit=window.name,
    )


def _refund(token: str) -> None:
    taken = cache.get(token)
    if taken:
        cache.delete_many(taken)
    cache.delete(token)


def _key(window: _Window, phone_number: str) -> str:
    return f"phone-limit:{window.name.value}:{_digest(phone_number)}"


def _digest(text: str) -> str:
    return salted_hmac(KEY_SALT, text, algorithm="sha256").hexdigest()[:32]
