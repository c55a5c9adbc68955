"""Per-phone-number limits against SMS pumping, across customers, for the API and the page."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache
from django.db import connections
from rest_framework.test import APIClient

from customers.models import Customer
from customers.services import customer_sign_up
from tests.conftest import latest_code, live_status, sent_codes, wait_until_past
from verification import limits, services
from verification.errors import VerificationRefused
from verification.models import Verification

PHONE = "+447700900123"


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def signup_body(phone: str = PHONE) -> dict:
    return {
        "customer": {
            "first_name": "Pat",
            "last_name": "Pumper",
            "email": f"{uuid.uuid4().hex[:8]}@example.com",
            "phone_number": phone,
        }
    }


def start(phone_number: str = PHONE) -> bool:
    """Count a start of a new run, under a key of its own."""
    return limits.phone_limits_hit_start(phone_number=phone_number, start_key=str(uuid.uuid4()))


def test_starts_are_counted_per_number_with_a_retry_after(settings):
    settings.PHONE_VERIFICATIONS_PER_DAY = 2
    settings.PHONE_SENDS_PER_HOUR = 0

    start()
    start()
    with pytest.raises(VerificationRefused) as limited:
        start()
    start("+447700900999")

    assert 24 * 3600 - 5 <= limited.value.retry_after <= 24 * 3600


def test_a_refused_start_counts_nothing(settings):
    settings.PHONE_VERIFICATIONS_PER_DAY = 3
    settings.PHONE_SENDS_PER_HOUR = 1

    start()
    with pytest.raises(VerificationRefused):
        start()  # the hour is full; the day's slot it took is given back
    settings.PHONE_SENDS_PER_HOUR = 0

    start()
    start()  # the day's third: the refused start did not count
    with pytest.raises(VerificationRefused):
        start()


def test_a_refund_gives_back_exactly_what_its_request_counted(settings):
    settings.PHONE_SENDS_PER_HOUR = 2
    first, second = "key-1", "key-2"
    limits.phone_limits_hit_send(phone_number=PHONE, request_key=first)
    limits.phone_limits_hit_send(phone_number=PHONE, request_key=second)

    limits.phone_limits_refund_send(phone_number=PHONE, request_key=first)
    limits.phone_limits_refund_send(phone_number=PHONE, request_key=first)  # twice: once given
    counted = limits.phone_limits_hit_send(phone_number=PHONE, request_key="key-3")
    again = limits.phone_limits_hit_send(phone_number=PHONE, request_key=second)  # a retry

    assert (counted, again) == (True, False)
    with pytest.raises(VerificationRefused):
        limits.phone_limits_hit_send(phone_number=PHONE, request_key="key-4")


def test_concurrent_starts_never_count_past_the_limit_with_no_lock_of_ours(settings, shared_cache):
    """Each slot is one atomic `add` to the cache, so processes sharing it count exactly; threads
    stand in for them here, since nothing but the cache's own `add` orders them."""
    settings.PHONE_VERIFICATIONS_PER_DAY = 3
    settings.PHONE_SENDS_PER_HOUR = 0
    barrier = threading.Barrier(24)

    def racer() -> bool:
        barrier.wait()
        try:
            return start()
        except VerificationRefused:
            return False
        finally:
            connections.close_all()  # this thread's own

    with ThreadPoolExecutor(24) as pool:
        counted = list(pool.map(lambda _: racer(), range(24)))

    assert counted.count(True) == 3


def test_cache_keys_never_contain_the_number(settings):
    settings.PHONE_VERIFICATIONS_PER_DAY = 5
    start()

    keys = list(cache._cache)  # LocMemCache
    assert keys and not [key for key in keys if "900123" in key]


def test_zero_turns_a_limit_off(settings):
    settings.PHONE_VERIFICATIONS_PER_DAY = 0
    settings.PHONE_SENDS_PER_HOUR = 0

    for _ in range(50):
        start()


@pytest.mark.django_db(transaction=True)
def test_api_signups_past_the_daily_limit_answer_429_and_send_nothing(settings, worker, sms_outbox):
    settings.PHONE_VERIFICATIONS_PER_DAY = 2
    api = APIClient()

    answers = [api.post("/v1/customers", signup_body(), format="json") for _ in range(3)]

    assert [a.status_code for a in answers] == [201, 201, 429]
    error = answers[2].json()["error"]
    assert error["code"] == "phone_rate_limited"
    assert int(answers[2]["Retry-After"]) > 23 * 3600
    assert Customer.objects.filter(phone_number=PHONE).count() == 2
    # The refused signup started no run, so no third text can follow.
    assert Verification.objects.filter(customer__phone_number=PHONE).count() == 2
    latest_code(sms_outbox, PHONE, count=2)
    assert len(sent_codes(sms_outbox, PHONE)) == 2


def test_a_refused_signup_with_a_request_id_keeps_nothing_so_its_corrected_retry_works(
    settings, worker, sms_outbox
):
    settings.PHONE_VERIFICATIONS_PER_DAY = 1
    api = APIClient()
    api.post("/v1/customers", signup_body(), format="json")
    refused_body = {**signup_body(), "request_id": str(uuid.uuid4())}

    refused = api.post("/v1/customers", refused_body, format="json")
    customers_after_refusal = Customer.objects.count()
    refused_body["customer"]["phone_number"] = "+447700900456"
    corrected = api.post("/v1/customers", refused_body, format="json")

    assert refused.status_code == 429
    assert customers_after_refusal == 1
    assert corrected.status_code == 201, corrected.content
    assert Customer.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_signup_service_raises_for_the_page_too(settings, worker, sms_outbox):
    settings.PHONE_VERIFICATIONS_PER_DAY = 1
    customer_sign_up(first_name="A", last_name="B", email="a@example.com", phone_number=PHONE)

    with pytest.raises(VerificationRefused) as limited:
        customer_sign_up(first_name="C", last_name="D", email="c@example.com", phone_number=PHONE)

    assert limited.value.retry_after > 0
    assert Customer.objects.filter(phone_number=PHONE).count() == 1


def test_a_start_tried_again_counts_once_against_the_number(settings, worker, sms_outbox):
    settings.PHONE_VERIFICATIONS_PER_DAY = 2
    first, second, third = (
        Customer.objects.create(
            first_name=name, last_name="Twice", email=f"{name}@example.com", phone_number=PHONE
        )
        for name in ("first", "second", "third")
    )

    services.verification_start(customer=first)
    # The same signup again before its row was written: sent twice at once, or retried with
    # its request_id after the first try died. It finds the run the first call started.
    again = services.verification_start(customer=first)
    services.verification_start(customer=second)  # the number's second verification

    with pytest.raises(VerificationRefused):
        services.verification_start(customer=third)
    assert again.run_id == Verification.objects.get(customer=first).run_id
    assert len(sent_codes(sms_outbox, PHONE)) == 2


@pytest.mark.django_db(transaction=True)
def test_resends_past_the_hourly_limit_answer_429(settings, worker, sms_outbox):
    settings.PHONE_SENDS_PER_HOUR = 2
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    api = APIClient()
    customer_id = api.post("/v1/customers", signup_body(), format="json").json()["customer"]["id"]
    latest_code(sms_outbox, PHONE)

    first = api.post(f"/v1/customers/{customer_id}:resendCode")
    second = api.post(f"/v1/customers/{customer_id}:resendCode")

    assert first.status_code == 202
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "phone_rate_limited"
    assert 3590 <= int(second["Retry-After"]) <= 3600
    # The workflow counted two sends: the refused resend never reached it.
    assert live_status(Customer.objects.get(pk=customer_id)).sends_remaining == 3
    latest_code(sms_outbox, PHONE, count=2)


@pytest.mark.django_db(transaction=True)
def test_a_resend_the_workflow_refuses_does_not_use_up_the_hour(settings, worker, sms_outbox):
    settings.PHONE_SENDS_PER_HOUR = 2
    settings.VERIFICATION_RESEND_COOLDOWN = 1
    api = APIClient()
    customer_id = api.post("/v1/customers", signup_body(), format="json").json()["customer"]["id"]

    cooling = api.post(f"/v1/customers/{customer_id}:resendCode")
    wait_until_past(live_status(Customer.objects.get(pk=customer_id)).resend_available_at)
    after = api.post(f"/v1/customers/{customer_id}:resendCode")

    assert cooling.json()["error"]["code"] == "resend_cooldown"
    assert after.status_code == 202


@pytest.mark.django_db(transaction=True)
def test_signups_refused_while_temporal_is_down_do_not_use_up_the_day(settings, temporal):
    settings.PHONE_VERIFICATIONS_PER_DAY = 1
    address = settings.TEMPORAL_ADDRESS
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_REQUEST_TIMEOUT = 2
    api = APIClient()

    outage = [api.post("/v1/customers", signup_body(), format="json") for _ in range(2)]
    settings.TEMPORAL_ADDRESS = address
    after = api.post("/v1/customers", signup_body(), format="json")

    assert [a.status_code for a in outage] == [503, 503]
    assert after.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_one_idempotency_key_reused_for_other_customers_counts_against_each_number(
    settings, worker, sms_outbox
):
    settings.PHONE_SENDS_PER_HOUR = 2
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    api = APIClient()
    on_full = [
        api.post("/v1/customers", signup_body(), format="json").json()["customer"]["id"]
        for _ in range(2)
    ]  # the number's two texts this hour
    elsewhere = api.post("/v1/customers", signup_body("+447700900456"), format="json")

    def resend(customer_id):
        return api.post(f"/v1/customers/{customer_id}:resendCode", HTTP_IDEMPOTENCY_KEY="key-x")

    counted = resend(elsewhere.json()["customer"]["id"])
    retried = resend(elsewhere.json()["customer"]["id"])
    reused = [resend(customer_id) for customer_id in on_full]

    assert counted.status_code == retried.status_code == 202
    assert [answer.status_code for answer in reused] == [429, 429]
    assert {answer.json()["error"]["code"] for answer in reused} == {"phone_rate_limited"}
    latest_code(sms_outbox, PHONE, count=2)
    assert len(sent_codes(sms_outbox, PHONE)) == 2


@pytest.mark.django_db(transaction=True)
def test_a_customer_id_used_again_after_a_delete_counts_its_first_text_against_the_number(
    settings, worker, sms_outbox
):
    settings.PHONE_SENDS_PER_HOUR = 1
    customer = Customer.objects.create(
        first_name="Old", last_name="One", email="o@example.com", phone_number=PHONE
    )
    services.verification_start(customer=customer)  # the number's one text this hour
    Customer.objects.filter(pk=customer.pk).delete()
    again = Customer.objects.create(
        id=customer.pk, first_name="New", last_name="One", email="n@example.com", phone_number=PHONE
    )

    with pytest.raises(VerificationRefused) as limited:
        services.verification_start(customer=again)
    assert limited.value.reason.value == "phone_rate_limited"
    assert len(sent_codes(sms_outbox, PHONE)) == 1
