"""Per-client-IP throttles on signup, verify and resend: 429, Retry-After, our error shape."""

import uuid

import pytest
from django.core.cache import cache
from django.test import RequestFactory
from rest_framework.request import Request
from rest_framework.test import APIClient

from coffeeshop.web.throttles import (
    ClientIpFailureThrottle,
    ClientIpRateThrottle,
    ScopedThrottled,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def rates(settings):
    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"signup": "2/hour", "verify": "3/minute", "resend": "1/hour"},
    }
    yield
    cache.clear()


def post(path: str, body=None, **extra):
    return APIClient().post(path, body or {}, format="json", **extra)


def assert_throttled(response, *, at_most: int) -> None:
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= at_most


def test_signup_is_throttled_per_ip_even_for_invalid_requests():
    answers = [post("/v1/customers").status_code for _ in range(2)]
    third = post("/v1/customers")

    assert answers == [400, 400]
    assert_throttled(third, at_most=3600)


def test_verify_and_resend_are_throttled_per_ip(temporal):
    verify = f"/v1/customers/{uuid.uuid4()}:verify"
    resend = f"/v1/customers/{uuid.uuid4()}:resendCode"

    verifies = [post(verify, {"verification_code": "1234"}).status_code for _ in range(3)]
    resends = [post(resend).status_code for _ in range(1)]

    assert verifies == [404, 404, 404]
    assert resends == [404]
    assert_throttled(post(verify, {"verification_code": "1234"}), at_most=60)
    assert_throttled(post(resend), at_most=3600)


def test_each_address_has_its_own_budget():
    for _ in range(2):
        post("/v1/customers", REMOTE_ADDR="203.0.113.1")

    assert post("/v1/customers", REMOTE_ADDR="203.0.113.1").status_code == 429
    assert post("/v1/customers", REMOTE_ADDR="203.0.113.2").status_code == 400


def test_a_client_cannot_escape_by_inventing_x_forwarded_for():
    answers = [
        post("/v1/customers", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(3)
    ]

    assert answers == [400, 400, 429]


def test_behind_a_trusted_proxy_the_forwarded_client_address_counts(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

    def through_proxy(client_ip: str):
        # The client may prepend anything; the proxy appends the address it saw.
        return post("/v1/customers", HTTP_X_FORWARDED_FOR=f"6.6.6.6, {client_ip}")

    answers = [through_proxy("203.0.113.7").status_code for _ in range(3)]

    assert answers == [400, 400, 429]
    assert through_proxy("203.0.113.8").status_code == 400


def test_throttles_are_off_when_no_rate_is_set(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"signup": None, "verify": None, "resend": None},
    }

    assert {post("/v1/customers").status_code for _ in range(5)} == {400}


def failure_throttle_request(address: str = "203.0.113.5"):
    return Request(RequestFactory().post("/codec/decode", REMOTE_ADDR=address))


def test_failures_past_the_rate_are_refused_with_the_time_until_the_oldest_one_expires(
    settings, monkeypatch
):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"login_failures": "3/hour"},
    }
    now = [1000.0]
    monkeypatch.setattr(ClientIpFailureThrottle, "timer", lambda self: now[0])
    throttle = ClientIpFailureThrottle("login_failures")
    request = failure_throttle_request()

    # Five attempts that passed the check together and all failed, 100 s apart: past the rate.
    for _ in range(5):
        throttle.failure_record(request)
        now[0] += 100
    with pytest.raises(ScopedThrottled) as refused:
        throttle.check(request)

    # Failures at 1000..1400; at 1500 the third newest (1200) keeps the client out until 4800.
    assert refused.value.wait == 3300
    assert refused.value.scope == "login_failures"
    throttle.check(failure_throttle_request("203.0.113.6"))


def test_failure_throttle_is_off_without_a_rate():
    throttle = ClientIpFailureThrottle("login_failures")
    request = failure_throttle_request()

    for _ in range(50):
        throttle.failure_record(request)
    throttle.check(request)


def test_past_the_rate_by_concurrent_requests_the_answer_still_says_when_to_retry(monkeypatch):
    monkeypatch.setattr(ClientIpRateThrottle, "timer", lambda self: 10_000.0)
    # Three requests that passed the check together, against a rate of 2 an hour.
    cache.set("throttle_signup_127.0.0.1", [9_990.0, 9_980.0, 9_970.0], 3600)

    refused = post("/v1/customers")

    # The second newest (9980) keeps the client out until it is an hour old.
    assert refused.status_code == 429
    assert refused["Retry-After"] == "3580"
