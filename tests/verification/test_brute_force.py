"""Concurrent guessing cannot beat VERIFICATION_MAX_ATTEMPTS through the whole stack: a burst of
codes fired in parallel at the API, against the real worker and dev server. The races themselves
(a right code inside the burst, before and after the limit) are tested on the workflow alone, in
tests/workflows/."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.test import Client

from tests.conftest import latest_code, recorded_status
from verification.contracts import VerificationResult, VerifyPhoneOutcome
from verification.models import Verification

pytestmark = pytest.mark.django_db(transaction=True)

SUCCESS = VerificationResult.SUCCESS.value
INCORRECT = VerificationResult.INCORRECT_CODE.value
MAX_ATTEMPTS = VerificationResult.MAX_ATTEMPTS_REACHED.value
BURST = 10


def wrong_codes(right: str) -> list[str]:
    return [f"{n:06d}" for n in range(BURST + 1) if f"{n:06d}" != right][:BURST]


def verify(customer_id, code: str, key: str) -> dict:
    try:
        response = Client().post(
            f"/v1/customers/{customer_id}:verify",
            {"verification_code": code},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )
        assert response.status_code == 200, response.content
        return {"code": code, **response.json()}
    finally:
        connections.close_all()


def outcome(worker, run: Verification) -> VerifyPhoneOutcome:
    async def result(client):
        handle = client.get_workflow_handle(
            run.workflow_id, run_id=run.run_id, result_type=VerifyPhoneOutcome
        )
        return await handle.result()

    return worker.run(result)


def assert_consistent(answers: list[dict], status: str, used: int, max_attempts: int) -> None:
    """Every answer agrees with how the run ended, and each counted attempt is seen once."""
    incorrect = sorted(a["attempts_remaining"] for a in answers if a["result"] == INCORRECT)
    assert len(incorrect) == len(set(incorrect)), "two answers claim the same attempt"
    if status == "failed":
        assert used == max_attempts
        assert incorrect == list(range(1, max_attempts))
        assert not [a for a in answers if a["result"] == SUCCESS]
        assert {a["attempts_remaining"] for a in answers if a["result"] == MAX_ATTEMPTS} == {0}
    else:
        assert status == "verified"
        assert used <= max_attempts
        assert len(incorrect) < max_attempts
        assert not [a for a in answers if a["result"] == MAX_ATTEMPTS]


def test_ten_parallel_wrong_codes_count_exactly_max_attempts(settings, worker, sign_up, sms_outbox):
    customer = sign_up()
    right = latest_code(sms_outbox, customer.phone_number)
    start = threading.Barrier(BURST)

    def guess(index_code):
        index, code = index_code
        start.wait()
        return verify(customer.id, code, f"wrong-{index}")

    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(guess, enumerate(wrong_codes(right))))

    run = Verification.objects.get(customer=customer)
    assert recorded_status(customer) == "failed"
    used = outcome(worker, run).attempts_used
    assert used == settings.VERIFICATION_MAX_ATTEMPTS
    assert sorted(a["result"] for a in answers).count(MAX_ATTEMPTS) == BURST - used + 1
    assert_consistent(answers, "failed", used, settings.VERIFICATION_MAX_ATTEMPTS)
    after = verify(customer.id, right, "late-right")
    assert (after["result"], after["attempts_remaining"]) == (MAX_ATTEMPTS, 0)
