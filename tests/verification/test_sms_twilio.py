"""SMS through Twilio: the official SDK, unchanged, against a fake Twilio on loopback.

The worker sends through the real `twilio` package; only the host it talks to is the fake's.
"""

import re
import uuid
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from tests.conftest import wait_for
from tests.fake_twilio import (
    SERVICE_UNAVAILABLE,
    Answer,
    FakeTwilio,
    Received,
    twilio_error,
)
from verification.models import Verification

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-auth-token-of-32-characters"
MESSAGING_SERVICE_SID = "MG" + "1" * 32
CODE_IN_BODY = re.compile(r"code is (\d+)")


@pytest.fixture
def twilio(settings, worker) -> Iterator[FakeTwilio]:
    """The worker texts through the Twilio SDK, pointed at a fake Twilio of this test's own."""
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TWILIO_MESSAGING_SERVICE_SID = MESSAGING_SERVICE_SID
    settings.TWILIO_API_BASE_URL = fake.base_url
    settings.PUBLIC_BASE_URL = "https://coffee.example.com"
    yield fake
    fake.stop()


def sign_up(phone: str = "+447700900123") -> dict:
    response = APIClient().post(
        "/v1/customers",
        {
            "customer": {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email": "ada@example.com",
                "phone_number": phone,
            },
            "request_id": str(uuid.uuid4()),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def verification_status(customer_id: str) -> dict:
    return APIClient().get(f"/v1/customers/{customer_id}/verification").json()["verification"]


def code_in(message: Received) -> str:
    return CODE_IN_BODY.search(message.form["Body"]).group(1)


def test_a_code_goes_out_as_twilio_expects_and_verifies(settings, twilio):
    settings.VERIFICATION_CODE_TTL = 300
    signup = sign_up()
    customer_id = signup["customer"]["id"]

    (message,) = twilio.messages()
    verified = APIClient().post(
        f"/v1/customers/{customer_id}:verify",
        {"verification_code": code_in(message)},
        format="json",
    )

    assert message.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert (message.username, message.password) == (ACCOUNT_SID, AUTH_TOKEN)
    assert message.form["To"] == "+447700900123"
    assert message.form["MessagingServiceSid"] == MESSAGING_SERVICE_SID
    assert "From" not in message.form
    assert message.form["ValidityPeriod"] == "300"  # the code's time to live
    assert message.form["StatusCallback"] == (
        "https://coffee.example.com/v1/webhooks/twilio/message-status"
        f"?workflow=verify-phone-{customer_id}"
    )
    assert re.fullmatch(r"Your Coffeeshop verification code is \d{6}\. .*", message.form["Body"])
    assert signup["verification"]["code_expires_at"]
    assert verified.json()["result"] == "VERIFICATION_RESULT_SUCCESS"


def test_a_from_number_is_used_when_there_is_no_messaging_service(settings, twilio):
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.PUBLIC_BASE_URL = ""

    sign_up()

    (message,) = twilio.messages()
    assert message.form["From"] == "+15005550006"
    assert "MessagingServiceSid" not in message.form
    assert "StatusCallback" not in message.form  # no public address to call back


@pytest.mark.parametrize(
    ("code", "reason", "words"),
    [
        (21614, "not_mobile", "It is not a mobile number."),
        (21211, "invalid_number", "It is not a phone number that can get texts."),
        (21610, "unsubscribed", "Reply START"),
    ],
)
def test_a_permanent_twilio_error_ends_the_run_with_its_reason_and_is_not_retried(
    client, admin_client, twilio, code, reason, words
):
    twilio.answer_next(twilio_error(code))

    signup = sign_up()
    customer_id = signup["customer"]["id"]
    status = APIClient().get(f"/v1/customers/{customer_id}/verification").json()["verification"]
    page = client.get(f"/customers/{customer_id}/not-verified/").content.decode()
    admin = admin_client.get(f"/admin/customers/customer/{customer_id}/change/").content.decode()

    assert len(twilio.messages()) == 1
    assert signup["verification"] == {
        "status": "undeliverable",
        "code_expires_at": None,
        "end_reason": reason,
    }
    assert (status["status"], status["end_reason"]) == ("undeliverable", reason)
    assert Verification.objects.get(customer_id=customer_id).end_reason == reason
    assert "We could not text this number" in page and words in page
    assert "Sign up with another number" in page
    assert "Undeliverable" in admin and words in admin


def test_a_number_twilio_quotes_in_an_error_never_reaches_the_history(worker, twilio):
    """Twilio's errors name the number; the send's failures, which the history keeps, must not."""
    quoting = "The 'To' number {} is not a valid phone number."
    retried, refused = "+447700900111", "+447700900222"
    twilio.answer_next(Answer(503, 20503, quoting.format(retried)))
    first = sign_up(phone=retried)
    APIClient().post(
        f"/v1/customers/{first['customer']['id']}:verify",
        {"verification_code": code_in(twilio.messages()[-1])},
        format="json",
    )
    twilio.answer_next(twilio_error(21211, quoting.format(refused)))
    second = sign_up(phone=refused)

    async def history(customer_id: str) -> str:
        handle = worker.client.get_workflow_handle(f"verify-phone-{customer_id}")
        await handle.result()
        return (await handle.fetch_history()).to_json()

    retried_history = worker.run(lambda _: history(first["customer"]["id"]))
    refused_history = worker.run(lambda _: history(second["customer"]["id"]), timeout=60)

    assert len(twilio.messages()) == 3  # the 503, its retry, the refusal
    assert second["verification"]["end_reason"] == "invalid_number"
    assert "provider code 21211" in refused_history  # the failure is there, its words masked
    for phone, text in ((retried, retried_history), (refused, refused_history)):
        assert phone.removeprefix("+") not in text


def test_a_transient_503_is_retried_and_the_code_then_arrives(twilio):
    twilio.answer_next(SERVICE_UNAVAILABLE)

    signup = sign_up()

    first, second = twilio.messages()
    assert first.form["To"] == second.form["To"]
    assert signup["verification"]["status"] == "pending"
    assert signup["verification"]["code_expires_at"]  # sent, on the retry
    verified = APIClient().post(
        f"/v1/customers/{signup['customer']['id']}:verify",
        {"verification_code": code_in(second)},
        format="json",
    )
    assert verified.json()["result"] == "VERIFICATION_RESULT_SUCCESS"


def test_a_refusal_of_our_own_settings_names_the_setting_and_is_retried(twilio, caplog):
    twilio.answer_next(twilio_error(20003))  # as if the auth token were wrong at first

    signup = sign_up()

    assert len(twilio.messages()) == 2  # refused, then, with the setting right, sent
    assert signup["verification"]["code_expires_at"]
    assert (
        "Twilio refused the request (20003); check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        in caplog.text
    )


def test_a_provider_failing_every_try_until_the_deadline_ends_the_run_undeliverable(
    settings, client, twilio
):
    """Not `failed`, which reads as too many wrong codes: the page offers to start again."""
    settings.VERIFICATION_WINDOW = 1  # the send's deadline is then its floor, one try's 10 s
    twilio.answer_next(*[SERVICE_UNAVAILABLE] * 30)

    customer_id = sign_up()["customer"]["id"]
    ended = wait_for(
        lambda: (s := verification_status(customer_id))["status"] != "pending" and s, timeout=30
    )
    page = client.get(f"/customers/{customer_id}/not-verified/").content.decode()

    assert (ended["status"], ended["end_reason"]) == ("undeliverable", "send_failed")
    assert 2 <= len(twilio.messages()) < 30  # retried with backoff until the deadline
    assert "We could not send you a code" in page and "Try again in a few minutes" in page
    assert "Start again" in page and "Sign up with another number" not in page
