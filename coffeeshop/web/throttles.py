"""Per-client-IP throttles for the API, counted in the Django cache."""

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle


class ClientIpRateThrottle(ScopedRateThrottle):
    """At most DEFAULT_THROTTLE_RATES[view.throttle_scope] per client IP; a rate of None is off.

    The client IP is REMOTE_ADDR, or the address TRUSTED_PROXY_COUNT proxies put in
    X-Forwarded-For (DRF's NUM_PROXIES), so a client cannot pick its own. Views without a
    `throttle_scope` are not throttled.
    """

    def get_rate(self) -> str | None:
        # Read at each request, not at import, so settings changes (and tests) take effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
