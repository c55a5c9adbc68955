"""Idempotency-Key on :verify and :resendCode: a retry is answered once, another request refused.

The key is the client's promise that two requests are one. So the same key with another code or
another channel is a client bug, refused 422 (as the IETF Idempotency-Key draft says), and never
answered with the first request's answer.
"""

import pytest

from tests.conftest import latest_code, live_status, sent_codes, wrong_code

pytestmark = pytest.mark.django_db(transaction=True)


def verify(api, customer_id, code, key):
    return api.post(
        f"/v1/customers/{customer_id}:verify",
        {"verification_code": code},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def resend(api, customer_id, key, body=None):
    return api.post(
        f"/v1/customers/{customer_id}:resendCode", body, format="json", HTTP_IDEMPOTENCY_KEY=key
    )


def test_a_key_sent_again_with_another_code_is_refused_422_and_not_counted(
    api, sign_up, sms_outbox
):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    first = verify(api, customer.id, wrong_code(code), "k-1")
    retried = verify(api, customer.id, wrong_code(code), "k-1")
    reused = verify(api, customer.id, code, "k-1")

    assert first.status_code == retried.status_code == 200
    assert first.json() == retried.json()
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert live_status(customer).attempts_remaining == 2
    assert verify(api, customer.id, code, "k-2").json()["result"] == ("VERIFICATION_RESULT_SUCCESS")


def test_a_key_sent_again_for_another_channel_is_refused_422_and_sends_nothing(
    api, settings, sign_up, sms_outbox
):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)

    first = resend(api, customer.id, "r-1")
    reused = resend(api, customer.id, "r-1", {"channel": "sms"})

    assert first.status_code == 202
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    latest_code(sms_outbox, customer.phone_number, count=2)
    assert len(sent_codes(sms_outbox, customer.phone_number)) == 2
    assert live_status(customer).sends_remaining == first.json()["sends_remaining"]


def test_an_unanswered_code_says_it_may_still_count_and_its_keyed_retry_counts_once(
    api, settings, temporal, start_worker, sms_outbox
):
    from customers.services import customer_sign_up

    settings.TEMPORAL_REQUEST_TIMEOUT = 2
    customer = customer_sign_up(
        first_name="No", last_name="Worker", email="n@example.com", phone_number="+447700900998"
    ).customer

    stalled = verify(api, customer.id, "0000", "late-1")
    start_worker()
    settings.TEMPORAL_REQUEST_TIMEOUT = 10
    retried = verify(api, customer.id, "0000", "late-1")

    assert stalled.status_code == 503
    assert "same Idempotency-Key" in stalled.json()["error"]["message"]
    assert retried.json()["attempts_remaining"] == 2
    assert live_status(customer).attempts_remaining == 2
