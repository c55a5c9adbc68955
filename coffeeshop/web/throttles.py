"""Per-client-IP throttles for the API and the pages' forms, counted in the Django cache."""

import ipaddress
import math
from types import SimpleNamespace

from django.http import HttpRequest
from rest_framework.exceptions import Throttled
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

# An IPv6 subscriber is given a whole /64 (RFC 6177) and can take a new address in it at will.
IPV6_CLIENT_PREFIX = 64


def client_ident(address: str) -> str:
    """What a throttle counts a client by: an IPv4 address, or an IPv6 address's /64 network.

    An IPv4-mapped IPv6 address (`::ffff:203.0.113.1`, from a dual-stack socket) counts as its
    IPv4 address. Anything that is no IP address (a unix socket's peer) is counted as given.
    """
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network((ip, IPV6_CLIENT_PREFIX), strict=False))


class ClientIpCounts:
    """What the throttles below share: the rate for `scope`, its key per client, the wait."""

    def get_rate(self) -> str | None:
        # Read at each request, not at import, so settings changes (and tests) take effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view) -> str:
        ident = client_ident(self.get_ident(request))
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def wait(self) -> float:
        """Seconds until enough counted requests expire for the client to be let in again."""
        # Concurrent requests can all pass the check, leaving more counted than the rate; DRF's
        # own estimate has no answer then, and a 429 needs its Retry-After.
        if not 0 < self.num_requests <= len(self.history):
            return float(self.duration)
        oldest_blocking = self.history[self.num_requests - 1]
        return max(1.0, oldest_blocking + self.duration - self.now)


class ClientIpRateThrottle(ClientIpCounts, ScopedRateThrottle):
    """At most DEFAULT_THROTTLE_RATES[view.throttle_scope] per client IP; a rate of None is off.

    The client IP is REMOTE_ADDR, or the address TRUSTED_PROXY_COUNT proxies put in
    X-Forwarded-For (DRF's NUM_PROXIES), so a client cannot pick its own; an IPv6 client is
    counted by its /64 (`client_ident`). Views without a
    `throttle_scope` are not throttled, and neither are requests a view does not act on: GET,
    HEAD and OPTIONS, or a method it has no handler for (DRF throttles before it answers 405).
    """

    def allow_request(self, request, view) -> bool:
        method = request.method.lower()
        if request.method in SAFE_METHODS:
            return True
        if hasattr(view, "http_method_names") and not hasattr(view, method):
            return True
        return super().allow_request(request, view)


class ScopedThrottled(Throttled):
    """429 from a throttle that no view's `throttle_scope` names; `scope` labels the metric."""

    def __init__(self, wait: float | None, *, scope: str) -> None:
        super().__init__(wait)
        self.scope = scope


def client_ip_throttle(request: HttpRequest, *, scope: str) -> None:
    """Count a request against the client IP's `scope`, in the API's counter for that scope.

    Past the rate raise ScopedThrottled, with the wait, and count nothing: what DRF does for a
    view whose `throttle_scope` is `scope`. For views that are not DRF's, such as the pages.
    """
    throttle = ClientIpRateThrottle()
    if not throttle.allow_request(request, SimpleNamespace(throttle_scope=scope)):
        raise ScopedThrottled(throttle.wait(), scope=scope)


class ClientIpFailureThrottle(ClientIpCounts, SimpleRateThrottle):
    """At most DEFAULT_THROTTLE_RATES[scope] failures per client IP; a rate of None is off.

    For a check that costs the server dearly whatever its outcome, such as a password hash:
    `reserve` counts the attempt as a failure before the work, refusing it once the client has
    failed too often, and `refund` takes that back when the check passes. Counted first, a burst
    of attempts sent at once sees its own reservations, so no more than the rate get to the
    work: a rate of N is N cache slots, each taken with the cache's atomic `add`, so processes
    sharing a cache count exactly too. Successes are not counted. The client IP is the one
    `ClientIpRateThrottle` uses.
    """

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__()

    def reserve(self, request: Request | HttpRequest) -> str:
        """Count one failure now; raise ScopedThrottled (429, Retry-After) past the rate.

        Return the reservation, for `refund`.
        """
        if self.rate is None:
            return ""
        key = self.get_cache_key(request, None)
        now = self.timer()
        slots = [f"{key}:{index}" for index in range(self.num_requests)]
        for slot in slots:
            if self.cache.add(slot, now, self.duration):
                return slot
        taken_at = [t for t in self.cache.get_many(slots).values() if isinstance(t, int | float)]
        first_free = min(taken_at) + self.duration if taken_at else now + 1
        raise ScopedThrottled(max(1, math.ceil(first_free - now)), scope=self.scope)

    def refund(self, reservation: str) -> None:
        """Take back the failure `reserve` counted: the attempt passed."""
        if reservation:
            self.cache.delete(reservation)
