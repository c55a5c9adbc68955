"""Per-phone-number limits against SMS pumping (web process): starts per day, texts per hour.

They hold across customers, since a pumping attack signs up again and again with one premium
number. Every entry point reaches them through the web services, which refuse with
PHONE_RATE_LIMITED. Counts live in the Django cache (a sliding window of timestamps) under a
keyed hash of the number, never the number itself. Checking and counting happen under one lock, so
one process never overshoots; processes sharing a cache may overshoot by the requests they run
at the same instant.
"""

import math
import threading
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

_lock = threading.Lock()


@dataclass(frozen=True)
class _Window:
    name: PhoneLimit
    limit: int
    seconds: int


def _starts_per_day() -> _Window:
    return _Window(PhoneLimit.STARTS_PER_DAY, settings.PHONE_VERIFICATIONS_PER_DAY, DAY_SECONDS)


def _sends_per_hour() -> _Window:
    return _Window(PhoneLimit.SENDS_PER_HOUR, settings.PHONE_SENDS_PER_HOUR, HOUR_SECONDS)


def phone_limits_hit_start(*, phone_number: str, start_key: str | None = None) -> bool:
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


def phone_limits_hit_send(*, phone_number: str, request_key: str | None = None) -> bool:
    """Count one more text to the number, or refuse; return whether this call counted one.

    A request retried to the same number under the same `request_key` (its Idempotency-Key, with
    the customer and the run it was sent to) is counted once: the workflow answers the retry
    without sending again, so it must not use up the hour either. The same key sent for another
    customer or run reaches a workflow that sends, so it counts again.
    """
    return _hit(
        phone_number, [_sends_per_hour()], token=_token("request", phone_number, request_key)
    )


def phone_limits_refund_start(*, phone_number: str, start_key: str | None = None) -> None:
    """Give back a counted start, when the verification could not be started after all."""
    _refund(
        phone_number,
        [_starts_per_day(), _sends_per_hour()],
        token=_token("start", phone_number, start_key),
    )


def phone_limits_refund_send(*, phone_number: str, request_key: str | None = None) -> None:
    """Give back the text counted last, when no text was sent after all."""
    _refund(phone_number, [_sends_per_hour()], token=_token("request", phone_number, request_key))


def _token(kind: str, phone_number: str, key: str | None) -> str | None:
    """The cache key marking a keyed request to this number as counted already."""
    return f"phone-limit:{kind}:{_digest(f'{phone_number} {key}')}" if key else None


def _refund(phone_number: str, windows: list[_Window], *, token: str | None = None) -> None:
    with _lock:
        if token is not None:
            cache.delete(token)
        for window in windows:
            if window.limit <= 0:
                continue
            key = _key(window, phone_number)
            history = cache.get(key, [])
            if history:
                history.pop()
                cache.set(key, history, window.seconds)


def _hit(phone_number: str, windows: list[_Window], *, token: str | None = None) -> bool:
    windows = [window for window in windows if window.limit > 0]
    if not windows:
        return False
    with _lock:
        if token is not None and cache.get(token):
            return False
        now = time.time()
        histories = {}
        for window in windows:
            key = _key(window, phone_number)
            history = [t for t in cache.get(key, []) if t > now - window.seconds]
            if len(history) >= window.limit:
                oldest_to_expire = history[-window.limit]
                retry_after = max(1, math.ceil(oldest_to_expire + window.seconds - now))
                raise VerificationRefused(
                    Refusal.PHONE_RATE_LIMITED, retry_after=retry_after, phone_limit=window.name
                )
            histories[key] = (history, window)
        for key, (history, window) in histories.items():
            cache.set(key, [*history, now], window.seconds)
        if token is not None:
            cache.set(token, True, max(window.seconds for window in windows))
        return True


def _key(window: _Window, phone_number: str) -> str:
    return f"phone-limit:{window.name.value}:{_digest(phone_number)}"


def _digest(text: str) -> str:
    return salted_hmac(KEY_SALT, text, algorithm="sha256").hexdigest()[:32]
