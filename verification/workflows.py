"""The phone verification workflow (worker process, sandboxed). Deterministic: no Django, no I/O,
only activities.

The attempt count, the current code's hash and its expiry live here and nowhere else; Temporal
rebuilds them by replay after any crash.

A side effect never runs before the decision it follows is durable. The first code is sent by a
local activity, inside the first workflow task: the run's start is already in Temporal by then,
and if that task is lost the send runs again with the same code. Every later send, and the
outcome record, runs as an ordinary activity. An update's decision (a right code, a resend, a
cancel) is durable only once the workflow task that accepts it completes, and a local activity
runs before that: had the Temporal server died in between, the database would say verified, or
the phone hold a code, that the run never knew about. An ordinary activity is scheduled in that
same completion, so it runs only once the decision is kept. A run that is verified right away
takes 8 events for the start with its first code and 13 for the right code with its outcome.
"""

import hmac
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from verification.contracts import (
        CANCEL_UPDATE,
        CHANNEL_UNUSABLE_ERROR,
        CODE_SENT_UPDATE,
        CUSTOMER_NOT_FOUND_ERROR,
        DELIVERY_STATUS_SIGNAL,
        FINAL_RESULTS,
        INVALID_ARGUMENT_ERROR,
        RECONCILE_ACTIVITY,
        RECONCILE_WORKFLOW_TYPE,
        RECORD_OUTCOME_ACTIVITY,
        RESEND_CODE_UPDATE,
        SEND_CODE_ACTIVITY,
        SMS_UNDELIVERABLE_ERROR,
        STATUS_QUERY,
        SUBMIT_CODE_UPDATE,
        WORKFLOW_TYPE,
        CancelInput,
        CancelResult,
        Channel,
        CodeSentInput,
        DeliveryStatus,
        DeliveryStatusInput,
        ReconcileInput,
        ReconcileResult,
        RecordOutcomeInput,
        Refusal,
        ResendCodeInput,
        ResendCodeResult,
        SendCodeInput,
        SendCodeResult,
        SendRecord,
        SubmitCodeInput,
        SubmitCodeResult,
        UndeliverableReason,
        VerificationResult,
        VerificationState,
        VerificationStatus,
        VerifyPhoneInput,
        VerifyPhoneOutcome,
    )

# Per attempt. Short, so a provider that hangs costs a customer seconds. A worker that dies in the
# first send (a local activity) is replaced after the workflow task timeout, which the web tier
# sets at the start (verification/services.py), instead.
SEND_CODE_TIMEOUT = timedelta(seconds=10)
SEND_CODE_DEADLINE = timedelta(minutes=10)
SEND_CODE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[
        CUSTOMER_NOT_FOUND_ERROR,
        SMS_UNDELIVERABLE_ERROR,
        CHANNEL_UNUSABLE_ERROR,
    ],
)
# A local activity's retries that wait longer than this wait on a durable timer instead of in the
# worker. Retries in the worker ignore the schedule-to-close deadline, and keep the workflow task
# open by completing it again every 80 % of its timeout: a provider away for an hour would add
# thousands of events to each new run's history, and never end its send. Timers honour both.
LOCAL_RETRY_THRESHOLD = timedelta(seconds=2)
# Per attempt. A write takes milliseconds; this only bounds how long a run waits on a worker that
# died mid-record before the record is tried again elsewhere. An attempt cut off while it still
# waits on the database finishes harmlessly: recording an outcome twice changes nothing.
RECORD_OUTCOME_TIMEOUT = timedelta(seconds=3)
# No deadline: an outcome must reach the database, however long the database is away. Whoever
# waits for the answer meanwhile gets 503 from the web tier's bound, and their retry the answer.
RECORD_OUTCOME_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
RECONCILE_TIMEOUT = timedelta(minutes=5)
# Runs that failed to send for good before this patch ended FAILED; a query on such a closed run
# replays its history, and must still say FAILED, as its row does.
UNDELIVERABLE_PATCH = "undeliverable-state"
# Before this patch every send and the outcome record ran as local activities; runs begun then
# replay that way (see the module docstring for why they no longer do).
DURABLE_SIDE_EFFECTS_PATCH = "side-effects-after-durable-decisions"
# Before this patch a receipt that came while its send's result was still on the way (a provider
# that calls back within milliseconds) was dropped; runs that met one then replay dropping it.
EARLY_RECEIPTS_PATCH = "receipts-before-send-result"
# Receipts kept for a send in flight, by message id: a provider calls back a few times per message.
EARLY_RECEIPTS_KEPT = 8
# Before this patch a send that failed for good with no rung after it ended the run, even when
# the code before it (a text that was arriving) still worked; runs that met one then replay so.
KEEP_PREVIOUS_CODE_PATCH = "keep-previous-code-when-a-channel-fails"
# Before this patch a send that failed for good after a newer one was asked for was taken for the
# newer one: its channel skipped, its record failed, and the ladder moved on from it.
SUPERSEDED_SEND_FAILURE_PATCH = "superseded-send-failure-is-its-own"
# Before this patch a send that failed in a way no rule names (its retries ran out: the provider
# was away for minutes) ended the run FAILED, which reads as too many wrong codes.
SEND_FAILED_PATCH = "send-failure-is-undeliverable"
# Before this patch a code or a send due in the same task as the window's end (a worker back
# after it, or a send that outlived it) was judged or made before the run expired.
WINDOW_FIRST_PATCH = "window-ends-before-codes-and-sends"


@dataclass
class _Code:
    """A code that went out: enough to let it work again if the send replacing it fails."""

    channel: Channel
    code_hash: str
    expires_at: datetime | None
    message_id: str
    delivery: DeliveryStatus | None
    record: SendRecord | None


# What the web tier sends: an HMAC-SHA256 in lower-case hex. Anything else is refused unread, so
# no malformed input can cost an attempt or reach hmac.compare_digest.
CODE_HASH = re.compile(r"[0-9a-f]{64}")


@workflow.defn(name=WORKFLOW_TYPE)
class VerifyPhoneWorkflow:
    """Send a one-time code to a customer's phone and wait for them to type it in."""

    @workflow.init
    def __init__(self, input: VerifyPhoneInput) -> None:
        self._input = input
        self._state = VerificationState.PENDING
        self._attempts = 0
        self._sends = 0
        self._code_hash: str | None = None
        self._code_expires_at: datetime | None = None
        self._last_send_requested_at: datetime | None = None
        self._send_requested = False
        self._sending = False
        self._first_send_started = False
        self._outcome: workflow.ActivityHandle[None] | None = None
        self._message_id = ""
        self._delivery: DeliveryStatus | None = None
        # Receipts that came while a send was in flight, before its message id was known.
        self._early_receipts: dict[str, DeliveryStatus] = {}
        # The code the current send replaces, while that send may yet fail for good.
        self._previous_code: _Code | None = None
        # Why the last send failed for good, and through which channel, when the code before it
        # was kept instead.
        self._fallback_reason = ""
        self._fallback_channel: Channel | None = None
        self._end_reason = ""
        self._window_ends_at = workflow.now() + timedelta(seconds=input.window_seconds)
        # The channel ladder. A run with one channel never moves on by itself, and takes exactly
        # the steps it took before there was a ladder.
        self._ladder = list(input.channels) or [Channel.SMS]
        self._channel = self._ladder[0]
        self._skipped: set[Channel] = set()
        self._sent: list[SendRecord] = []
        self._current_send: SendRecord | None = None  # the send of the current code
        self._ladder_deadline: datetime | None = None
        self._advance_due = False
        # Each Idempotency-Key an update was accepted with, and what it asked for.
        self._request_keys: dict[str, str] = {}
        self._request_send()

    @workflow.run
    async def run(self, input: VerifyPhoneInput) -> VerifyPhoneOutcome:
        while self._state is VerificationState.PENDING:
            if (
                (self._send_requested or self._advance_due)
                and self._window_passed()
                and workflow.patched(WINDOW_FIRST_PATCH)
            ):
                self._expire_if_due()  # no code goes out after the window
                continue
            if self._send_requested:
                await self._send_code()
                continue
            if self._advance_due:
                self._advance()
                continue
            remaining = (self._next_deadline() - workflow.now()).total_seconds()
            if remaining > 0:
                try:
                    await workflow.wait_condition(
                        lambda: (
                            self._state is not VerificationState.PENDING
                            or self._send_requested
                            or self._advance_due
                        ),
                        timeout=remaining,
                    )
                    continue
                except TimeoutError:
                    pass
            self._expire_if_due()
            if (
                self._state is VerificationState.PENDING
                and self._ladder_deadline is not None
                and workflow.now() >= self._ladder_deadline
            ):
                self._advance()  # no right code on this channel in time: try the next

        await self._record_outcome()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return VerifyPhoneOutcome(
            state=self._state,
            attempts_used=self._attempts,
            attempts_remaining=self._attempts_remaining(),
        )

    @workflow.update(name=CODE_SENT_UPDATE)
    async def code_sent(self, input: CodeSentInput) -> VerificationStatus:
        """Answer once the current code is on its way (or the run has ended): the live status."""
        await workflow.wait_condition(
            lambda: self._state is not VerificationState.PENDING or self._code_ready()
        )
        if self._state is not VerificationState.PENDING:
            await self._record_outcome()
        return self.status()

    @workflow.update(name=SUBMIT_CODE_UPDATE)
    async def submit_code(self, input: SubmitCodeInput) -> SubmitCodeResult:
        """Check one code. Every wrong or expired submission costs an attempt.

        An answer that ends the run is given only once the outcome is in the database, so a
        client told SUCCESS reads `phone_verified: true` at once.
        """
        self._remember_key("submit", input.idempotency_key, input.code_hash)
        # Codes waiting for the same send wake together, and the first may ask for a new one
        # (its code had expired): the others then wait for that one.
        while self._state is VerificationState.PENDING and not self._code_ready():
            await workflow.wait_condition(
                lambda: self._state is not VerificationState.PENDING or self._code_ready()
            )
        if (
            self._state is VerificationState.PENDING
            and self._window_passed()
            and workflow.patched(WINDOW_FIRST_PATCH)
        ):
            self._end(VerificationState.EXPIRED)  # its end is due in this same task
        if self._state is not VerificationState.PENDING:
            return await self._final_answer()
        assert self._code_hash is not None and self._code_expires_at is not None

        self._attempts += 1
        if workflow.now() >= self._code_expires_at:
            if self._attempts_remaining() == 0:
                self._end(VerificationState.FAILED)
                return await self._final_answer()
            if self._sends < self._input.max_sends:
                self._request_send()
            return SubmitCodeResult(VerificationResult.CODE_EXPIRED, self._attempts_remaining())
        if hmac.compare_digest(self._code_hash, input.code_hash):
            self._end(VerificationState.VERIFIED)
            return await self._final_answer()
        if self._attempts_remaining() == 0:
            self._end(VerificationState.FAILED)
            return await self._final_answer()
        return SubmitCodeResult(VerificationResult.INCORRECT_CODE, self._attempts_remaining())

    @submit_code.validator
    def _validate_submit_code(self, input: SubmitCodeInput) -> None:
        if not isinstance(input.code_hash, str) or not CODE_HASH.fullmatch(input.code_hash):
            raise ApplicationError("Malformed code hash.", type=INVALID_ARGUMENT_ERROR)
        self._refuse_reused_key("submit", input.idempotency_key, input.code_hash)
        if self._state is not VerificationState.PENDING and self._state not in FINAL_RESULTS:
            raise ApplicationError(
                "The verification has ended.", self._state.value, type=Refusal.VERIFICATION_ENDED
            )

    @workflow.update(name=RESEND_CODE_UPDATE)
    def resend_code(self, input: ResendCodeInput) -> ResendCodeResult:
        """Send a new code, through the channel asked for if any; the old one stops working."""
        self._remember_key("resend", input.idempotency_key, input.channel or "")
        self._request_send(input.channel)
        return ResendCodeResult(
            retry_after_seconds=self._input.resend_cooldown_seconds,
            sends_remaining=self._input.max_sends - self._sends,
        )

    @resend_code.validator
    def _validate_resend_code(self, input: ResendCodeInput) -> None:
        # Refusals are validator errors so that a flood of them never grows the history.
        self._refuse_reused_key("resend", input.idempotency_key, input.channel or "")
        if self._state is not VerificationState.PENDING:
            raise ApplicationError(
                "The verification has ended.", self._state.value, type=Refusal.VERIFICATION_ENDED
            )
        if self._window_passed():
            # Its end is due in this same task (a worker back after the window ended, say).
            raise ApplicationError(
                "The verification has ended.",
                VerificationState.EXPIRED.value,
                type=Refusal.VERIFICATION_ENDED,
            )
        channel = input.channel or self._channel
        if channel not in self._ladder or channel in self._skipped:
            raise ApplicationError(
                "This verification cannot send codes that way.",
                channel,
                type=Refusal.CHANNEL_NOT_OFFERED,
            )
        if self._sends >= self._input.max_sends:
            raise ApplicationError(
                "No more codes can be sent for this verification.",
                type=Refusal.RESEND_LIMIT_REACHED,
            )
        # A send asked for and not yet begun (one before it is still on its way) would be
        # replaced by this one unsent, yet counted.
        wait = max(self._resend_wait_seconds(), 1 if self._send_requested else 0)
        if wait > 0:
            raise ApplicationError(
                "A new code was sent recently.", wait, type=Refusal.RESEND_COOLDOWN
            )

    @workflow.update(name=CANCEL_UPDATE)
    async def cancel(self, input: CancelInput) -> CancelResult:
        """End a pending verification as cancelled; an ended one is left as it is."""
        cancelled = self._state is VerificationState.PENDING
        if cancelled:
            self._end(VerificationState.CANCELLED)
        await self._record_outcome()
        return CancelResult(cancelled=cancelled, state=self._state)

    @workflow.signal(name=DELIVERY_STATUS_SIGNAL)
    def delivery_status(self, input: DeliveryStatusInput) -> None:
        """A provider's receipt for a text: kept if it is about the current code and moves on.

        Receipts for older codes, repeats, and ones arriving out of order (sent after delivered)
        change nothing. One that comes while a send is in flight may be about it (the provider
        can call back before the send's result reaches the run): it is kept until that result
        names its message.
        """
        if not self._message_id:
            if self._sending and (
                input.message_id in self._early_receipts
                or len(self._early_receipts) < EARLY_RECEIPTS_KEPT
            ):
                kept = self._early_receipts.get(input.message_id)
                if kept is None or input.status.rank > kept.rank:
                    self._early_receipts[input.message_id] = input.status
            return
        if input.message_id == self._message_id:
            self._delivery_update(input.status)

    def _delivery_update(self, status: DeliveryStatus) -> None:
        if self._delivery is None or status.rank > self._delivery.rank:
            self._delivery = status
            if self._current_send is not None:
                self._current_send.delivery_status = status
            if status.is_failure and self._next_rung() is not None:
                self._advance_due = True  # it never arrived: the next channel, now

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> VerificationStatus:
        pending = self._state is VerificationState.PENDING
        can_resend = pending and self._sends < self._input.max_sends
        resend_at = None
        if can_resend and self._last_send_requested_at is not None:
            resend_at = workflow.now() + timedelta(seconds=self._resend_wait_seconds())
        info = workflow.info()
        return VerificationStatus(
            state=self._state,
            attempts_remaining=self._attempts_remaining(),
            sends_remaining=self._input.max_sends - self._sends,
            code_expires_at=self._code_expires_at if pending else None,
            resend_available_at=resend_at,
            window_ends_at=self._window_ends_at,
            run_id=info.run_id,
            started_at=info.start_time,
            delivery_status=self._delivery,
            end_reason=self._end_reason,
            channel=self._channel,
            sends=[SendRecord(s.channel, s.requested_at, s.delivery_status) for s in self._sent],
            channels=[channel for channel in self._ladder if channel not in self._skipped],
            fallback_reason=self._fallback_reason,
            fallback_channel=self._fallback_channel,
            next_channel=self._next_rung() if self._ladder_deadline and can_resend else None,
            next_channel_at=self._ladder_deadline if can_resend else None,
        )

    def _request_send(self, channel: Channel | None = None) -> None:
        # With no current code (a refused channel moved on to the next), the one to keep if this
        # send fails too stays the last code that went out.
        if self._code_hash is not None:
            self._previous_code = _Code(
                self._channel,
                self._code_hash,
                self._code_expires_at,
                self._message_id,
                self._delivery,
                self._current_send,
            )
        self._fallback_reason = ""
        self._fallback_channel = None
        if channel is not None:
            self._channel = channel
        self._sends += 1
        self._send_requested = True
        self._last_send_requested_at = workflow.now()
        self._code_hash = None
        self._code_expires_at = None
        self._message_id = ""
        self._delivery = None
        self._early_receipts = {}
        self._ladder_deadline = None
        self._advance_due = False
        self._current_send = SendRecord(self._channel, workflow.now())
        self._sent.append(self._current_send)

    def _next_rung(self) -> Channel | None:
        """The next channel down the ladder from the current one that this customer can use."""
        position = self._ladder.index(self._channel) if self._channel in self._ladder else -1
        for channel in self._ladder[position + 1 :]:
            if channel not in self._skipped:
                return channel
        return None

    def _advance(self) -> None:
        """Move to the next channel with a fresh code, while the ladder and the sends last."""
        self._advance_due = False
        self._ladder_deadline = None
        following = self._next_rung()
        if following is not None and self._sends < self._input.max_sends:
            self._request_send(following)

    async def _send_code(self) -> None:
        self._send_requested = False
        self._sending = True
        info = workflow.info()
        deadline = min(SEND_CODE_DEADLINE, self._window_ends_at - workflow.now())
        send = SendCodeInput(
            customer_id=self._input.customer_id,
            workflow_id=info.workflow_id,
            ttl_seconds=self._input.code_ttl_seconds,
            run_id=info.run_id,
            channel=self._channel,
            send_number=self._sends,
            run_started_at=info.start_time,
        )
        timeouts = {
            "start_to_close_timeout": SEND_CODE_TIMEOUT,
            "schedule_to_close_timeout": max(deadline, SEND_CODE_TIMEOUT),
            "retry_policy": SEND_CODE_RETRY,
        }
        first, self._first_send_started = not self._first_send_started, True
        record = self._current_send
        try:
            if not first and workflow.patched(DURABLE_SIDE_EFFECTS_PATCH):
                sent = await workflow.execute_activity(
                    SEND_CODE_ACTIVITY, send, result_type=SendCodeResult, **timeouts
                )
            else:
                sent = await workflow.execute_local_activity(
                    SEND_CODE_ACTIVITY,
                    send,
                    result_type=SendCodeResult,
                    local_retry_threshold=LOCAL_RETRY_THRESHOLD,
                    **timeouts,
                )
        except FailureError as err:
            # An activity's failure arrives wrapped in an ActivityError; a local activity's may
            # also arrive bare (its ApplicationError, or the timeout that ended its retries).
            cause = err.cause if isinstance(err, ActivityError) else err
            # A newer send goes ahead only within the window; past it, this failure is the
            # run's last word, as with no newer send.
            if (
                self._state is VerificationState.PENDING
                and self._send_requested
                and not self._window_passed()
                and workflow.patched(SUPERSEDED_SEND_FAILURE_PATCH)
            ):
                self._superseded_send_failed(send.channel, record, cause)
                return
            if self._state is VerificationState.PENDING and (
                self._skip_channel(cause) or self._keep_previous_code(cause)
            ):
                return
            if self._state is VerificationState.PENDING:
                self._end(self._state_after_send_failure(cause))
            workflow.logger.warning(
                "No code could be delivered; the run ends %s.",
                self._state,
                extra={"customer_id": self._input.customer_id},
            )
            return
        finally:
            self._sending = False
        if self._send_requested or self._state is not VerificationState.PENDING:
            return  # superseded by a newer send, or ended while this one was in flight
        self._previous_code = None
        self._code_hash = sent.code_hash
        self._code_expires_at = sent.expires_at
        self._message_id = sent.message_id
        if self._input.channel_timeout_seconds and self._next_rung() is not None:
            self._ladder_deadline = workflow.now() + timedelta(
                seconds=self._input.channel_timeout_seconds
            )
        early = self._early_receipts.pop(sent.message_id, None) if sent.message_id else None
        self._early_receipts = {}
        if early is not None and workflow.patched(EARLY_RECEIPTS_PATCH):
            self._delivery_update(early)

    def _superseded_send_failed(
        self, channel: Channel, record: SendRecord | None, cause: BaseException | None
    ) -> None:
        """A send failed after a newer one was asked for: only its own record and channel change.

        The newer send goes ahead, and the code before both stays the one to keep if it fails
        too. A channel that cannot reach the customer is not offered again unless it is the one
        asked for now, whose own send will tell.
        """
        error_type = cause.type if isinstance(cause, ApplicationError) else None
        if error_type in (SMS_UNDELIVERABLE_ERROR, CHANNEL_UNUSABLE_ERROR) and channel != (
            self._channel
        ):
            self._skipped.add(channel)
        if error_type == CHANNEL_UNUSABLE_ERROR:
            self._sends -= 1  # nothing went out
            self._sent = [sent for sent in self._sent if sent is not record]
        elif record is not None:
            record.delivery_status = DeliveryStatus.FAILED

    def _skip_channel(self, cause: BaseException | None) -> bool:
        """Go down the ladder past a channel this customer cannot be reached on, if it goes on.

        A channel the customer has no address for costs no send; one the provider refused did.
        """
        error_type = cause.type if isinstance(cause, ApplicationError) else None
        if error_type not in (SMS_UNDELIVERABLE_ERROR, CHANNEL_UNUSABLE_ERROR):
            return False
        following = self._next_rung()
        unusable = error_type == CHANNEL_UNUSABLE_ERROR
        if following is None or (not unusable and self._sends >= self._input.max_sends):
            return False
        self._skipped.add(self._channel)
        if unusable:
            self._sends -= 1
            self._sent.pop()
        else:
            self._sent[-1].delivery_status = DeliveryStatus.FAILED  # the provider refused it
        self._request_send(following)
        return True

    def _keep_previous_code(self, cause: BaseException | None) -> bool:
        """Let the code before a send that failed for good work again, if it may still arrive.

        A customer who asked for an email the server refuses, or a ladder whose last rung cannot
        reach them, still has the code an earlier channel brought, unless that one was reported
        undelivered too. Its channel is current again, and the failed one is not offered again.
        """
        error_type = cause.type if isinstance(cause, ApplicationError) else None
        previous = self._previous_code
        if (
            error_type not in (SMS_UNDELIVERABLE_ERROR, CHANNEL_UNUSABLE_ERROR)
            or previous is None
            or previous.channel == self._channel
            or (previous.delivery is not None and previous.delivery.is_failure)
            or not workflow.patched(KEEP_PREVIOUS_CODE_PATCH)
        ):
            return False
        assert isinstance(cause, ApplicationError)
        if error_type == CHANNEL_UNUSABLE_ERROR:
            self._fallback_reason = UndeliverableReason.UNREACHABLE.value
            self._sends -= 1  # nothing went out
            self._sent.pop()
        else:
            self._fallback_reason = str(cause.details[0]) if cause.details else ""
            self._sent[-1].delivery_status = DeliveryStatus.FAILED
        self._skipped.add(self._channel)
        self._fallback_channel = self._channel
        self._channel = previous.channel
        self._code_hash = previous.code_hash
        self._code_expires_at = previous.expires_at
        self._message_id = previous.message_id
        self._delivery = previous.delivery
        self._current_send = previous.record
        self._previous_code = None
        # A receipt for it may have come while the failed send was in flight.
        early = self._early_receipts.pop(previous.message_id, None) if previous.message_id else None
        self._early_receipts = {}
        if self._input.channel_timeout_seconds and self._next_rung() is not None:
            self._ladder_deadline = workflow.now() + timedelta(
                seconds=self._input.channel_timeout_seconds
            )
        if early is not None:
            self._delivery_update(early)
        return True

    def _state_after_send_failure(self, cause: BaseException | None) -> VerificationState:
        """How a run ends when its code could not be sent at all."""
        error_type = cause.type if isinstance(cause, ApplicationError) else None
        if error_type == CUSTOMER_NOT_FOUND_ERROR:
            return VerificationState.CANCELLED
        if error_type == SMS_UNDELIVERABLE_ERROR and workflow.patched(UNDELIVERABLE_PATCH):
            assert isinstance(cause, ApplicationError)
            self._end_reason = str(cause.details[0]) if cause.details else ""
            return VerificationState.UNDELIVERABLE
        if error_type == CHANNEL_UNUSABLE_ERROR:
            self._end_reason = UndeliverableReason.UNREACHABLE.value
            return VerificationState.UNDELIVERABLE
        if workflow.patched(SEND_FAILED_PATCH):
            self._end_reason = UndeliverableReason.SEND_FAILED.value
            return VerificationState.UNDELIVERABLE
        return VerificationState.FAILED

    async def _record_outcome(self) -> None:
        """Write how the run ended to the database, once; every caller waits until it is done."""
        if self._outcome is None:
            info = workflow.info()
            outcome = RecordOutcomeInput(
                customer_id=self._input.customer_id,
                workflow_id=info.workflow_id,
                run_id=info.run_id,
                state=self._state,
                finished_at=workflow.now(),
                reason=self._end_reason,
                channel=self._channel if self._sent else None,
            )
            start = (
                workflow.start_activity
                if workflow.patched(DURABLE_SIDE_EFFECTS_PATCH)
                else workflow.start_local_activity
            )
            self._outcome = start(
                RECORD_OUTCOME_ACTIVITY,
                outcome,
                start_to_close_timeout=RECORD_OUTCOME_TIMEOUT,
                retry_policy=RECORD_OUTCOME_RETRY,
            )
        await self._outcome

    def _code_ready(self) -> bool:
        return not (self._sending or self._send_requested) and self._code_hash is not None

    def _next_deadline(self) -> datetime:
        deadline = self._window_ends_at
        if self._ladder_deadline is not None:
            deadline = min(deadline, self._ladder_deadline)
        out_of_sends = self._sends >= self._input.max_sends
        if out_of_sends and self._code_expires_at is not None:
            deadline = min(deadline, self._code_expires_at)
        return deadline

    def _window_passed(self) -> bool:
        return workflow.now() >= self._window_ends_at

    def _expire_if_due(self) -> None:
        now = workflow.now()
        last_code_expired = (
            self._sends >= self._input.max_sends
            and self._code_expires_at is not None
            and now >= self._code_expires_at
        )
        if now >= self._window_ends_at or last_code_expired:
            self._end(VerificationState.EXPIRED)

    def _end(self, state: VerificationState) -> None:
        self._state = state
        self._code_hash = None

    async def _final_answer(self) -> SubmitCodeResult:
        await self._record_outcome()
        result = FINAL_RESULTS.get(self._state)
        if result is None:
            raise ApplicationError(
                "The verification has ended.", self._state.value, type=Refusal.VERIFICATION_ENDED
            )
        return SubmitCodeResult(result, self._attempts_remaining())

    def _remember_key(self, kind: str, key: str, request: str) -> None:
        if key:
            self._request_keys.setdefault(f"{kind}:{key}", request)

    def _refuse_reused_key(self, kind: str, key: str, request: str) -> None:
        """A key's retry has the same update id and never gets here; another request does."""
        if key and self._request_keys.get(f"{kind}:{key}", request) != request:
            raise ApplicationError(
                "This Idempotency-Key came with another request.",
                type=Refusal.IDEMPOTENCY_KEY_REUSED,
            )

    def _attempts_remaining(self) -> int:
        return max(0, self._input.max_attempts - self._attempts)

    def _resend_wait_seconds(self) -> int:
        if self._last_send_requested_at is None:
            return 0
        if self._delivery is not None and self._delivery.is_failure and self._code_ready():
            return 0  # the provider said the code never arrived: no point in waiting
        ready_at = self._last_send_requested_at + timedelta(
            seconds=self._input.resend_cooldown_seconds
        )
        return max(0, math.ceil((ready_at - workflow.now()).total_seconds()))


@workflow.defn(name=RECONCILE_WORKFLOW_TYPE)
class ReconcileVerificationsWorkflow:
    """One pass of reconciliation, started by the schedule: pending rows of closed runs fixed."""

    @workflow.run
    async def run(self, input: ReconcileInput) -> ReconcileResult:
        return await workflow.execute_activity(
            RECONCILE_ACTIVITY,
            input,
            result_type=ReconcileResult,
            start_to_close_timeout=RECONCILE_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=1),  # the next pass is the retry
        )
