"""Every rule of VerifyPhoneWorkflow, proved on the workflow alone: a real dev server and worker,
stub activities under the real names, no database.

The stub sends "111111" first, then "222222", and so on; `WRONG` is never sent.
"""

import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from tests.conftest import wait_until_past
from tests.workflows.conftest import (
    WorkflowHarness,
    code_hash,
    utcnow,
    verify_input,
    wait_for,
)
from verification.contracts import (
    CANCEL_UPDATE,
    CODE_SENT_UPDATE,
    CUSTOMER_NOT_FOUND_ERROR,
    INVALID_ARGUMENT_ERROR,
    RESEND_CODE_UPDATE,
    SMS_UNDELIVERABLE_ERROR,
    SUBMIT_CODE_UPDATE,
    Channel,
    DeliveryStatus,
    Refusal,
    ResendCodeResult,
    SubmitCodeResult,
    UndeliverableReason,
    VerificationResult,
    VerificationState,
    VerifyPhoneOutcome,
)

SUCCESS = VerificationResult.SUCCESS
INCORRECT = VerificationResult.INCORRECT_CODE
CODE_EXPIRED = VerificationResult.CODE_EXPIRED
MAX_ATTEMPTS = VerificationResult.MAX_ATTEMPTS_REACHED
WRONG = "000000"
# The dev server takes at most 10 updates in flight per run and makes the 11th retry a second
# later, so a burst of 10 is the most that stays both concurrent and fast.
BURST = 10
# The workflow's clock is the server's; both read this machine's clock, a little apart.
CLOCK_SLACK = timedelta(seconds=1)


def answer(result: SubmitCodeResult) -> tuple[VerificationResult, int]:
    return result.result, result.attempts_remaining


def burst(
    harness: WorkflowHarness, codes: list[str], *, key: str = ""
) -> list[SubmitCodeResult | ApplicationError | None]:
    """Submit `codes` all at once, each under its own update id; return the answers in order.

    With `key`, all go under that one Idempotency-Key, as a client reusing it would send them; a
    refusal is returned as its error. None stands for a submit that reached Temporal only as the
    run closed: Temporal aborts it, and the web tier then answers from the database.
    """
    start = threading.Barrier(len(codes))

    def submit(index: int, code: str) -> SubmitCodeResult | ApplicationError | None:
        start.wait(10)
        try:
            if key:
                return harness.submit(code, f"burst-{index}", key=key)
            return harness.submit(code, f"burst-{index}")
        except RPCError as error:
            assert error.status == RPCStatusCode.NOT_FOUND, error
            return None
        except WorkflowUpdateFailedError as error:
            assert key and isinstance(error.cause, ApplicationError), error
            return error.cause

    with ThreadPoolExecutor(len(codes)) as pool:
        return list(pool.map(submit, range(len(codes)), codes))


def accepted_updates(harness: WorkflowHarness) -> int:
    accepted = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    return sum(event.event_type == accepted for event in harness.history())


def test_right_code_verifies_and_the_outcome_is_recorded_once(harness: WorkflowHarness) -> None:
    harness.start()

    verified = harness.submit(harness.code())

    assert answer(verified) == (SUCCESS, 2)
    assert harness.result() == VerifyPhoneOutcome(
        VerificationState.VERIFIED, attempts_used=1, attempts_remaining=2
    )
    (outcome,) = harness.outcomes
    assert outcome.state == VerificationState.VERIFIED
    assert outcome.customer_id == harness.input.customer_id
    assert outcome.workflow_id == harness.workflow_id


def test_wrong_code_costs_an_attempt_and_the_code_stays_valid(harness: WorkflowHarness) -> None:
    harness.start()
    code = harness.code()

    wrong = harness.submit(WRONG)
    right = harness.submit(code)

    assert answer(wrong) == (INCORRECT, 2)
    assert answer(right) == (SUCCESS, 1)
    assert harness.result() == VerifyPhoneOutcome(
        VerificationState.VERIFIED, attempts_used=2, attempts_remaining=1
    )
    assert harness.codes == [code]


def test_last_allowed_wrong_code_fails_the_run_and_a_right_code_after_it_does_not_verify(
    harness: WorkflowHarness,
) -> None:
    harness.start()
    code = harness.code()

    wrongs = [answer(harness.submit(WRONG)) for _ in range(3)]
    after = harness.late(harness.submit, code)

    assert wrongs == [(INCORRECT, 2), (INCORRECT, 1), (MAX_ATTEMPTS, 0)]
    assert after == "closed"
    assert harness.outcome().state == VerificationState.FAILED
    assert harness.result() == VerifyPhoneOutcome(
        VerificationState.FAILED, attempts_used=3, attempts_remaining=0
    )
    assert len(harness.outcomes) == 1


def test_expired_code_costs_an_attempt_and_a_fresh_code_is_sent_that_verifies(
    harness: WorkflowHarness,
) -> None:
    harness.start(verify_input(code_ttl_seconds=1))
    old = harness.code()
    wait_until_past(harness.wait_for_status(lambda s: s.code_expires_at).code_expires_at)

    expired = harness.submit(old)
    new = harness.code(2)
    verified = harness.submit(new)

    assert answer(expired) == (CODE_EXPIRED, 2)
    assert new != old
    assert len(harness.send_calls) == 2
    assert answer(verified) == (SUCCESS, 1)
    assert harness.result() == VerifyPhoneOutcome(
        VerificationState.VERIFIED, attempts_used=2, attempts_remaining=1
    )


def test_expired_code_on_the_last_attempt_fails_the_run_without_sending_another(
    harness: WorkflowHarness,
) -> None:
    harness.start(verify_input(code_ttl_seconds=1, max_attempts=1))
    code = harness.code()
    wait_until_past(harness.wait_for_status(lambda s: s.code_expires_at).code_expires_at)

    expired = harness.submit(code)

    assert answer(expired) == (MAX_ATTEMPTS, 0)
    assert harness.result() == VerifyPhoneOutcome(
        VerificationState.FAILED, attempts_used=1, attempts_remaining=0
    )
    assert harness.outcomes[0].state == VerificationState.FAILED
    assert len(harness.send_calls) == 1


def test_resend_during_cooldown_is_refused_with_the_seconds_left_to_wait(
    harness: WorkflowHarness,
) -> None:
    harness.start(verify_input(resend_cooldown_seconds=30))
    harness.code()

    refusal = harness.refusal(harness.resend)

    assert refusal.type == Refusal.RESEND_COOLDOWN
    (retry_after,) = refusal.details
    assert 28 <= retry_after <= 30
    assert harness.status().sends_remaining == 4
    assert len(harness.send_calls) == 1


def test_resend_after_cooldown_replaces_the_code_and_counts_the_send(
    harness: WorkflowHarness,
) -> None:
    harness.start(verify_input(resend_cooldown_seconds=1))
    old = harness.code()
    assert harness.refusal(harness.resend).type == Refusal.RESEND_COOLDOWN
    wait_until_past(harness.status().resend_available_at)

    resent = harness.resend()
    new = harness.code(2)

    assert (resent.sends_remaining, resent.retry_after_seconds) == (3, 1)
    assert harness.status().sends_remaining == 3
    assert answer(harness.submit(old)) == (INCORRECT, 2)
    assert answer(harness.submit(new)) == (SUCCESS, 1)


def test_resend_is_refused_once_max_sends_codes_were_sent(harness: WorkflowHarness) -> None:
    harness.start(verify_input(resend_cooldown_seconds=0, max_sends=2))
    harness.code()

    resent = harness.resend()
    refusal = harness.refusal(harness.resend)

    assert resent.sends_remaining == 0
    assert refusal.type == Refusal.RESEND_LIMIT_REACHED
    harness.code(2)
    status = harness.status()
    assert (status.sends_remaining, status.resend_available_at) == (0, None)
    assert len(harness.send_calls) == 2


def test_window_passing_ends_the_run_expired_and_a_later_code_is_not_taken(
    harness: WorkflowHarness,
) -> None:
    harness.start(verify_input(window_seconds=1))
    code = harness.code()

    assert harness.result() == VerifyPhoneOutcome(
        VerificationState.EXPIRED, attempts_used=0, attempts_remaining=3
    )
    assert harness.outcome().state == VerificationState.EXPIRED
    assert harness.late(harness.submit, code) == "closed"


def test_last_code_expiring_with_no_sends_left_ends_the_run_expired(
    harness: WorkflowHarness,
) -> None:
    harness.start(verify_input(code_ttl_seconds=1, max_sends=1))
    harness.code()

    assert harness.result() == VerifyPhoneOutcome(
        VerificationState.EXPIRED, attempts_used=0, attempts_remaining=3
    )
    assert [o.state for o in harness.outcomes] == [VerificationState.EXPIRED]
    assert len(harness.send_calls) == 1


def test_cancel_ends_the_run_cancelled_and_refuses_later_codes_and_resends(
    harness: WorkflowHarness,
) -> None:
    harness.start()
    code = harness.code()

    cancelled = harness.cancel()

    assert (cancelled.cancelled, cancelled.state) == (True, VerificationState.CANCELLED)
    assert harness.outcome().state == VerificationState.CANCELLED
    assert harness.result() == VerifyPhoneOutcome(
        VerificationState.CANCELLED, attempts_used=0, attempts_remaining=3
    )
    ended = {f"refused:{Refusal.VERIFICATION_ENDED}", "closed"}
    assert harness.late(harness.submit, code) in ended
    assert harness.late(harness.resend) in ended
    assert harness.late(harness.cancel) == "closed"
    assert len(harness.outcomes) == 1


def test_same_update_id_is_counted_once_and_a_retry_gets_the_first_answer(
    harness: WorkflowHarness,
) -> None:
    harness.start()
    code = harness.code()

    first = harness.submit(WRONG, "key-1")
    retried_with_right_code = harness.submit(code, "key-1")
    other = harness.submit(WRONG, "key-2")

    assert answer(first) == answer(retried_with_right_code) == (INCORRECT, 2)
    assert answer(other) == (INCORRECT, 1)
    assert harness.status().attempts_remaining == 1


def test_an_idempotency_key_sent_again_with_another_code_is_refused_and_costs_nothing(
    harness: WorkflowHarness,
) -> None:
    harness.start()
    code = harness.code()
    first = harness.submit(WRONG, key="key-1")  # each call its own update id, as the web's are

    refusal = harness.refusal(lambda: harness.submit(code, key="key-1"))

    assert refusal.type == Refusal.IDEMPOTENCY_KEY_REUSED
    assert answer(first) == (INCORRECT, 2)
    assert harness.status().attempts_remaining == 2
    assert answer(harness.submit(code, key="key-2")) == (SUCCESS, 1)


def test_an_idempotency_key_sent_again_for_another_channel_is_refused_and_sends_nothing(
    harness: WorkflowHarness,
) -> None:
    harness.start(verify_input(resend_cooldown_seconds=0))
    harness.code()
    harness.resend(key="resend-1")

    refusal = harness.refusal(lambda: harness.resend(Channel.SMS, key="resend-1"))

    assert refusal.type == Refusal.IDEMPOTENCY_KEY_REUSED
    assert harness.status().sends_remaining == 3
    assert harness.resend(key="resend-2").sends_remaining == 2


def test_one_idempotency_key_sent_at_once_with_different_codes_counts_once(
    harness: WorkflowHarness,
) -> None:
    harness.start()
    code = harness.code()
    codes = [f"{900000 + n}" for n in range(BURST)]

    answers = burst(harness, codes, key="reused")

    counted = [a for a in answers if isinstance(a, SubmitCodeResult)]
    refused = [a for a in answers if isinstance(a, ApplicationError)]
    assert [answer(a) for a in counted] == [(INCORRECT, 2)]
    assert {error.type for error in refused} == {Refusal.IDEMPOTENCY_KEY_REUSED}
    assert len(refused) == BURST - 1
    assert harness.status().attempts_remaining == 2
    assert answer(harness.submit(code, key="fresh")) == (SUCCESS, 1)


def test_concurrent_wrong_codes_count_exactly_max_attempts_and_a_right_code_after_fails(
    harness: WorkflowHarness,
) -> None:
    harness.start()
    code = harness.code()

    answers = burst(harness, [WRONG] * BURST)
    after = harness.late(harness.submit, code)

    given = sorted(answer(a) for a in answers if a is not None)
    assert given[:3] == [(INCORRECT, 1), (INCORRECT, 2), (MAX_ATTEMPTS, 0)]
    assert set(given[3:]) <= {(MAX_ATTEMPTS, 0)}
    assert after == "closed"
    assert harness.result() == VerifyPhoneOutcome(
        VerificationState.FAILED, attempts_used=3, attempts_remaining=0
    )
    assert len(harness.outcomes) == 1


def test_right_code_racing_wrong_ones_verifies_only_within_max_attempts(
    harness: WorkflowHarness,
) -> None:
    harness.start()
    code = harness.code()
    codes = [WRONG] * (BURST // 2) + [code] + [WRONG] * (BURST // 2 - 1)

    answers = burst(harness, codes)
    outcome = harness.result()

    mine = answers[BURST // 2]
    answers = [a for a in answers if a is not None]
    incorrect = sorted(a.attempts_remaining for a in answers if a.result == INCORRECT)
    assert outcome.attempts_used <= 3
    assert len(incorrect) == len(set(incorrect)), "two answers claim the same attempt"
    if outcome.state == VerificationState.VERIFIED:
        assert answer(mine) == (SUCCESS, 3 - outcome.attempts_used)
        assert MAX_ATTEMPTS not in {a.result for a in answers}
    else:
        assert outcome == VerifyPhoneOutcome(
            VerificationState.FAILED, attempts_used=3, attempts_remaining=0
        )
        assert mine is None or answer(mine) == (MAX_ATTEMPTS, 0)
        assert incorrect == [1, 2]


def test_status_reports_attempts_sends_and_deadlines_of_a_pending_run(
    harness: WorkflowHarness,
) -> None:
    before = utcnow()
    harness.start(
        verify_input(
            code_ttl_seconds=60, resend_cooldown_seconds=30, window_seconds=120, max_sends=5
        )
    )
    status = harness.wait_for_status(lambda s: s.code_expires_at)
    after = utcnow()

    assert status.state == VerificationState.PENDING
    assert (status.attempts_remaining, status.sends_remaining) == (3, 4)
    since = timedelta(seconds=60), timedelta(seconds=30), timedelta(seconds=120)
    deadlines = status.code_expires_at, status.resend_available_at, status.window_ends_at
    for deadline, offset in zip(deadlines, since, strict=True):
        assert before + offset - CLOCK_SLACK <= deadline <= after + offset + CLOCK_SLACK
    harness.submit(WRONG)
    assert harness.status().attempts_remaining == 2


def test_status_of_an_ended_run_offers_no_code_and_no_resend(harness: WorkflowHarness) -> None:
    harness.start()
    pending = harness.wait_for_status(lambda s: s.code_expires_at)

    harness.submit(harness.code())
    harness.result()
    ended = harness.status()  # a closed run still answers queries, replayed by the worker

    assert ended.state == VerificationState.VERIFIED
    assert (ended.attempts_remaining, ended.sends_remaining) == (2, 4)
    assert (ended.code_expires_at, ended.resend_available_at) == (None, None)
    assert ended.window_ends_at == pending.window_ends_at
    assert harness.late(harness.resend) == "closed"


def test_an_answer_that_ends_the_run_comes_only_after_its_outcome_is_recorded(
    harness: WorkflowHarness,
) -> None:
    harness.start()
    code = harness.code()
    harness.hold_outcome()

    verifying = harness.in_background(harness.submit, code)
    harness.wait_for_outcome_call()
    held = verifying.done()
    harness.release_outcome()
    verified = verifying.result(timeout=10)
    answered_at = time.monotonic()

    assert not held, "answered while the outcome was still being written"
    assert answer(verified) == (SUCCESS, 2)
    assert harness.stubs.outcome_recorded_at is not None
    assert harness.stubs.outcome_recorded_at <= answered_at


def accepted_update_names(harness: WorkflowHarness) -> list[str]:
    """The updates the run's history holds as accepted, by name, in order: what Temporal keeps."""
    accepted = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    return [
        event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for event in harness.history()
        if event.event_type == accepted
    ]


def test_a_right_code_is_recorded_only_once_temporal_has_kept_it(harness: WorkflowHarness) -> None:
    """Had the server died before keeping the update, nothing may say the customer is verified."""
    harness.start()
    code = harness.code()
    harness.hold_outcome()

    verifying = harness.in_background(harness.submit, code)
    harness.wait_for_outcome_call()
    kept = accepted_update_names(harness)
    harness.release_outcome()

    assert kept == [CODE_SENT_UPDATE, SUBMIT_CODE_UPDATE]
    assert answer(verifying.result(timeout=10)) == (SUCCESS, 2)


def test_a_cancel_is_recorded_only_once_temporal_has_kept_it(harness: WorkflowHarness) -> None:
    harness.start()
    harness.code()
    harness.hold_outcome()

    cancelling = harness.in_background(harness.cancel)
    harness.wait_for_outcome_call()
    kept = accepted_update_names(harness)
    harness.release_outcome()

    assert kept == [CODE_SENT_UPDATE, CANCEL_UPDATE]
    assert cancelling.result(timeout=10).cancelled


def resend_with_the_send_held(harness: WorkflowHarness) -> "Future[ResendCodeResult]":
    """Start a run, then resend with the new code's send held once called; the resend's answer
    comes in the returned future after `release_sends()`."""
    harness.start(verify_input(resend_cooldown_seconds=0))
    harness.code()
    harness.hold_sends()
    resending = harness.in_background(harness.resend)
    harness.wait_for_send_call(2)
    return resending


def test_a_resent_code_goes_out_only_once_temporal_has_kept_the_resend(
    harness: WorkflowHarness,
) -> None:
    """Had the server died before keeping the resend, the phone would hold a code the run lacks."""
    resending = resend_with_the_send_held(harness)
    kept = accepted_update_names(harness)
    harness.release_sends()

    assert kept == [CODE_SENT_UPDATE, RESEND_CODE_UPDATE]
    assert resending.result(timeout=10).sends_remaining == 3
    assert answer(harness.submit(harness.code(2))) == (SUCCESS, 2)


def test_the_code_sent_again_after_an_expired_one_goes_out_only_once_temporal_has_kept_it(
    harness: WorkflowHarness,
) -> None:
    harness.start(verify_input(code_ttl_seconds=1))
    old = harness.code()
    wait_until_past(harness.wait_for_status(lambda s: s.code_expires_at).code_expires_at)
    harness.hold_sends()

    expired = harness.in_background(harness.submit, old)
    harness.wait_for_send_call(2)
    kept = accepted_update_names(harness)
    harness.release_sends()

    assert kept == [CODE_SENT_UPDATE, SUBMIT_CODE_UPDATE]
    assert answer(expired.result(timeout=10)) == (CODE_EXPIRED, 2)


def test_signup_is_answered_once_the_first_code_is_sent_with_its_expiry(
    harness: WorkflowHarness,
) -> None:
    before = utcnow()
    harness.start(verify_input(code_ttl_seconds=60))

    started = harness.started
    assert started.state == VerificationState.PENDING
    assert len(harness.send_calls) == 1
    assert started.code_expires_at is not None
    assert before + timedelta(seconds=60) - CLOCK_SLACK <= started.code_expires_at
    assert started.run_id == harness.handle.result_run_id


def test_a_run_verified_at_once_takes_at_most_23_history_events(
    harness: WorkflowHarness,
) -> None:
    """8 for the start with its first code, 13 for the right code with its outcome recorded by an
    activity, and 2 for the DURABLE_SIDE_EFFECTS_PATCH marker."""
    harness.start()

    harness.submit(harness.code())
    harness.result()

    assert len(harness.history()) <= 23


@pytest.mark.parametrize("non_retryable", [True, False], ids=["non-retryable", "retryable"])
def test_customer_not_found_on_send_ends_the_run_cancelled_without_retrying(
    harness: WorkflowHarness, non_retryable: bool
) -> None:
    harness.fail_sends(
        ApplicationError("No such customer.", type=CUSTOMER_NOT_FOUND_ERROR, non_retryable=True)
        if non_retryable
        # The workflow's retry policy names the type, so the activity need not say it.
        else ApplicationError("No such customer.", type=CUSTOMER_NOT_FOUND_ERROR)
    )
    harness.start()

    assert harness.result() == VerifyPhoneOutcome(
        VerificationState.CANCELLED, attempts_used=0, attempts_remaining=3
    )
    assert [o.state for o in harness.outcomes] == [VerificationState.CANCELLED]
    assert len(harness.send_calls) == 1


def test_a_send_failing_in_a_way_no_rule_names_ends_the_run_undeliverable_not_failed(
    harness: WorkflowHarness,
) -> None:
    """Failed would read as too many wrong codes; this is the provider's failure, not theirs."""
    harness.fail_sends(
        ApplicationError("The SMS provider refused.", type="SmsRejected", non_retryable=True)
    )
    harness.start()

    assert harness.result() == VerifyPhoneOutcome(
        VerificationState.UNDELIVERABLE, attempts_used=0, attempts_remaining=3
    )
    assert [(o.state, o.reason) for o in harness.outcomes] == [
        (VerificationState.UNDELIVERABLE, UndeliverableReason.SEND_FAILED)
    ]
    assert len(harness.send_calls) == 1


def test_a_code_for_a_run_ended_undeliverable_is_refused_by_the_validator_and_costs_nothing(
    harness: WorkflowHarness,
) -> None:
    harness.fail_sends(
        ApplicationError("A landline.", "not_mobile", type=SMS_UNDELIVERABLE_ERROR),
        channel=Channel.VOICE,
    )
    harness.start(verify_input(channels=[Channel.SMS, Channel.VOICE]))
    texted = harness.code()
    harness.hold_outcome()
    harness.receipt(DeliveryStatus.UNDELIVERED)  # the call that follows is refused: it ends
    harness.wait_for_outcome_call()
    accepted_before = accepted_updates(harness)

    refusal = harness.refusal(harness.submit, texted)

    assert refusal.type == Refusal.VERIFICATION_ENDED
    assert accepted_updates(harness) == accepted_before, "a refused update grew the history"
    assert harness.result().state == VerificationState.UNDELIVERABLE


@pytest.mark.parametrize(
    "malformed",
    ["", "abc", code_hash("111111")[:63], code_hash("111111") + "0"],
    ids=["empty", "short", "63-hex", "65-hex"],
)
def test_malformed_code_hash_is_refused_by_the_validator_and_costs_nothing(
    harness: WorkflowHarness, malformed: str
) -> None:
    harness.start()
    code = harness.code()
    accepted_before = accepted_updates(harness)

    refusal = harness.refusal(harness.submit_hash, malformed)

    assert refusal.type == INVALID_ARGUMENT_ERROR
    assert harness.status().attempts_remaining == 3
    assert accepted_updates(harness) == accepted_before, "a refused update grew the history"
    assert answer(harness.submit(code)) == (SUCCESS, 2)


def test_64_characters_that_are_not_hex_are_refused_by_the_validator_and_cost_nothing(
    harness: WorkflowHarness,
) -> None:
    harness.start()
    harness.code()

    refusal = harness.refusal(harness.submit_hash, "z" * 64)

    assert refusal.type == INVALID_ARGUMENT_ERROR
    assert harness.status().attempts_remaining == 3


def test_64_non_ascii_characters_are_refused_by_the_validator_and_do_not_wedge_the_run(
    harness: WorkflowHarness,
) -> None:
    harness.start()
    code = harness.code()

    refusal = harness.refusal(lambda: harness.submit_hash("é" * 64, timeout=2))

    assert refusal.type == INVALID_ARGUMENT_ERROR
    assert answer(harness.submit(code)) == (SUCCESS, 2)


def test_plaintext_codes_never_appear_in_the_history_only_their_hashes(
    harness: WorkflowHarness,
) -> None:
    harness.start()
    code = harness.code()
    harness.submit(WRONG)
    harness.submit(code)
    harness.result()

    raw = b"".join(event.SerializeToString() for event in harness.history())

    standalone = rb"(?<![0-9a-f])%s(?![0-9a-f])"
    # The search can see payloads: the customer id and both hashes are found in the clear.
    assert re.search(standalone % harness.input.customer_id.encode(), raw)
    assert code_hash(code).encode() in raw and code_hash(WRONG).encode() in raw
    assert not re.search(standalone % code.encode(), raw)
    assert not re.search(standalone % WRONG.encode(), raw)


def test_a_number_the_provider_will_never_text_ends_the_run_undeliverable_without_retrying(
    harness: WorkflowHarness,
) -> None:
    harness.fail_sends(
        ApplicationError(
            "Not a mobile.", "not_mobile", type=SMS_UNDELIVERABLE_ERROR, non_retryable=False
        )
    )

    harness.start()

    assert harness.started.state == VerificationState.UNDELIVERABLE
    assert harness.started.end_reason == "not_mobile"
    assert len(harness.send_calls) == 1  # the workflow's retry policy makes the type final
    assert (harness.outcome().state, harness.outcome().reason) == (
        VerificationState.UNDELIVERABLE,
        "not_mobile",
    )


def test_receipts_for_the_current_code_move_its_status_on_and_never_back(
    harness: WorkflowHarness,
) -> None:
    harness.start(verify_input(resend_cooldown_seconds=0))
    first = harness.code()
    harness.resend()
    harness.code(2)

    harness.receipt(DeliveryStatus.FAILED, first)  # about the replaced code: ignored
    no_receipt = harness.status().delivery_status
    for status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.SENT):
        harness.receipt(status)

    assert no_receipt is None
    assert harness.status().delivery_status == DeliveryStatus.DELIVERED


def test_a_receipt_that_comes_before_its_send_result_still_counts(
    harness: WorkflowHarness,
) -> None:
    """A provider can call back within milliseconds, before the send's result reaches the run."""
    resending = resend_with_the_send_held(harness)
    harness.receipt_for("stub-message-9", DeliveryStatus.DELIVERED)  # another message's
    harness.receipt(DeliveryStatus.SENT)  # this send's, while its result is on the way
    harness.receipt(DeliveryStatus.UNDELIVERED)
    harness.release_sends()
    resending.result(timeout=10)

    status = harness.status()
    assert status.delivery_status == DeliveryStatus.UNDELIVERED
    assert [send.delivery_status for send in status.sends] == [None, DeliveryStatus.UNDELIVERED]


def test_a_failed_delivery_lifts_the_cooldown_but_not_the_send_limit(
    harness: WorkflowHarness,
) -> None:
    harness.start(verify_input(resend_cooldown_seconds=600, max_sends=2))
    harness.code()
    cooling = harness.refusal(harness.resend)

    harness.receipt(DeliveryStatus.UNDELIVERED)
    lifted = harness.status().resend_available_at
    harness.resend()
    harness.code(2)
    harness.receipt(DeliveryStatus.FAILED)
    limit = harness.refusal(harness.resend)

    assert cooling.type == Refusal.RESEND_COOLDOWN
    assert lifted is not None and lifted <= utcnow() + CLOCK_SLACK
    assert limit.type == Refusal.RESEND_LIMIT_REACHED
    assert len(harness.send_calls) == 2


def test_a_first_send_failing_every_try_stops_at_its_deadline_with_a_small_history(
    harness: WorkflowHarness,
) -> None:
    """The first send is a local activity, whose retries would otherwise go on past the deadline
    and add a workflow task to the history every 80 % of the task timeout."""
    harness.fail_sends(ApplicationError("The provider did not answer."))  # retryable
    started = time.monotonic()

    # The deadline is then its floor, one try's 10 s; signup's answer waits for the send's end.
    harness.start(verify_input(window_seconds=1), timeout=30)

    assert harness.started.state == VerificationState.UNDELIVERABLE
    assert harness.result().state == VerificationState.UNDELIVERABLE
    assert harness.outcome().reason == UndeliverableReason.SEND_FAILED
    assert time.monotonic() - started < 30
    assert 3 <= len(harness.send_calls) <= 6  # 1 s, 2 s, 4 s, 8 s apart
    assert len(harness.history()) < 60


def test_codes_waiting_together_for_a_code_that_has_expired_are_each_answered(
    harness: WorkflowHarness,
) -> None:
    """The first to wake asks for a new code; the others wait for it, rather than failing the
    workflow task (and every request after it) on a code that is no longer there."""
    harness.start(verify_input(code_ttl_seconds=0, max_attempts=5))  # every code expired at once
    harness.hold_sends()
    first = harness.submit(WRONG)  # expired: a new code is asked for, and held
    harness.wait_for_send_call(2)
    waiting = [harness.in_background(harness.submit, WRONG) for _ in range(2)]
    wait_for(lambda: accepted_updates(harness) == 4, interval=0.05)  # the start's, and 3 codes

    harness.release_sends()
    answers = sorted(answer(future.result(timeout=10)) for future in waiting)

    assert answer(first) == (CODE_EXPIRED, 4)
    assert answers == [(CODE_EXPIRED, 2), (CODE_EXPIRED, 3)]
    assert harness.status().state == VerificationState.PENDING


def test_resends_asked_for_while_one_is_on_its_way_count_only_sends_made(
    harness: WorkflowHarness,
) -> None:
    """A resend asked for while another waits to begin would replace it unsent, yet counted."""
    harness.start(verify_input(resend_cooldown_seconds=0))
    harness.code()
    harness.hold_sends()
    first = harness.in_background(harness.resend)  # the second send, held on its way
    harness.wait_for_send_call(2)
    harness.resend()  # the third, waiting for the second

    refusal = harness.refusal(harness.resend)  # a fourth would replace the third
    harness.release_sends()
    first.result(timeout=10)
    status = harness.wait_for_status(lambda s: s.code_expires_at and len(s.sends) == 3)

    assert (refusal.type, refusal.details) == (Refusal.RESEND_COOLDOWN, (1,))
    assert len(harness.send_calls) == 3
    assert status.sends_remaining == 2


def window_passed_with_the_worker_away(harness: WorkflowHarness) -> str:
    """Start a run with a 3 s window, stop the worker until the window has passed, and return
    the code sent; the caller sends its request, then `harness.start_worker()`."""
    harness.start(verify_input(resend_cooldown_seconds=0, window_seconds=3))
    code = harness.code()
    harness.stop_worker()
    wait_until_past(harness.started.window_ends_at)
    return code


def test_a_resend_taken_in_with_the_window_s_end_is_refused_and_sends_nothing(
    harness: WorkflowHarness,
) -> None:
    window_passed_with_the_worker_away(harness)
    resending = harness.in_background(harness.refusal, harness.resend)
    time.sleep(0.5)  # the request waits at the server for the worker
    harness.start_worker()

    assert resending.result(timeout=15).type == Refusal.VERIFICATION_ENDED
    assert harness.result().state == VerificationState.EXPIRED
    assert len(harness.send_calls) == 1


def test_a_right_code_taken_in_with_the_window_s_end_does_not_verify(
    harness: WorkflowHarness,
) -> None:
    code = window_passed_with_the_worker_away(harness)
    submitting = harness.in_background(harness.submit, code)
    time.sleep(0.5)
    harness.start_worker()

    assert answer(submitting.result(timeout=15)) == (CODE_EXPIRED, 3)
    assert harness.result().state == VerificationState.EXPIRED


def test_a_send_refused_after_the_window_ended_places_no_call_after_it(
    harness: WorkflowHarness,
) -> None:
    harness.fail_sends(
        ApplicationError("Refused.", "unreachable", type=SMS_UNDELIVERABLE_ERROR),
        channel=Channel.SMS,
    )
    harness.hold_sends()  # the text is refused once released, after the 2 s window
    starting = harness.in_background(
        harness.start, verify_input(channels=[Channel.SMS, Channel.VOICE], window_seconds=2)
    )
    harness.wait_for_send_call(1)
    time.sleep(2.5)
    harness.release_sends()
    starting.result(timeout=15)

    assert harness.result().state == VerificationState.EXPIRED
    assert harness.channels_sent == [Channel.SMS]


def test_a_resend_waiting_behind_a_send_that_fails_past_the_window_leaves_it_send_failed(
    harness: WorkflowHarness,
) -> None:
    """No code ever went out: the run ends as its sends did, not as if a code had expired."""
    harness.start(verify_input(resend_cooldown_seconds=0, window_seconds=3))
    harness.code()
    harness.fail_sends(ApplicationError("The provider did not answer."))  # retryable
    harness.hold_sends()
    resending = harness.in_background(harness.resend)  # its send fails every try, held
    harness.wait_for_send_call(2)
    harness.resend()  # a third, waiting behind it
    resending.result(timeout=10)
    wait_until_past(harness.started.window_ends_at)
    harness.release_sends()

    assert harness.result(timeout=30).state == VerificationState.UNDELIVERABLE
    assert harness.outcome().reason == UndeliverableReason.SEND_FAILED
