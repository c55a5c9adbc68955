"""VerifyPhoneWorkflow against a real dev server and worker, driven through the services."""

import re
import time

import pytest

from tests.conftest import latest_code, sent_codes, wait_for
from verification import services
from verification.contracts import VerificationResult, VerificationState, VerifyPhoneOutcome
from verification.models import Verification
from verification.selectors import verification_get_view

pytestmark = pytest.mark.django_db(transaction=True)

SUCCESS = VerificationResult.SUCCESS
INCORRECT = VerificationResult.INCORRECT_CODE
EXPIRED = VerificationResult.CODE_EXPIRED
MAX_ATTEMPTS = VerificationResult.MAX_ATTEMPTS_REACHED


def submit(customer, code, key=None):
    return services.verification_submit_code(customer=customer, code=code, idempotency_key=key)


def wrong(code: str) -> str:
    return "0000" if code != "0000" else "1111"


def final_status(customer) -> str:
    return wait_for(
        lambda: (v := Verification.objects.get(customer=customer)).status != "pending" and v.status
    )


def test_right_code_verifies_the_phone_and_records_it(sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    answer = submit(customer, code)

    assert (answer.result, answer.attempts_remaining) == (SUCCESS, 2)
    assert final_status(customer) == "verified"
    customer.refresh_from_db()
    assert customer.phone_verified and customer.verified_at is not None


def test_wrong_code_costs_an_attempt_and_leaves_the_code_valid(sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    first = submit(customer, wrong(code))
    second = submit(customer, code)

    assert (first.result, first.attempts_remaining) == (INCORRECT, 2)
    assert (second.result, second.attempts_remaining) == (SUCCESS, 1)
    assert final_status(customer) == "verified"


def test_third_wrong_code_fails_and_a_right_code_after_it_does_not_verify(sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    answers = [submit(customer, wrong(code)).result for _ in range(3)]
    after = submit(customer, code)

    assert answers == [INCORRECT, INCORRECT, MAX_ATTEMPTS]
    assert after.result == MAX_ATTEMPTS
    assert final_status(customer) == "failed"
    customer.refresh_from_db()
    assert not customer.phone_verified


def test_expired_code_costs_an_attempt_and_a_fresh_code_is_sent(settings, sign_up, sms_outbox):
    settings.VERIFICATION_CODE_TTL = 2
    customer = sign_up()
    old = latest_code(sms_outbox, customer.phone_number)
    time.sleep(2.2)

    expired = submit(customer, old)
    new = latest_code(sms_outbox, customer.phone_number, count=2)
    answer = submit(customer, new)

    assert (expired.result, expired.attempts_remaining) == (EXPIRED, 2)
    assert (answer.result, answer.attempts_remaining) == (SUCCESS, 1)


def test_resend_is_refused_during_cooldown_then_replaces_the_code(settings, sign_up, sms_outbox):
    settings.VERIFICATION_RESEND_COOLDOWN = 2
    customer = sign_up()
    old = latest_code(sms_outbox, customer.phone_number)

    with pytest.raises(services.ResendRefused) as refused:
        services.verification_resend_code(customer=customer)
    assert refused.value.reason == "cooldown"
    assert 1 <= refused.value.retry_after <= 2

    time.sleep(2.1)
    sent = services.verification_resend_code(customer=customer)
    new = latest_code(sms_outbox, customer.phone_number, count=2)

    assert sent.sends_remaining == 3
    if new != old:  # a fresh random code equals the old one once in a million
        assert submit(customer, old).result == INCORRECT
    assert submit(customer, new).result == SUCCESS


def test_resend_stops_at_the_send_limit(settings, sign_up, sms_outbox):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    settings.VERIFICATION_MAX_SENDS = 2
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)

    sent = services.verification_resend_code(customer=customer)
    with pytest.raises(services.ResendRefused) as refused:
        services.verification_resend_code(customer=customer)

    assert sent.sends_remaining == 0
    assert refused.value.reason == "limit_reached"
    latest_code(sms_outbox, customer.phone_number, count=2)
    assert len(sent_codes(sms_outbox, customer.phone_number)) == 2


def test_window_passing_ends_the_verification_expired(settings, sign_up, sms_outbox):
    settings.VERIFICATION_WINDOW = 2
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    assert final_status(customer) == "expired"
    assert submit(customer, code).result == EXPIRED


def test_last_code_expiring_with_no_sends_left_ends_the_verification(settings, sign_up, sms_outbox):
    settings.VERIFICATION_MAX_SENDS = 1
    settings.VERIFICATION_CODE_TTL = 1
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)

    assert final_status(customer) == "expired"


def test_status_reports_attempts_sends_and_deadlines(settings, sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)
    submit(customer, wrong(code))

    view = verification_get_view(customer=customer)

    assert view.live and view.state is VerificationState.PENDING
    assert (view.attempts_remaining, view.sends_remaining) == (2, 4)
    assert view.code_expires_at > view.verification.started_at
    assert view.resend_available_at is not None and view.window_ends_at is not None


def test_cancel_ends_the_run_and_later_codes_are_refused(sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    result = services.verification_cancel(customer=customer)

    assert result.cancelled
    assert final_status(customer) == "cancelled"
    with pytest.raises(services.VerificationEnded):
        submit(customer, code)


def test_same_idempotency_key_is_counted_once(sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    first = submit(customer, wrong(code), key="k-1")
    again = submit(customer, wrong(code), key="k-1")
    other = submit(customer, wrong(code), key="k-2")

    assert first.attempts_remaining == again.attempts_remaining == 2
    assert other.attempts_remaining == 1


def test_code_never_appears_in_workflow_history(worker, sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)
    submit(customer, wrong(code))
    submit(customer, code)
    run = Verification.objects.get(customer=customer)

    async def history(client):
        handle = client.get_workflow_handle(run.workflow_id, run_id=run.run_id)
        await handle.result()
        events = (await handle.fetch_history()).events
        return b"".join(event.SerializeToString() for event in events)

    raw = worker.run(history)
    standalone = rb"(?<![0-9a-f])%s(?![0-9a-f])"
    # The search can see payloads: the customer id the workflow carries is found.
    assert re.search(standalone % str(customer.id).encode(), raw)
    assert not re.search(standalone % code.encode(), raw)
    assert customer.phone_number.encode() not in raw
    assert sent_codes(sms_outbox, customer.phone_number) == [code]


def test_run_terminated_from_outside_is_recorded_as_cancelled_on_next_submit(
    worker, sign_up, sms_outbox
):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)
    run = Verification.objects.get(customer=customer)

    async def terminate(client):
        handle = client.get_workflow_handle(run.workflow_id, run_id=run.run_id)
        await handle.terminate("operator test")

    worker.run(terminate)

    with pytest.raises(services.VerificationEnded):
        submit(customer, code)
    run.refresh_from_db()
    assert run.status == "cancelled" and run.finished_at is not None


def test_deleted_customer_ends_the_run_cancelled_without_retrying_forever(
    worker, settings, sms_outbox, transactional_db
):
    from customers.models import Customer

    customer = Customer.objects.create(
        first_name="Gone", last_name="Soon", email="g@example.com", phone_number="+447700900111"
    )
    run = services.verification_start(customer=customer)
    Customer.objects.filter(pk=customer.pk).delete()

    async def outcome(client):
        handle = client.get_workflow_handle(
            run.workflow_id, run_id=run.run_id, result_type=VerifyPhoneOutcome
        )
        return await handle.result()

    result = worker.run(outcome, timeout=15)
    assert result.state == VerificationState.CANCELLED
