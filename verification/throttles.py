"""Per-client-IP throttles for submitting codes and asking for new ones."""

from customers.throttles import ClientIpRateThrottle


class VerifyRateThrottle(ClientIpRateThrottle):
    scope = "verify"


class ResendRateThrottle(ClientIpRateThrottle):
    scope = "resend"
