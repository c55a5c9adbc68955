"""The channel ladder, proved on the workflow alone: the run moves from one channel to the next
with a fresh code when a code is not delivered, or not entered in time; a customer can ask for a
channel; a channel the customer cannot use is skipped; the limits hold across channels.

The stub sends "111111", "222222", … whatever the channel; `send_calls` shows which it was.
"""

from concurrent.futures import Future
from datetime import timedelta

from temporalio.exceptions import ApplicationError

from tests.conftest import wait_until_past
from tests.workflows.conftest import (
    WorkflowHarness,
    utcnow,
    verify_input,
    wait_for,
)
from verification.contracts import (
    CHANNEL_UNUSABLE_ERROR,
    SMS_UNDELIVERABLE_ERROR,
    Channel,
    DeliveryStatus,
    Refusal,
    VerificationResult,
    VerificationState,
)

SMS, VOICE, EMAIL = Channel.SMS, Channel.VOICE, Channel.EMAIL
SUCCESS = VerificationResult.SUCCESS
INCORRECT = VerificationResult.INCORRECT_CODE
LADDER = [SMS, VOICE, EMAIL]


def ladder(**limits: int):
    return verify_input(channels=LADDER, **{"channel_timeout_seconds": 600, **limits})


def test_a_failed_receipt_moves_the_run_to_the_next_channel_with_a_fresh_code(
    harness: WorkflowHarness,
) -> None:
    harness.start(ladder())
    texted = harness.code()

    harness.receipt(DeliveryStatus.UNDELIVERED)
    called = harness.code(2)

    assert harness.channels_sent == [SMS, VOICE]
    status = harness.status()
    assert status.channel == VOICE
    assert [(s.channel, s.delivery_status) for s in status.sends] == [
        (SMS, DeliveryStatus.UNDELIVERED),
        (VOICE, None),
    ]
    assert harness.submit(texted).result == INCORRECT  # superseded: the old code stops working
    assert harness.submit(called).result == SUCCESS


def test_no_right_code_within_the_channel_timeout_moves_the_run_on_by_itself(
    harness: WorkflowHarness,
) -> None:
    harness.start(ladder(channel_timeout_seconds=1))
    first = harness.status()  # signup answers once the text is sent

    # The stub hands its code over a moment before the run has the send's result: wait for it.
    called = harness.wait_for_status(lambda s: s.channel == VOICE and s.code_expires_at)
    last = harness.wait_for_status(lambda s: s.channel == EMAIL and s.code_expires_at)

    assert (first.next_channel, first.channel) == (VOICE, SMS)
    assert first.next_channel_at is not None
    assert first.next_channel_at <= utcnow() + timedelta(seconds=2)
    assert (called.channel, called.next_channel) == (VOICE, EMAIL)
    assert (last.channel, last.next_channel, last.next_channel_at) == (EMAIL, None, None)
    assert harness.channels_sent == [SMS, VOICE, EMAIL]
    assert last.attempts_remaining == 3  # moving on costs no attempt
    assert harness.submit(harness.code(3)).result == SUCCESS


def test_a_right_code_in_time_stops_the_ladder(harness: WorkflowHarness) -> None:
    harness.start(ladder(channel_timeout_seconds=1))

    answer = harness.submit(harness.code())

    assert answer.result == SUCCESS
    assert harness.result().state == VerificationState.VERIFIED
    assert harness.channels_sent == [SMS]


def test_a_customer_can_ask_for_a_channel_within_the_cooldown_and_send_limits(
    harness: WorkflowHarness,
) -> None:
    harness.start(ladder(resend_cooldown_seconds=0, max_sends=2))
    harness.code()

    harness.resend(EMAIL)
    emailed = harness.code(2)
    limit = harness.refusal(harness.resend, VOICE)

    assert harness.channels_sent == [SMS, EMAIL]
    assert harness.status().channel == EMAIL
    assert limit.type == Refusal.RESEND_LIMIT_REACHED  # sends count across channels
    assert harness.submit(emailed).result == SUCCESS


def test_a_channel_asked_for_that_the_ladder_does_not_offer_is_refused(
    harness: WorkflowHarness,
) -> None:
    harness.start(verify_input(channels=[SMS, VOICE], resend_cooldown_seconds=0))
    harness.code()

    refusal = harness.refusal(harness.resend, EMAIL)

    assert refusal.type == Refusal.CHANNEL_NOT_OFFERED
    assert refusal.details == (EMAIL.value,)
    assert harness.channels_sent == [SMS]


def test_the_cooldown_holds_across_channels(harness: WorkflowHarness) -> None:
    harness.start(ladder(resend_cooldown_seconds=600))
    harness.code()

    refusal = harness.refusal(harness.resend, VOICE)

    assert refusal.type == Refusal.RESEND_COOLDOWN


def test_a_channel_the_customer_cannot_use_is_skipped_and_costs_no_send(
    harness: WorkflowHarness,
) -> None:
    harness.fail_sends(
        ApplicationError("No email on file.", type=CHANNEL_UNUSABLE_ERROR, non_retryable=True),
        channel=EMAIL,
    )
    harness.start(verify_input(channels=[EMAIL, SMS], max_sends=3, resend_cooldown_seconds=0))

    texted = harness.code()
    skipped = harness.refusal(harness.resend, EMAIL)

    assert harness.channels_sent == [EMAIL, SMS]
    assert harness.started.channel == SMS
    assert harness.status().sends_remaining == 2
    assert [s.channel for s in harness.status().sends] == [SMS]
    assert skipped.type == Refusal.CHANNEL_NOT_OFFERED
    assert harness.submit(texted).result == SUCCESS


def test_a_number_sms_cannot_reach_gets_a_call_instead_of_ending_the_run(
    harness: WorkflowHarness,
) -> None:
    harness.fail_sends(
        ApplicationError(
            "A landline.", "not_mobile", type=SMS_UNDELIVERABLE_ERROR, non_retryable=True
        ),
        channel=SMS,
    )
    harness.start(verify_input(channels=[SMS, VOICE]))

    called = harness.code()

    assert harness.started.state == VerificationState.PENDING
    assert harness.started.channel == VOICE
    assert harness.channels_sent == [SMS, VOICE]
    assert [(s.channel, s.delivery_status) for s in harness.started.sends] == [
        (SMS, DeliveryStatus.FAILED),
        (VOICE, None),
    ]
    assert harness.submit(called).result == SUCCESS


def test_attempts_are_counted_per_run_not_per_channel(harness: WorkflowHarness) -> None:
    harness.start(ladder(max_attempts=2))
    texted = harness.code()
    harness.submit("000000")
    harness.receipt(DeliveryStatus.FAILED, texted)
    called = harness.code(2)

    wrong_again = harness.submit("000000")
    after = harness.late(harness.submit, called)

    assert wrong_again.result == VerificationResult.MAX_ATTEMPTS_REACHED
    assert after == "closed"
    assert harness.result().state == VerificationState.FAILED


def test_the_ladder_stops_at_the_send_limit(harness: WorkflowHarness) -> None:
    harness.start(ladder(channel_timeout_seconds=1, max_sends=2))
    harness.code(2)

    wait_for(lambda: harness.status().next_channel is None)
    status = harness.status()

    assert harness.channels_sent == [SMS, VOICE]
    assert (status.sends_remaining, status.next_channel_at) == (0, None)


def test_a_channel_asked_for_that_fails_for_good_leaves_the_code_before_it_working(
    harness: WorkflowHarness,
) -> None:
    harness.fail_sends(
        ApplicationError(
            "The server refused it.",
            "unreachable",
            type=SMS_UNDELIVERABLE_ERROR,
            non_retryable=True,
        ),
        channel=EMAIL,
    )
    harness.start(ladder(resend_cooldown_seconds=0))
    texted = harness.code()

    harness.resend(EMAIL)
    status = harness.wait_for_status(lambda s: s.fallback_channel)

    assert harness.channels_sent == [SMS, EMAIL]
    assert status.state == VerificationState.PENDING
    assert (status.channel, status.fallback_channel, status.fallback_reason) == (
        SMS,
        EMAIL,
        "unreachable",
    )
    assert [(s.channel, s.delivery_status) for s in status.sends] == [
        (SMS, None),
        (EMAIL, DeliveryStatus.FAILED),
    ]
    assert EMAIL not in status.channels
    assert status.sends_remaining == 3  # the refused email was a send
    assert harness.submit(texted).result == SUCCESS


def test_a_last_rung_the_customer_cannot_use_leaves_the_code_before_it_working(
    harness: WorkflowHarness,
) -> None:
    harness.fail_sends(
        ApplicationError("No email on file.", type=CHANNEL_UNUSABLE_ERROR, non_retryable=True),
        channel=EMAIL,
    )
    harness.start(verify_input(channels=[SMS, EMAIL], channel_timeout_seconds=1))
    texted = harness.code()

    status = harness.wait_for_status(lambda s: s.fallback_channel)

    assert harness.channels_sent == [SMS, EMAIL]
    assert (status.channel, status.fallback_channel, status.next_channel) == (SMS, EMAIL, None)
    assert [s.channel for s in status.sends] == [SMS]  # nothing went out by email
    assert harness.submit(texted).result == SUCCESS


def test_a_channel_failing_for_good_after_an_undelivered_code_ends_the_run(
    harness: WorkflowHarness,
) -> None:
    harness.fail_sends(
        ApplicationError("A landline.", "not_mobile", type=SMS_UNDELIVERABLE_ERROR),
        channel=VOICE,
    )
    harness.start(verify_input(channels=[SMS, VOICE]))
    harness.code()

    harness.receipt(DeliveryStatus.UNDELIVERED)

    assert harness.result().state == VerificationState.UNDELIVERABLE
    assert harness.channels_sent == [SMS, VOICE]


def test_two_channels_failing_for_good_in_turn_leave_the_first_code_working(
    harness: WorkflowHarness,
) -> None:
    for channel in (VOICE, EMAIL):
        harness.fail_sends(
            ApplicationError("Refused.", "unreachable", type=SMS_UNDELIVERABLE_ERROR),
            channel=channel,
        )
    harness.start(ladder(resend_cooldown_seconds=0))
    texted = harness.code()

    harness.resend(VOICE)  # refused: the ladder moves on to email, refused too
    status = harness.wait_for_status(lambda s: s.fallback_channel)

    assert harness.channels_sent == [SMS, VOICE, EMAIL]
    assert (status.channel, status.fallback_channel) == (SMS, EMAIL)
    assert harness.submit(texted).result == SUCCESS


def ask_for_a_refused_email(harness: WorkflowHarness) -> tuple[str, "Future[object]"]:
    """Start a run, then ask for an email the server will refuse, its send held once called.

    Return the texted code and the request's future, answered after `release_sends()`.
    """
    harness.fail_sends(
        ApplicationError("Refused.", "unreachable", type=SMS_UNDELIVERABLE_ERROR),
        channel=EMAIL,
    )
    harness.start(ladder(resend_cooldown_seconds=0))
    texted = harness.code()
    harness.hold_sends()
    asking = harness.in_background(harness.resend, EMAIL)
    harness.wait_for_send_call(2)
    return texted, asking


def test_receipts_for_the_kept_code_count_whenever_they_come(harness: WorkflowHarness) -> None:
    texted, asking = ask_for_a_refused_email(harness)

    harness.receipt(DeliveryStatus.SENT, texted)  # while the email is on its way
    harness.release_sends()
    asking.result(timeout=10)
    harness.wait_for_status(lambda s: s.fallback_channel)
    harness.receipt(DeliveryStatus.DELIVERED, texted)  # once the text's code is current again
    status = harness.wait_for_status(lambda s: s.delivery_status == DeliveryStatus.DELIVERED)

    assert [(s.channel, s.delivery_status) for s in status.sends] == [
        (SMS, DeliveryStatus.DELIVERED),
        (EMAIL, DeliveryStatus.FAILED),
    ]
    assert harness.submit(texted).result == SUCCESS


def test_a_kept_code_reported_lost_meanwhile_moves_the_ladder_on(harness: WorkflowHarness) -> None:
    texted, asking = ask_for_a_refused_email(harness)

    harness.receipt(DeliveryStatus.UNDELIVERED, texted)  # while the email is on its way
    harness.release_sends()
    asking.result(timeout=10)
    called = harness.code(2)

    assert harness.channels_sent == [SMS, EMAIL, VOICE]
    assert harness.status().channel == VOICE
    assert harness.submit(called).result == SUCCESS


def ask_for_a_text_while_a_channel_fails(harness: WorkflowHarness, channel: Channel, error) -> str:
    """Start a run, ask for `channel`, whose send fails with `error`, and, while that send is
    on its way, for a text; return the text's code once both requests are answered."""
    harness.fail_sends(error, channel=channel)
    harness.start(ladder(resend_cooldown_seconds=0))
    harness.code()
    harness.hold_sends()
    asking = harness.in_background(harness.resend, channel)
    harness.wait_for_send_call(2)
    harness.resend(SMS)
    harness.release_sends()
    asking.result(timeout=10)
    texted = harness.code(2)
    harness.wait_for_status(lambda s: s.code_expires_at)
    return texted


def test_a_call_refused_after_a_text_was_asked_for_leaves_the_text_to_go_out(
    harness: WorkflowHarness,
) -> None:
    texted = ask_for_a_text_while_a_channel_fails(
        harness, VOICE, ApplicationError("A landline.", "not_mobile", type=SMS_UNDELIVERABLE_ERROR)
    )

    status = harness.status()
    assert harness.channels_sent == [SMS, VOICE, SMS]
    assert (status.state, status.channel, status.fallback_channel) == (
        VerificationState.PENDING,
        SMS,
        None,
    )
    assert [(s.channel, s.delivery_status) for s in status.sends] == [
        (SMS, None),
        (VOICE, DeliveryStatus.FAILED),
        (SMS, None),
    ]
    assert VOICE not in status.channels
    assert status.sends_remaining == 2
    assert harness.submit(texted).result == SUCCESS


def test_an_email_with_no_address_after_a_text_was_asked_for_costs_no_send(
    harness: WorkflowHarness,
) -> None:
    texted = ask_for_a_text_while_a_channel_fails(
        harness,
        EMAIL,
        ApplicationError("No email on file.", type=CHANNEL_UNUSABLE_ERROR, non_retryable=True),
    )

    status = harness.status()
    assert harness.channels_sent == [SMS, EMAIL, SMS]
    assert [s.channel for s in status.sends] == [SMS, SMS]
    assert EMAIL not in status.channels
    assert status.sends_remaining == 3
    assert harness.submit(texted).result == SUCCESS


def test_a_window_ending_with_a_rung_due_ends_the_run_without_another_send(
    harness: WorkflowHarness,
) -> None:
    harness.start(ladder(channel_timeout_seconds=1, window_seconds=2))
    harness.code()
    harness.stop_worker()  # both the rung's deadline and the window pass meanwhile
    wait_until_past(harness.started.window_ends_at)
    harness.start_worker()

    assert harness.result().state == VerificationState.EXPIRED
    status = harness.status()
    assert [s.channel for s in status.sends] == [SMS]
    assert status.sends_remaining == 4
    assert harness.channels_sent == [SMS]


def test_a_kept_code_whose_channel_was_refused_since_is_not_resent_through_it(
    harness: WorkflowHarness,
) -> None:
    harness.start(verify_input(channels=[SMS, VOICE], resend_cooldown_seconds=0))
    texted = harness.code()
    refused = {"type": SMS_UNDELIVERABLE_ERROR, "non_retryable": True}
    harness.fail_sends(ApplicationError("STOP.", "unsubscribed", **refused), channel=SMS)
    harness.fail_sends(ApplicationError("Refused.", "unreachable", **refused), channel=VOICE)
    harness.resend()  # the text is refused, then the call: the first text's code is kept
    kept = harness.wait_for_status(lambda s: s.fallback_channel)

    refusal = harness.refusal(harness.resend)  # its channel, texts, is refused for good now

    assert (kept.state, kept.channel, kept.channels) == (VerificationState.PENDING, SMS, [])
    assert refusal.type == Refusal.CHANNEL_NOT_OFFERED
    assert harness.status().state == VerificationState.PENDING
    assert harness.submit(texted).result == SUCCESS
