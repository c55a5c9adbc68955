"""The channel ladder end to end: a real worker sends through the real `twilio` SDK (to the fake
Twilio on loopback) and over real SMTP; the customer verifies with the code that reached them
on the channel that worked. The ladder's every turn is the workflow's decision."""

import email
import email.policy
import re
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient
from twilio.request_validator import RequestValidator

from tests.conftest import wait_for
from tests.fake_twilio import FakeTwilio, spoken_codes, twilio_error
from tests.smtp_relay import Mailbox, code_in_email
from verification.models import Verification

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-auth-token-of-32-characters"
FROM_NUMBER = "+15005550006"
PHONE = "+447700900123"
EMAIL = "ada@example.com"
PUBLIC = "https://coffee.example.com"
RECEIPTS = "/v1/webhooks/twilio/message-status"
SUCCESS = "VERIFICATION_RESULT_SUCCESS"
INCORRECT = "VERIFICATION_RESULT_INCORRECT_CODE"


@pytest.fixture
def twilio(settings, worker) -> Iterator[FakeTwilio]:
    """Texts and calls go through the Twilio SDK to a fake Twilio of this test's own."""
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    settings.SMS_BACKEND = settings.VOICE_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TWILIO_FROM_NUMBER = FROM_NUMBER
    settings.TWILIO_API_BASE_URL = fake.base_url
    settings.PUBLIC_BASE_URL = PUBLIC
    yield fake
    fake.stop()


def sign_up() -> str:
    response = APIClient().post(
        "/v1/customers",
        {
            "customer": {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email": EMAIL,
                "phone_number": PHONE,
            },
            "request_id": str(uuid.uuid4()),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["customer"]["id"]


def verify(customer_id: str, code: str) -> str:
    response = APIClient().post(
        f"/v1/customers/{customer_id}:verify", {"verification_code": code}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()["result"]


def status(customer_id: str) -> dict:
    response = APIClient().get(f"/v1/customers/{customer_id}/verification")
    assert response.status_code == 200, response.content
    return response.json()["verification"]


def sent_channels(customer_id: str) -> list[str]:
    return [send["channel"] for send in status(customer_id)["sends"]]


def call_status(customer_id: str, call_sid: str, call_status: str) -> int:
    """Twilio's signed status callback for a call, to the URL the call asked for."""
    query = f"?workflow=verify-phone-{customer_id}"
    form = {"CallSid": call_sid, "CallStatus": call_status, "AccountSid": ACCOUNT_SID}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + RECEIPTS + query, form)
    return (
        APIClient()
        .post(
            RECEIPTS + query,
            urlencode(form),
            content_type="application/x-www-form-urlencoded",
            HTTP_X_TWILIO_SIGNATURE=signature,
        )
        .status_code
    )


def emailed_code(mailbox: Mailbox) -> str:
    (envelope,) = mailbox.envelopes
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    return code_in_email(message.get_body(("plain",)).get_content())


def test_a_number_that_cannot_get_texts_is_called_and_the_spoken_code_verifies(
    settings, client, twilio
):
    settings.VERIFICATION_CHANNELS = ["sms", "voice"]
    twilio.answer_next(twilio_error(21614))  # "not a mobile number": no text will ever arrive

    customer_id = sign_up()
    (call,) = wait_for(twilio.calls)
    code, repeated = spoken_codes(call.form["Twiml"])
    channels = sent_channels(customer_id)
    offered = status(customer_id)["channels"]
    page = client.get(f"/customers/{customer_id}/verify/").content.decode()
    text_again = APIClient().post(
        f"/v1/customers/{customer_id}:resendCode", {"channel": "sms"}, format="json"
    )
    result = verify(customer_id, code)

    assert len(twilio.messages()) == 1
    assert (call.form["To"], call.form["From"]) == (PHONE, FROM_NUMBER)
    assert code == repeated
    assert channels == ["sms", "voice"]
    assert offered == ["voice"]  # a channel refused for good is never offered again
    assert "We are calling" in page and "Text me instead" not in page
    assert text_again.status_code == 409
    assert text_again.json()["error"]["code"] == "channel_not_offered"
    assert result == SUCCESS
    run = Verification.objects.get(customer_id=customer_id)
    assert (run.status, run.channel) == ("verified", "voice")


def test_when_the_call_cannot_be_placed_either_the_run_ends_naming_the_call(
    settings, client, admin_client, twilio
):
    settings.VERIFICATION_CHANNELS = ["sms", "voice"]
    twilio.answer_next(twilio_error(21614), twilio_error(21211))  # no texts; not callable

    customer_id = sign_up()
    ended = wait_for(lambda: (s := status(customer_id))["status"] == "undeliverable" and s)
    page = client.get(f"/customers/{customer_id}/not-verified/").content.decode()
    admin = admin_client.get(f"/admin/customers/customer/{customer_id}/change/").content.decode()

    assert (len(twilio.messages()), len(twilio.calls())) == (1, 1)
    assert (ended["end_reason"], ended["channel"]) == ("invalid_number", "voice")
    assert "We could not call this number" in page
    assert "It is not a phone number we can call." in page
    assert "<th scope='row'>Last code by</th><td>Call</td>" in admin
    assert "It is not a phone number we can call." in admin
    run = Verification.objects.get(customer_id=customer_id)
    assert (run.status, run.end_reason, run.channel) == ("undeliverable", "invalid_number", "voice")


def test_an_unanswered_call_moves_the_run_on_to_email_over_real_smtp(settings, twilio, smtp_server):
    settings.VERIFICATION_CHANNELS = ["voice", "email"]

    customer_id = sign_up()
    (call,) = wait_for(twilio.calls)
    (spoken, _) = spoken_codes(call.form["Twiml"])
    receipt = call_status(customer_id, call.sid, "no-answer")
    wait_for(lambda: smtp_server.envelopes)
    emailed = emailed_code(smtp_server)
    channels = sent_channels(customer_id)
    late_spoken = verify(customer_id, spoken)
    right = verify(customer_id, emailed)

    assert receipt == 204
    assert channels == ["voice", "email"]
    assert smtp_server.envelopes[0].rcpt_tos == [EMAIL]
    assert late_spoken == INCORRECT  # a new code replaces the old one, whatever the channel
    assert right == SUCCESS


def test_a_text_with_no_answer_in_time_is_followed_by_an_email_by_itself(
    settings, twilio, smtp_server
):
    settings.VERIFICATION_CHANNELS = ["sms", "email"]
    settings.VERIFICATION_CHANNEL_TIMEOUT = 2  # the workflow's timer; production allows 15+

    customer_id = sign_up()
    before = status(customer_id)
    started = time.monotonic()
    wait_for(lambda: smtp_server.envelopes, timeout=15)
    waited = time.monotonic() - started
    after = status(customer_id)

    assert len(twilio.messages()) == 1
    assert (before["channel"], before["next_channel"]) == ("sms", "email")
    assert before["next_channel_at"]
    assert waited < 10
    assert (after["channel"], after["next_channel"]) == ("email", None)
    assert verify(customer_id, emailed_code(smtp_server)) == SUCCESS


def test_an_email_asked_for_that_the_server_refuses_leaves_the_texted_code_working(
    settings, client, twilio, smtp_server
):
    settings.VERIFICATION_CHANNELS = ["sms", "voice", "email"]
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    smtp_server.refusals[EMAIL] = "550 5.1.1 <{address}>: user unknown"
    customer_id = sign_up()
    (text,) = wait_for(twilio.messages)

    asked = APIClient().post(
        f"/v1/customers/{customer_id}:resendCode", {"channel": "email"}, format="json"
    )
    kept = wait_for(lambda: (s := status(customer_id))["fallback_channel"] and s)
    page = client.get(f"/customers/{customer_id}/verify/").content.decode()

    assert asked.status_code == 202
    assert (kept["status"], kept["channel"]) == ("pending", "sms")
    assert (kept["fallback_channel"], kept["fallback_reason"]) == ("email", "unreachable")
    assert "email" not in kept["channels"]
    assert "We could not email you." in page
    assert "The code we texted you still works." in page
    assert "Email me instead" not in page
    assert verify(customer_id, re.search(r"\b\d{6}\b", text.form["Body"])[0]) == SUCCESS


def test_the_admin_says_when_a_new_verification_ended_at_once(settings, admin_client, twilio):
    settings.VERIFICATION_CHANNELS = ["sms"]
    twilio.answer_next(twilio_error(21614), twilio_error(21614))  # a landline, both times
    customer_id = sign_up()
    wait_for(lambda: status(customer_id)["status"] == "undeliverable")

    response = admin_client.post(
        "/admin/customers/customer/",
        {"action": "start_new_verification", "_selected_action": [customer_id]},
        follow=True,
    )

    [message] = [m.message for m in response.context["messages"]]
    assert message == "Ada Lovelace: The new verification ended at once: It is not a mobile number."
