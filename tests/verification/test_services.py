"""The web tier's services against a real worker and dev server: the wiring through Django.

The workflow's rules are tested on the workflow alone, in tests/workflows/. These prove that the
services, the real activities and the database connect: outcomes reach the rows, refusals arrive
typed, codes never reach Temporal, and runs that end outside the app are recorded.
"""

import re

import pytest

from customers.models import Customer
from tests.conftest import latest_code, recorded_status, sent_codes, wrong_code
from verification import services
from verification.contracts import (
    RESEND_CODE_UPDATE,
    Refusal,
    ResendCodeInput,
    VerificationResult,
    VerificationState,
    VerifyPhoneOutcome,
)
from verification.errors import VerificationRefused
from verification.models import Verification

pytestmark = pytest.mark.django_db(transaction=True)


def submit(customer, code, key=None):
    return services.verification_submit_code(
        customer_id=customer.id, code=code, idempotency_key=key
    )


def test_right_code_verifies_the_phone_and_records_it(sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    answer = submit(customer, code)

    assert (answer.result, answer.attempts_remaining) == (VerificationResult.SUCCESS, 2)
    assert recorded_status(customer) == "verified"
    customer.refresh_from_db()
    assert customer.phone_verified and customer.verified_at is not None


def test_failed_run_is_recorded_and_keeps_answering_its_result(sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    answers = [submit(customer, wrong_code(code)).result for _ in range(3)]
    status = recorded_status(customer)
    after = submit(customer, code)

    assert answers[-1] == after.result == VerificationResult.MAX_ATTEMPTS_REACHED
    assert status == "failed"
    customer.refresh_from_db()
    assert not customer.phone_verified


def test_workflow_refusals_arrive_typed_with_their_details(settings, sign_up, sms_outbox):
    settings.VERIFICATION_MAX_SENDS = 2
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)

    with pytest.raises(VerificationRefused) as cooldown:
        services.verification_resend_code(customer_id=customer.id)
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    other = sign_up()
    latest_code(sms_outbox, other.phone_number)
    sent = services.verification_resend_code(customer_id=other.id)
    with pytest.raises(VerificationRefused) as limit:
        services.verification_resend_code(customer_id=other.id)

    assert cooldown.value.reason is Refusal.RESEND_COOLDOWN
    assert 1 <= cooldown.value.retry_after <= 30 and cooldown.value.status == 429
    assert sent.sends_remaining == 0
    assert limit.value.reason is Refusal.RESEND_LIMIT_REACHED and limit.value.status == 409
    latest_code(sms_outbox, other.phone_number, count=2)
    assert len(sent_codes(sms_outbox, other.phone_number)) == 2


def test_cancelled_run_is_recorded_and_refuses_later_codes(sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    result = services.verification_cancel(customer=customer)

    assert result.cancelled
    assert recorded_status(customer) == "cancelled"
    with pytest.raises(VerificationRefused) as refused:
        submit(customer, code)
    assert refused.value.reason is Refusal.VERIFICATION_ENDED
    assert refused.value.state is VerificationState.CANCELLED


def test_a_resend_after_the_phone_was_verified_says_so(sign_up, sms_outbox):
    customer = sign_up()
    submit(customer, latest_code(sms_outbox, customer.phone_number))

    with pytest.raises(VerificationRefused) as refused:
        services.verification_resend_code(customer_id=customer.id)

    assert refused.value.reason is Refusal.VERIFICATION_ENDED
    assert str(refused.value) == str(VerificationRefused(Refusal.ALREADY_VERIFIED))


def test_code_never_appears_in_workflow_history(worker, sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)
    submit(customer, wrong_code(code))
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

    with pytest.raises(VerificationRefused) as refused:
        submit(customer, code)
    assert refused.value.reason is Refusal.VERIFICATION_ENDED
    run.refresh_from_db()
    assert run.status == "cancelled" and run.finished_at is not None


def test_a_send_for_a_deleted_customer_ends_the_run_cancelled_without_retrying(
    worker, settings, sms_outbox, transactional_db
):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    customer = Customer.objects.create(
        first_name="Gone", last_name="Soon", email="g@example.com", phone_number="+447700900111"
    )
    run = services.verification_start(customer=customer)  # the first code goes out
    Customer.objects.filter(pk=customer.pk).delete()

    async def resend_then_outcome(client):
        handle = client.get_workflow_handle(
            run.workflow_id, run_id=run.run_id, result_type=VerifyPhoneOutcome
        )
        await handle.execute_update(RESEND_CODE_UPDATE, ResendCodeInput())
        return await handle.result()

    result = worker.run(resend_then_outcome, timeout=15)
    assert result.state == VerificationState.CANCELLED
    assert len(sent_codes(sms_outbox, "+447700900111")) == 1


def test_a_new_run_is_refused_for_a_number_from_a_country_no_longer_allowed(
    settings, sign_up, sms_outbox
):
    customer = sign_up(phone_number="+447700900555")
    services.verification_cancel(customer=customer)
    settings.PHONE_ALLOWED_REGIONS = ["IE"]

    with pytest.raises(VerificationRefused) as refused:
        services.verification_start_again(customer=customer)

    assert refused.value.reason is Refusal.PHONE_REGION_NOT_ALLOWED
    assert str(refused.value) == "We can only text numbers in Ireland."


def test_a_customer_id_used_again_while_a_deleted_customers_run_is_open_gets_a_run_of_its_own(
    worker, sms_outbox, transactional_db
):
    # Deleted where nothing cancels the run (the admin cancels it, unless Temporal is away).
    old = Customer.objects.create(
        first_name="Old", last_name="One", email="o@example.com", phone_number="+447700900111"
    )
    old_run = services.verification_start(customer=old)
    Customer.objects.filter(pk=old.pk).delete()
    new = Customer.objects.create(
        id=old.pk,
        first_name="New",
        last_name="One",
        email="n@example.com",
        phone_number="+447700900222",
    )

    run = services.verification_start(customer=new)
    code = latest_code(sms_outbox, new.phone_number)

    async def old_status(client):
        return (
            await client.get_workflow_handle(old_run.workflow_id, run_id=old_run.run_id).describe()
        ).status.name

    assert run.run_id != old_run.run_id and run.code_expires_at is not None
    assert worker.run(old_status) == "TERMINATED"
    assert [v.run_id for v in Verification.objects.filter(customer=new)] == [run.run_id]
    assert len(sent_codes(sms_outbox, old.phone_number)) == 1
    assert submit(new, code).result == VerificationResult.SUCCESS
