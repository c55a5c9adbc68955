"""Twilio's delivery receipts, for texts and calls: signed with the SDK's own scheme, checked,
and passed to the run.

Each receipt is signed here with `twilio.request_validator.RequestValidator`, as Twilio signs it,
for the public URL the send gave Twilio (PUBLIC_BASE_URL), while the test client reaches the app
at http://testserver, as a proxy would.
"""

import logging
import uuid
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient
from twilio.request_validator import RequestValidator

from coffeeshop.web.metrics import REGISTRY
from tests.conftest import latest_code, live_status, sent_codes
from verification import services
from verification.models import Verification

pytestmark = pytest.mark.django_db(transaction=True)

AUTH_TOKEN = "receipt-signing-token"
PUBLIC = "https://coffee.example.com"
PATH = "/v1/webhooks/twilio/message-status"
CALLS = "coffeeshop_call_delivery_receipts"
TEXTS = "coffeeshop_sms_delivery_receipts"


@pytest.fixture
def signed(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = PUBLIC
    return settings


def receipt(workflow_id: str, message_id: str, status: str, *, signature: str | None = None):
    """Post a receipt as Twilio does; signed correctly unless `signature` says otherwise."""
    query = f"?workflow={workflow_id}"
    form = {
        "MessageSid": message_id,
        "MessageStatus": status,
        "AccountSid": "AC" + "0" * 32,
        "To": "+447700900123",
    }
    if signature is None:
        signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + PATH + query, form)
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature else {}
    return APIClient().post(
        PATH + query,
        urlencode(form),
        content_type="application/x-www-form-urlencoded",
        **headers,
    )


def message_id_of_latest_code(sms_outbox) -> str:
    return f"locmem-{len(sms_outbox)}"


def test_a_signed_receipt_reaches_the_run_and_the_status_shows_it(signed, sign_up, sms_outbox):
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)
    run = Verification.objects.get(customer=customer)

    answers = [
        receipt(run.workflow_id, message_id_of_latest_code(sms_outbox), status).status_code
        for status in ("queued", "sent", "delivered")
    ]

    assert answers == [204, 204, 204]
    assert live_status(customer).delivery_status == "delivered"
    api = APIClient().get(f"/v1/customers/{customer.id}/verification").json()["verification"]
    assert api["delivery_status"] == "delivered"


def test_receipts_out_of_order_or_repeated_never_move_the_status_back(signed, sign_up, sms_outbox):
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)
    run = Verification.objects.get(customer=customer)
    message_id = message_id_of_latest_code(sms_outbox)

    for status in ("delivered", "sent", "queued", "delivered", "failed"):
        assert receipt(run.workflow_id, message_id, status).status_code == 204

    assert live_status(customer).delivery_status == "delivered"


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl"], ids=["missing", "wrong"])
def test_an_unsigned_or_badly_signed_receipt_is_refused_and_changes_nothing(
    signed, sign_up, sms_outbox, signature
):
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)
    run = Verification.objects.get(customer=customer)

    response = receipt(
        run.workflow_id, message_id_of_latest_code(sms_outbox), "failed", signature=signature
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert live_status(customer).delivery_status is None


def test_a_receipt_for_an_older_code_is_ignored(signed, settings, sign_up, sms_outbox):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)
    first_message = message_id_of_latest_code(sms_outbox)
    APIClient().post(f"/v1/customers/{customer.id}:resendCode")
    latest_code(sms_outbox, customer.phone_number, count=2)
    run = Verification.objects.get(customer=customer)

    receipt(run.workflow_id, first_message, "failed")

    assert live_status(customer).delivery_status is None


def test_a_receipt_for_an_unknown_or_ended_run_answers_204_and_is_logged(
    signed, sign_up, sms_outbox, caplog
):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)
    APIClient().post(
        f"/v1/customers/{customer.id}:verify", {"verification_code": code}, format="json"
    )
    ended = Verification.objects.get(customer=customer)

    with caplog.at_level(logging.INFO, logger="verification.services"):
        unknown = receipt(f"verify-phone-{uuid.uuid4()}", "SM123", "delivered")
        late = receipt(ended.workflow_id, "locmem-1", "delivered")

    assert (unknown.status_code, late.status_code) == (204, 204)
    logged = [r.getMessage() for r in caplog.records if "delivery receipt" in r.getMessage()]
    assert len(logged) == 2


def test_a_failed_text_can_be_replaced_at_once_but_not_past_the_send_limit(
    signed, settings, client, sign_up, sms_outbox
):
    settings.VERIFICATION_MAX_SENDS = 2
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)
    run = Verification.objects.get(customer=customer)
    receipt(run.workflow_id, message_id_of_latest_code(sms_outbox), "undelivered")

    page = client.get(f"/customers/{customer.id}/verify/").content.decode()
    resent = APIClient().post(f"/v1/customers/{customer.id}:resendCode")  # inside the cooldown
    latest_code(sms_outbox, customer.phone_number, count=2)
    receipt(run.workflow_id, message_id_of_latest_code(sms_outbox), "failed")
    refused = APIClient().post(f"/v1/customers/{customer.id}:resendCode")

    assert "Not delivered" in page and "did not arrive" in page
    assert 'id="resend-help">A new code replaces the old one.' in page  # enabled, no countdown
    assert resent.status_code == 202
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "resend_limit_reached"
    assert len(sent_codes(sms_outbox, customer.phone_number)) == 2


def call_receipt(workflow_id: str, call_sid: str, status: str, *, signature: str | None = None):
    """Post a call's status callback as Twilio does, to the same URL a text's goes to."""
    query = f"?workflow={workflow_id}"
    form = {
        "CallSid": call_sid,
        "CallStatus": status,
        "AccountSid": "AC" + "0" * 32,
        "To": "+447700900123",
        "Direction": "outbound-api",
        "ApiVersion": "2010-04-01",
    }
    if signature is None:
        signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + PATH + query, form)
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature else {}
    return APIClient().post(
        PATH + query,
        urlencode(form),
        content_type="application/x-www-form-urlencoded",
        **headers,
    )


@pytest.fixture
def passed_on(monkeypatch) -> list[tuple[str, str, str]]:
    """What the webhook passes to the run, kept here instead: (workflow id, message id, status)."""
    kept = []

    def record(*, workflow_id: str, message_id: str, status) -> bool:
        kept.append((workflow_id, message_id, str(status)))
        return True

    monkeypatch.setattr(services, "verification_delivery_status_record", record)
    return kept


@pytest.mark.parametrize(
    ("call_status", "delivery"),
    [
        ("queued", "queued"),
        ("initiated", "queued"),
        ("ringing", "sent"),
        ("in-progress", "sent"),
        ("completed", "delivered"),
        ("busy", "undelivered"),
        ("no-answer", "undelivered"),
        ("failed", "failed"),
        ("canceled", "failed"),
    ],
)
def test_a_calls_progress_reaches_its_run_as_a_delivery_status_keyed_by_the_call_sid(
    signed, passed_on, call_status, delivery
):
    call_sid = "CA" + "a" * 32

    response = call_receipt("verify-phone-1", call_sid, call_status)

    assert response.status_code == 204
    assert passed_on == [("verify-phone-1", call_sid, delivery)]


def test_a_call_status_that_says_nothing_about_delivery_is_answered_and_dropped(signed, passed_on):
    assert call_receipt("verify-phone-1", "CA" + "b" * 32, "answered").status_code == 204
    assert call_receipt("verify-phone-1", "", "completed").status_code == 204
    assert passed_on == []


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl"], ids=["missing", "wrong"])
def test_an_unsigned_or_badly_signed_call_receipt_is_refused_and_passes_nothing_on(
    signed, passed_on, signature
):
    response = call_receipt("verify-phone-1", "CA" + "c" * 32, "completed", signature=signature)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert passed_on == []


def test_call_receipts_are_counted_apart_from_text_receipts(signed, passed_on):
    def counted(name: str) -> float:
        return REGISTRY.get_sample_value(f"{name}_total", {"status": "delivered"}) or 0

    calls, texts = counted(CALLS), counted(TEXTS)

    call_receipt("verify-phone-1", "CA" + "d" * 32, "completed")

    assert (counted(CALLS) - calls, counted(TEXTS) - texts) == (1, 0)
