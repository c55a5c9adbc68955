"""The verification routes: :verify, :resendCode and /verification, and their error statuses."""

import time
import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus

from coffeeshop.temporal.client import gateway
from tests.conftest import latest_code, live_status, sent_codes, wait_for, wrong_code
from verification.errors import RequestNotAnswered
from verification.models import Verification

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def customer(sign_up):
    return sign_up()


def verify(api, customer_id, code, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(
        f"/v1/customers/{customer_id}:verify", {"verification_code": code}, format="json", **headers
    )


def status(api, customer_id):
    return api.get(f"/v1/customers/{customer_id}/verification").json()["verification"]


def test_verify_with_the_right_code_answers_success(api, customer, sms_outbox):
    code = latest_code(sms_outbox, customer.phone_number)

    response = verify(api, customer.id, code)

    assert response.status_code == 200
    assert response.json() == {
        "customer_id": str(customer.id),
        "result": "VERIFICATION_RESULT_SUCCESS",
        "attempts_remaining": 2,
    }
    # Read at once, with no wait: the answer came only after the outcome was written.
    assert api.get(f"/v1/customers/{customer.id}").json()["customer"]["phone_verified"] is True
    assert (
        api.get(f"/v1/customers/{customer.id}/verification").json()["verification"]["status"]
        == "verified"
    )


def test_wrong_code_answers_incorrect_with_attempts_remaining(api, customer, sms_outbox):
    latest_code(sms_outbox, customer.phone_number)

    response = verify(api, customer.id, "0000")

    assert response.status_code == 200
    assert response.json()["result"] == "VERIFICATION_RESULT_INCORRECT_CODE"
    assert response.json()["attempts_remaining"] == 2


@pytest.mark.parametrize(
    "code", ["", "123", "12345678901", "12a4", " ", "\uff11\uff12\uff13\uff14", None, [], {}]
)
def test_malformed_codes_answer_400_and_are_not_counted(api, customer, sms_outbox, code):
    latest_code(sms_outbox, customer.phone_number)

    response = verify(api, customer.id, code)

    assert response.status_code == 400
    assert "verification_code" in response.json()["error"]["fields"]
    assert status(api, customer.id)["attempts_remaining"] == 3


def test_seed_four_digit_code_is_well_formed_whatever_the_configured_length(
    api, customer, sms_outbox
):
    latest_code(sms_outbox, customer.phone_number)

    response = verify(api, customer.id, "1233")

    assert response.status_code == 200


def test_verify_unknown_customer_answers_404(api, temporal, transactional_db):
    response = verify(api, uuid.uuid4(), "1234")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_ended_verification_answers_with_its_final_result(api, customer, sms_outbox, worker):
    code = latest_code(sms_outbox, customer.phone_number)
    verify(api, customer.id, "0000")
    first = verify(api, customer.id, code).json()
    run = Verification.objects.get(customer=customer)
    assert run.status == "verified"

    async def closed(client):
        description = await client.get_workflow_handle(run.workflow_id).describe()
        return description.status != WorkflowExecutionStatus.RUNNING

    wait_for(lambda: worker.run(closed))  # so the answer comes from the closed run's outcome
    again = verify(api, customer.id, "0000")

    assert again.status_code == 200
    assert first == again.json()
    assert (first["result"], first["attempts_remaining"]) == ("VERIFICATION_RESULT_SUCCESS", 1)


def test_failed_verification_keeps_answering_max_attempts(api, customer, sms_outbox):
    code = latest_code(sms_outbox, customer.phone_number)
    for _ in range(3):
        verify(api, customer.id, "0000")
    assert Verification.objects.get(customer=customer).status == "failed"

    after = verify(api, customer.id, code)

    assert after.status_code == 200
    assert after.json()["result"] == "VERIFICATION_RESULT_MAX_ATTEMPTS_REACHED"


def test_cancelled_verification_answers_409(api, customer, sms_outbox):
    from verification.services import verification_cancel

    code = latest_code(sms_outbox, customer.phone_number)
    verification_cancel(customer=customer)

    response = verify(api, customer.id, code)

    assert response.status_code == 409


def test_no_worker_answers_503_in_bound_and_the_retry_is_not_counted_twice(
    api, settings, temporal, start_worker, sms_outbox
):
    from customers.services import customer_sign_up

    settings.TEMPORAL_REQUEST_TIMEOUT = 2
    signup = customer_sign_up(
        first_name="No", last_name="Worker", email="n@example.com", phone_number="+447700900999"
    )
    customer = signup.customer

    started = time.monotonic()
    stalled = verify(api, customer.id, "0000", key="attempt-1")
    elapsed = time.monotonic() - started

    start_worker()
    settings.TEMPORAL_REQUEST_TIMEOUT = 10
    retried = verify(api, customer.id, "0000", key="attempt-1")

    assert signup.verification.state == "pending" and signup.verification.code_expires_at is None
    assert stalled.status_code == 503
    assert stalled.json()["error"] == {
        "code": "temporal_unavailable",
        "message": RequestNotAnswered.public_message,  # the same words as for a hung server
    }
    assert elapsed < 5
    assert retried.status_code == 200
    assert retried.json()["attempts_remaining"] == 2
    assert status(api, customer.id)["attempts_remaining"] == 2


def test_a_hung_temporal_server_is_not_blamed_on_the_worker(api, settings, temporal_server_own):
    async def connect(client):
        return None

    settings.TEMPORAL_REQUEST_TIMEOUT = 2
    gateway.call(connect)
    temporal_server_own.pause()  # it holds every connection open and answers nothing

    started = time.monotonic()
    response = verify(api, uuid.uuid4(), "1234", key="attempt-1")
    elapsed = time.monotonic() - started

    error = response.json()["error"]
    assert response.status_code == 503
    assert error == {"code": "temporal_unavailable", "message": RequestNotAnswered.public_message}
    assert error["message"].startswith("Temporal or its worker did not answer in time.")
    assert elapsed < 5


def test_resend_during_the_cooldown_answers_429_with_retry_after(api, customer, sms_outbox):
    latest_code(sms_outbox, customer.phone_number)

    response = api.post(f"/v1/customers/{customer.id}:resendCode")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "resend_cooldown"
    assert 1 <= int(response["Retry-After"]) <= 30
    assert len(sms_outbox) == 1


def test_resend_after_the_cooldown_answers_202_and_sends(api, settings, sign_up, sms_outbox):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)

    response = api.post(f"/v1/customers/{customer.id}:resendCode")

    assert response.status_code == 202
    assert response.json()["sends_remaining"] == 3
    assert response.json()["retry_after_seconds"] == 0
    latest_code(sms_outbox, customer.phone_number, count=2)


def test_the_last_code_a_run_may_send_comes_with_no_retry_after(api, settings, sign_up, sms_outbox):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    settings.VERIFICATION_MAX_SENDS = 2
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)

    response = api.post(f"/v1/customers/{customer.id}:resendCode")

    assert response.status_code == 202
    assert response.json() == {
        "customer_id": str(customer.id),
        "sends_remaining": 0,
        "retry_after_seconds": None,
    }


def test_resend_past_the_send_limit_answers_409(api, settings, sign_up, sms_outbox):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    settings.VERIFICATION_MAX_SENDS = 1
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)

    response = api.post(f"/v1/customers/{customer.id}:resendCode")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "resend_limit_reached"


def test_resend_unknown_customer_answers_404(api, transactional_db):
    assert api.post(f"/v1/customers/{uuid.uuid4()}:resendCode").status_code == 404


def test_verification_status_is_live_while_pending_and_from_the_db_after(api, customer, sms_outbox):
    code = latest_code(sms_outbox, customer.phone_number)
    verify(api, customer.id, "0000")

    live = status(api, customer.id)
    verify(api, customer.id, code)
    assert Verification.objects.get(customer=customer).status == "verified"
    ended = status(api, customer.id)

    assert live["live"] is True and live["status"] == "pending"
    assert live["attempts_remaining"] == 2 and live["code_expires_at"]
    assert ended["live"] is False and ended["status"] == "verified"
    assert ended["finished_at"]
    assert code not in str(live) + str(ended)


def test_verification_status_of_unknown_customer_answers_404(api, temporal, transactional_db):
    response = api.get(f"/v1/customers/{uuid.uuid4()}/verification")

    assert response.status_code == 404


def test_resend_retried_with_the_same_idempotency_key_sends_one_code_and_counts_once(
    api, settings, sign_up, sms_outbox
):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    settings.PHONE_SENDS_PER_HOUR = 3  # the signup's text, and two resends
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)

    def resend(key):
        return api.post(f"/v1/customers/{customer.id}:resendCode", HTTP_IDEMPOTENCY_KEY=key)

    first, retried, other, past_limit = resend("r-1"), resend("r-1"), resend("r-2"), resend("r-3")

    assert first.status_code == retried.status_code == other.status_code == 202
    assert first.json() == retried.json()
    assert other.json()["sends_remaining"] == first.json()["sends_remaining"] - 1
    assert past_limit.status_code == 429
    assert past_limit.json()["error"]["code"] == "phone_rate_limited"
    latest_code(sms_outbox, customer.phone_number, count=3)
    assert len(sent_codes(sms_outbox, customer.phone_number)) == 3
    assert live_status(customer).sends_remaining == 2


def test_max_attempts_is_read_at_once_as_a_failed_verification(api, customer, sms_outbox):
    code = latest_code(sms_outbox, customer.phone_number)

    answers = [verify(api, customer.id, wrong_code(code)).json()["result"] for _ in range(3)]
    status_now = status(api, customer.id)["status"]
    recorded_now = Verification.objects.get(customer=customer).status

    assert answers[-1] == "VERIFICATION_RESULT_MAX_ATTEMPTS_REACHED"
    assert status_now == recorded_now == "failed"
    assert api.get(f"/v1/customers/{customer.id}").json()["customer"]["phone_verified"] is False


@pytest.mark.parametrize("code", [1234, 123456, 1.5, True])
def test_a_code_sent_as_a_json_number_answers_400_and_is_not_counted(
    api, customer, sms_outbox, code
):
    latest_code(sms_outbox, customer.phone_number)

    response = verify(api, customer.id, code)

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"verification_code": ["Must be a string."]}
    assert status(api, customer.id)["attempts_remaining"] == 3


@pytest.mark.parametrize(
    "body", ["null", "[]", "false", "0", '""', '"sms"', '[{"channel": "sms"}]']
)
def test_resend_with_a_body_that_is_not_a_json_object_answers_400_and_sends_nothing(
    api, settings, sign_up, sms_outbox, body
):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)

    response = api.post(
        f"/v1/customers/{customer.id}:resendCode", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "body" in response.json()["error"]["fields"]
    assert len(sent_codes(sms_outbox, customer.phone_number)) == 1
    assert live_status(customer).sends_remaining == 4


@pytest.mark.parametrize("body", ["", "{}"], ids=["empty", "object"])
def test_resend_with_an_empty_body_or_object_sends(api, settings, sign_up, sms_outbox, body):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)

    response = api.post(
        f"/v1/customers/{customer.id}:resendCode", body, content_type="application/json"
    )

    assert response.status_code == 202
    latest_code(sms_outbox, customer.phone_number, count=2)


def test_an_uppercase_customer_id_reaches_the_same_verification(api, customer, sms_outbox):
    code = latest_code(sms_outbox, customer.phone_number)
    upper = str(customer.id).upper()

    response = verify(api, upper, code)
    read = api.get(f"/v1/customers/{upper}/verification")

    assert response.status_code == 200
    assert response.json()["customer_id"] == str(customer.id)
    assert response.json()["result"] == "VERIFICATION_RESULT_SUCCESS"
    assert read.json()["verification"]["status"] == "verified"
    assert read["Cache-Control"] == "private, no-store"


def test_a_right_code_for_a_customer_deleted_meanwhile_is_a_404_not_a_success(
    api, customer, sms_outbox
):
    code = latest_code(sms_outbox, customer.phone_number)
    # Deleted while Temporal did not answer the cancel: the run is still open.
    type(customer).objects.filter(pk=customer.pk).delete()

    response = verify(api, customer.id, code)

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No such customer."
    assert api.get(f"/v1/customers/{customer.id}").status_code == 404


def test_a_run_s_start_reads_the_same_live_and_once_it_has_ended(api, customer, sms_outbox):
    live = status(api, customer.id)["started_at"]
    verify(api, customer.id, latest_code(sms_outbox, customer.phone_number))

    assert status(api, customer.id)["started_at"] == live
