"""Per-client-IP throttles on signup, verify and resend: 429 with Retry-After, our error shape on
the API, a page on the forms; one budget per address for both."""

import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.request import Request
from rest_framework.test import APIClient

from coffeeshop.web.throttles import (
    ClientIpFailureThrottle,
    ClientIpRateThrottle,
    ScopedThrottled,
)
from customers.models import Customer
from tests.conftest import latest_code, live_status, sent_codes, throttle_rates, wrong_code
from verification.models import Verification

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def rates(settings):
    cache.clear()
    throttle_rates(settings, signup="2/hour", verify="3/minute", resend="1/hour")
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


def test_requests_the_api_does_not_act_on_are_never_counted():
    client = APIClient()
    verify = f"/v1/customers/{uuid.uuid4()}:verify"
    ignored = [
        client.generic(method, path).status_code
        for method in ("GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE")
        for path in ("/v1/customers", verify)
        for _ in range(4)
    ]

    assert 429 not in ignored
    assert [post("/v1/customers").status_code for _ in range(2)] == [400, 400]
    assert_throttled(post("/v1/customers"), at_most=3600)


def test_each_address_has_its_own_budget():
    for _ in range(2):
        post("/v1/customers", REMOTE_ADDR="203.0.113.1")

    assert post("/v1/customers", REMOTE_ADDR="203.0.113.1").status_code == 429
    assert post("/v1/customers", REMOTE_ADDR="203.0.113.2").status_code == 400


def test_an_ipv6_client_is_one_client_across_its_slash_64():
    for host in ("::1", "::2"):
        post("/v1/customers", REMOTE_ADDR=f"2001:db8:0:1{host}")

    assert post("/v1/customers", REMOTE_ADDR="2001:db8:0:1:ffff::3").status_code == 429
    assert post("/v1/customers", REMOTE_ADDR="2001:db8:0:2::1").status_code == 400


def test_an_ipv4_mapped_address_counts_as_the_ipv4_address():
    for _ in range(2):
        post("/v1/customers", REMOTE_ADDR="::ffff:203.0.113.4")

    assert post("/v1/customers", REMOTE_ADDR="203.0.113.4").status_code == 429


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
    throttle_rates(settings, signup=None, verify=None, resend=None)

    assert {post("/v1/customers").status_code for _ in range(5)} == {400}


def failure_throttle_request(address: str = "203.0.113.5"):
    return Request(RequestFactory().post("/codec/decode", REMOTE_ADDR=address))


def test_failures_past_the_rate_are_refused_with_the_time_until_the_oldest_one_expires(
    settings, monkeypatch
):
    throttle_rates(settings, login_failures="3/hour")
    now = [1000.0]
    monkeypatch.setattr(ClientIpFailureThrottle, "timer", lambda self: now[0])
    throttle = ClientIpFailureThrottle("login_failures")
    request = failure_throttle_request()

    # Three failed attempts, 100 s apart: the rate.
    for _ in range(3):
        throttle.reserve(request)
        now[0] += 100
    with pytest.raises(ScopedThrottled) as refused:
        throttle.reserve(request)

    # Failures at 1000..1200; at 1300 the oldest keeps the client out until 4600.
    assert refused.value.wait == 3300
    assert refused.value.scope == "login_failures"
    throttle.reserve(failure_throttle_request("203.0.113.6"))


def test_an_attempt_that_passes_is_refunded_and_does_not_count(settings):
    throttle_rates(settings, login_failures="2/hour")
    throttle = ClientIpFailureThrottle("login_failures")
    request = failure_throttle_request()

    for _ in range(5):
        throttle.refund(throttle.reserve(request))
    throttle.reserve(request)
    throttle.reserve(request)

    with pytest.raises(ScopedThrottled):
        throttle.reserve(request)


def test_failure_throttle_is_off_without_a_rate():
    throttle = ClientIpFailureThrottle("login_failures")
    request = failure_throttle_request()

    for _ in range(50):
        throttle.reserve(request)


def test_past_the_rate_by_concurrent_requests_the_answer_still_says_when_to_retry(monkeypatch):
    monkeypatch.setattr(ClientIpRateThrottle, "timer", lambda self: 10_000.0)
    # Three requests that passed the check together, against a rate of 2 an hour.
    cache.set("throttle_signup_127.0.0.1", [9_990.0, 9_980.0, 9_970.0], 3600)

    refused = post("/v1/customers")

    # The second newest (9980) keeps the client out until it is an hour old.
    assert refused.status_code == 429
    assert refused["Retry-After"] == "3580"


# The pages' forms count against the same scopes, in the same counters.

SIGNUP_PAGE = "/"


def page_signup(client, n: int = 0, *, meta: dict | None = None, **fields):
    entries = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"ada{n}@example.com",
        "phone_number": f"07700 90012{n}",
        "request_id": f"request-{n}",
    }
    return client.post(SIGNUP_PAGE, {**entries, **fields}, **(meta or {}))


def page_url(name: str, customer_id) -> str:
    return reverse(f"verification:{name}", args=[customer_id])


def assert_throttled_page(response, *, at_most: int) -> str:
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= at_most
    html = response.content.decode()
    assert "<title>Error: " in html
    return html


def test_signup_page_past_the_rate_answers_429_keeps_the_entries_and_sends_nothing(
    client, worker, sms_outbox
):
    answers = [page_signup(client, n).status_code for n in range(2)]
    refused = page_signup(client, 2)

    assert answers == [302, 302]
    html = assert_throttled_page(refused, at_most=3600)
    assert "Too many signups from your address" in html
    assert re.search(r"send the form again in (an hour|\d+ minutes)\.", html)
    for kept in ('value="Lovelace"', 'value="ada2@example.com"', 'value="07700 900122"'):
        assert kept in html
    assert 'name="request_id" value="request-2"' in html
    assert Customer.objects.count() == 2
    assert sent_codes(sms_outbox, "+447700900122") == []


def test_page_and_api_share_one_signup_budget_and_refusals_are_not_counted(client):
    page = page_signup(client, first_name="")  # a field error: counted, as the API's 400s are
    api = post("/v1/customers")

    assert (page.status_code, api.status_code) == (200, 400)
    assert_throttled(post("/v1/customers"), at_most=3600)
    assert_throttled_page(page_signup(client), at_most=3600)
    assert len(cache.get("throttle_signup_127.0.0.1")) == 2


def test_signup_page_counts_each_address_apart_by_the_api_s_rule(client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

    def through_proxy(client_ip: str, invented: str = "6.6.6.6"):
        # The client may prepend anything; the proxy appends the address it saw.
        meta = {"HTTP_X_FORWARDED_FOR": f"{invented}, {client_ip}"}
        return page_signup(client, first_name="", meta=meta).status_code

    answers = [through_proxy("203.0.113.7", invented=f"198.51.100.{n}") for n in range(3)]

    assert answers == [200, 200, 429]
    assert through_proxy("203.0.113.8") == 200
    assert post("/v1/customers", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7").status_code == 429


def test_another_address_keeps_its_own_budget_on_the_pages(client):
    for _ in range(2):
        page_signup(client, first_name="", meta={"REMOTE_ADDR": "203.0.113.1"})

    assert page_signup(client, meta={"REMOTE_ADDR": "203.0.113.1"}).status_code == 429
    assert (
        page_signup(client, first_name="", meta={"REMOTE_ADDR": "203.0.113.2"}).status_code == 200
    )


def test_gets_of_the_pages_are_never_throttled_or_counted(client):
    customer = Customer.objects.create(
        first_name="Ada", last_name="Lovelace", email="a@example.com", phone_number="+447700900123"
    )
    gets = [SIGNUP_PAGE] + [page_url(name, customer.id) for name in ("resend", "start-again")]

    before = [client.get(path).status_code for path in gets * 3]
    allowed = [page_signup(client, first_name="").status_code for _ in range(2)]
    after = [client.get(path).status_code for path in gets * 3]

    assert allowed == [200, 200]
    assert before == after == [200, 302, 302] * 3


def test_a_code_sent_past_the_rate_on_the_page_is_not_checked_and_costs_no_attempt(
    client, sign_up, sms_outbox
):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)
    verify = page_url("verify", customer.id)

    answers = [
        client.post(verify, {"code": wrong_code(code), "form_key": uuid.uuid4()}),
        client.post(verify, {"code": "12ab", "form_key": uuid.uuid4()}),  # malformed: counted
    ]
    api = post(f"/v1/customers/{customer.id}:verify", {"verification_code": wrong_code(code)})
    refused = client.post(verify, {"code": code, "form_key": uuid.uuid4()})

    assert [answer.status_code for answer in answers] == [302, 200]
    assert api.status_code == 200
    html = assert_throttled_page(refused, at_most=60)
    assert "no attempt was used" in html
    assert "You can try again in a minute." in html
    assert f'href="{verify}">Back to the code page</a>' in html
    view = live_status(customer)
    assert view.attempts_remaining == 1
    assert not Customer.objects.get(pk=customer.pk).phone_verified


def test_a_new_code_asked_for_past_the_rate_on_the_page_sends_nothing(client, sign_up, sms_outbox):
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)
    resend = page_url("resend", customer.id)

    first = client.post(resend, {"channel": "sms"})  # refused by the cooldown, yet counted
    refused = client.post(resend, {"channel": "voice"})

    assert first.status_code == 302
    html = assert_throttled_page(refused, at_most=3600)
    assert f'href="{page_url("verify", customer.id)}">Back to the code page</a>' in html
    assert_throttled(post(f"/v1/customers/{customer.id}:resendCode"), at_most=3600)
    assert len(sent_codes(sms_outbox, customer.phone_number)) == 1


def test_start_again_on_the_page_spends_the_signup_budget(client):
    customer = Customer.objects.create(
        first_name="Ada", last_name="Lovelace", email="a@example.com", phone_number="+447700900123"
    )
    post("/v1/customers")
    page_signup(client, first_name="")

    refused = client.post(page_url("start-again", customer.id))

    html = assert_throttled_page(refused, at_most=3600)
    assert f'href="{page_url("failed", customer.id)}">Back to your verification</a>' in html
    assert not Verification.objects.filter(customer=customer).exists()


def test_failures_sent_at_once_never_get_past_the_rate_with_no_lock_of_ours(settings, shared_cache):
    """Each failure is one atomic `add` to the cache, so processes sharing it count exactly;
    threads stand in for them, since nothing but the cache's own `add` orders them."""
    throttle_rates(settings, login_failures="10/hour")
    barrier = threading.Barrier(40)

    def attempt() -> bool:
        barrier.wait()
        try:
            ClientIpFailureThrottle("login_failures").reserve(failure_throttle_request())
        except ScopedThrottled:
            return False
        finally:
            connections.close_all()  # this thread's own
        return True

    with ThreadPoolExecutor(40) as pool:
        passed = list(pool.map(lambda _: attempt(), range(40)))

    assert passed.count(True) == 10
