"""Verification writes: start, submit, resend and cancel through the workflow; record outcomes.

The web tier calls the first group; activities call `verification_send_code` and
`verification_record_outcome`. Each Temporal call goes through the process's gateway, so it is
bounded in time and fails with TemporalUnavailable.
"""

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from coffeeshop.temporal import TemporalUnavailable, gateway
from customers.models import Customer
from customers.phones import phone_mask
from verification import limits
from verification.codes import code_generate, code_hash
from verification.contracts import (
    CANCEL_UPDATE,
    FINAL_RESULTS,
    RESEND_CODE_UPDATE,
    RESEND_COOLDOWN_ERROR,
    RESEND_LIMIT_ERROR,
    SUBMIT_CODE_UPDATE,
    VERIFICATION_ENDED_ERROR,
    WORKFLOW_TYPE,
    CancelInput,
    CancelResult,
    ResendCodeInput,
    ResendCodeResult,
    SendCodeResult,
    SubmitCodeInput,
    SubmitCodeResult,
    VerificationState,
    VerifyPhoneInput,
    workflow_id_for,
)
from verification.models import Verification
from verification.selectors import verification_get_current, verification_get_view
from verification.sms import sms_send

logger = logging.getLogger(__name__)

EXECUTION_TIMEOUT_MARGIN = timedelta(hours=1)


class NoVerification(Exception):
    """The customer has no verification to act on."""


class VerificationEnded(Exception):
    """The verification has ended and cannot take this action."""

    def __init__(self, message: str, verification: Verification | None = None) -> None:
        super().__init__(message)
        self.verification = verification


class ResendRefused(Exception):
    """The workflow refused to send a new code (cooldown, limit, or ended)."""

    def __init__(self, reason: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after


class CustomerNotFound(Exception):
    pass


def verification_input(*, customer_id: str) -> VerifyPhoneInput:
    """The workflow's input: the customer, and the limits in force when it starts."""
    return VerifyPhoneInput(
        customer_id=customer_id,
        code_ttl_seconds=settings.VERIFICATION_CODE_TTL,
        max_attempts=settings.VERIFICATION_MAX_ATTEMPTS,
        resend_cooldown_seconds=settings.VERIFICATION_RESEND_COOLDOWN,
        max_sends=settings.VERIFICATION_MAX_SENDS,
        window_seconds=settings.VERIFICATION_WINDOW,
    )


def verification_start(*, customer: Customer, again: bool = False) -> Verification:
    """Start the customer's verification workflow, or return the one already running.

    Idempotent: a retry after a timeout finds the run the first call started. With
    `again=False` a finished run is never replaced; with `again=True` a new run starts once
    the previous one has ended.
    """
    limits.phone_limits_hit_start(phone_number=customer.phone_number)
    workflow_id = workflow_id_for(str(customer.id))
    params = verification_input(customer_id=str(customer.id))
    reuse = (
        WorkflowIDReusePolicy.ALLOW_DUPLICATE if again else WorkflowIDReusePolicy.REJECT_DUPLICATE
    )

    async def start(client: Client) -> str:
        try:
            handle = await client.start_workflow(
                WORKFLOW_TYPE,
                params,
                id=workflow_id,
                task_queue=settings.TEMPORAL_TASK_QUEUE,
                id_reuse_policy=reuse,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                execution_timeout=timedelta(seconds=params.window_seconds)
                + EXECUTION_TIMEOUT_MARGIN,
            )
            return handle.result_run_id or ""
        except WorkflowAlreadyStartedError:
            description = await client.get_workflow_handle(workflow_id).describe()
            return description.run_id

    try:
        run_id = gateway.call(start)
    except TemporalUnavailable:
        # Nothing was sent: a client retrying through an outage must not use up the number's day.
        limits.phone_limits_refund_start(phone_number=customer.phone_number)
        raise
    return _verification_record_started(customer=customer, workflow_id=workflow_id, run_id=run_id)


def _verification_record_started(
    *, customer: Customer, workflow_id: str, run_id: str
) -> Verification:
    try:
        with transaction.atomic():
            verification, _ = Verification.objects.get_or_create(
                run_id=run_id, defaults={"customer": customer, "workflow_id": workflow_id}
            )
    except IntegrityError:  # a concurrent request recorded the same run first
        verification = Verification.objects.get(run_id=run_id)
    return verification


def verification_submit_code(
    *, customer: Customer, code: str, idempotency_key: str | None = None
) -> SubmitCodeResult:
    """Let the workflow judge one code. A retry with the same key is answered, not recounted."""
    verification = _verification_require(customer=customer)
    if not verification.is_pending:
        return _verification_final_answer(verification)
    hashed = code_hash(workflow_id=verification.workflow_id, code=code)
    update_id = f"submit-{idempotency_key or uuid.uuid4()}"

    async def submit(client: Client) -> SubmitCodeResult:
        handle = client.get_workflow_handle(verification.workflow_id, run_id=verification.run_id)
        return await handle.execute_update(
            SUBMIT_CODE_UPDATE,
            SubmitCodeInput(code_hash=hashed),
            id=update_id,
            result_type=SubmitCodeResult,
        )

    try:
        return _verification_update(submit)
    except _RunClosed:
        verification = verification_reconcile(verification=verification)
        if verification.is_pending:
            raise TemporalUnavailable("The verification is finishing; try again.") from None
        return _verification_final_answer(verification)
    except WorkflowUpdateFailedError as exc:
        raise _verification_refusal(exc, verification) from exc


def verification_resend_code(*, customer: Customer) -> ResendCodeResult:
    """Ask the workflow for a new code; raise ResendRefused during cooldown or past the limit."""
    verification = _verification_require(customer=customer)
    if not verification.is_pending:
        raise ResendRefused("ended", "This verification has ended.")
    limits.phone_limits_hit_send(phone_number=customer.phone_number)

    async def resend(client: Client) -> ResendCodeResult:
        handle = client.get_workflow_handle(verification.workflow_id, run_id=verification.run_id)
        return await handle.execute_update(
            RESEND_CODE_UPDATE, ResendCodeInput(), result_type=ResendCodeResult
        )

    try:
        return _verification_update(resend)
    except _RunClosed:
        raise ResendRefused("ended", "This verification has ended.") from None
    except WorkflowUpdateFailedError as exc:
        limits.phone_limits_refund_send(phone_number=customer.phone_number)
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            retry_after = None
            if cause.type == RESEND_COOLDOWN_ERROR and cause.details:
                retry_after = int(cause.details[0])
            reason = {
                RESEND_COOLDOWN_ERROR: "cooldown",
                RESEND_LIMIT_ERROR: "limit_reached",
                VERIFICATION_ENDED_ERROR: "ended",
            }.get(cause.type or "", "refused")
            raise ResendRefused(reason, cause.message, retry_after) from exc
        raise


def verification_cancel(*, customer: Customer, reason: str = "") -> CancelResult:
    """End the customer's pending verification as cancelled, through the workflow."""
    verification = _verification_require(customer=customer)
    if not verification.is_pending:
        return CancelResult(cancelled=False, state=VerificationState(verification.status))

    async def cancel(client: Client) -> CancelResult:
        handle = client.get_workflow_handle(verification.workflow_id, run_id=verification.run_id)
        return await handle.execute_update(
            CANCEL_UPDATE, CancelInput(reason=reason), result_type=CancelResult
        )

    try:
        return _verification_update(cancel)
    except _RunClosed:
        verification.refresh_from_db()
        return CancelResult(cancelled=False, state=VerificationState(verification.status))


def verification_send_code(
    *, customer_id: str, workflow_id: str, ttl_seconds: int
) -> SendCodeResult:
    """Make a code, text it to the customer, and return only its hash and expiry."""
    phone_number = (
        Customer.objects.filter(pk=customer_id).values_list("phone_number", flat=True).first()
    )
    if phone_number is None:
        raise CustomerNotFound(customer_id)
    code = code_generate()
    expires_at = timezone.now() + timedelta(seconds=ttl_seconds)
    minutes = max(1, round(ttl_seconds / 60))
    sms_send(
        to=phone_number,
        body=f"Your Coffeeshop verification code is {code}. It expires in {minutes} min.",
        idempotency_key=f"{workflow_id}:{expires_at.isoformat()}",
    )
    logger.info("Sent a verification code to %s", phone_mask(phone_number))
    return SendCodeResult(
        code_hash=code_hash(workflow_id=workflow_id, code=code), expires_at=expires_at
    )


def verification_record_outcome(
    *,
    customer_id: str,
    workflow_id: str,
    run_id: str,
    state: VerificationState,
    finished_at: datetime,
) -> None:
    """Write how a run ended. Idempotent: running it twice changes nothing the second time."""
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
        if customer is None:
            return  # deleted while verifying; nothing left to record
        verification, _ = Verification.objects.get_or_create(
            run_id=run_id, defaults={"customer": customer, "workflow_id": workflow_id}
        )
        if verification.status != state or verification.finished_at is None:
            verification.status = state
            verification.finished_at = finished_at
            verification.save(update_fields=["status", "finished_at"])
        if state == VerificationState.VERIFIED and not customer.phone_verified:
            customer.phone_verified = True
            customer.verified_at = finished_at
            customer.save(update_fields=["phone_verified", "verified_at", "updated_at"])


CLOSED_RUN_STATES = {
    WorkflowExecutionStatus.TERMINATED: VerificationState.CANCELLED,
    WorkflowExecutionStatus.CANCELED: VerificationState.CANCELLED,
    WorkflowExecutionStatus.TIMED_OUT: VerificationState.EXPIRED,
    WorkflowExecutionStatus.FAILED: VerificationState.FAILED,
}


def verification_reconcile(*, verification: Verification) -> Verification:
    """Record the end of a run that closed without recording it itself.

    A run ends through its own activity, except when someone terminates it (say, from the
    Temporal UI) or it hits its execution timeout; then the database would say pending forever.
    """
    verification.refresh_from_db()
    if not verification.is_pending:
        return verification

    async def describe(client: Client) -> WorkflowExecutionDescription:
        handle = client.get_workflow_handle(verification.workflow_id, run_id=verification.run_id)
        return await handle.describe()

    description = gateway.call(describe)
    state = CLOSED_RUN_STATES.get(description.status)
    if state is not None:
        verification_record_outcome(
            customer_id=str(verification.customer_id),
            workflow_id=verification.workflow_id,
            run_id=verification.run_id,
            state=state,
            finished_at=description.close_time or timezone.now(),
        )
        verification.refresh_from_db()
    return verification


class _RunClosed(Exception):
    """The workflow run has already closed, so it takes no more updates."""


def _verification_require(*, customer: Customer) -> Verification:
    verification = verification_get_current(customer=customer)
    if verification is None:
        raise NoVerification("This customer has no verification.")
    return verification


def _verification_update(operation):
    """Run an update through the gateway, telling a closed run apart from an unreachable one."""
    try:
        return gateway.call(operation)
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise TemporalUnavailable("No worker answered in time.") from exc
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise _RunClosed from exc
        raise


def _verification_final_answer(verification: Verification) -> SubmitCodeResult:
    result = FINAL_RESULTS.get(VerificationState(verification.status))
    if result is None:
        raise VerificationEnded("This verification was cancelled.", verification)
    return SubmitCodeResult(result=result, attempts_remaining=0)


def _verification_refusal(exc: WorkflowUpdateFailedError, verification: Verification) -> Exception:
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.type == VERIFICATION_ENDED_ERROR:
        return VerificationEnded(cause.message, verification)
    return exc


RUN_LIMIT_PERIOD = timedelta(days=1)
# An ended run's workflow closes moments after its outcome is recorded; until it has, its id
# cannot start a new run (the start would find the old one still running).
RUN_CLOSE_WAIT_SECONDS = 5.0


class AlreadyVerified(Exception):
    """The customer's phone number is verified already."""


class RunLimitReached(Exception):
    """The customer has started as many verifications as VERIFICATION_MAX_RUNS_PER_DAY allows."""

    def __init__(self, limit: int, retry_at: datetime) -> None:
        super().__init__(f"No more than {limit} verifications can start in 24 hours.")
        self.limit = limit
        self.retry_at = retry_at


def verification_start_again(*, customer: Customer) -> tuple[Verification, bool]:
    """Start a new run once the last one has ended; return (run, started).

    A run that is still pending is returned as it is, so a double submit starts one run. At most
    VERIFICATION_MAX_RUNS_PER_DAY runs, the first included, start in any 24 hours.
    """
    if customer.phone_verified:
        raise AlreadyVerified("This phone number is verified already.")
    current = verification_get_current(customer=customer)
    if current is not None and current.is_pending:
        # The workflow may have ended a moment before its outcome activity recorded it.
        view = verification_get_view(customer=customer)
        if view is None or view.state == VerificationState.PENDING:
            return current, False
    limit = max(1, settings.VERIFICATION_MAX_RUNS_PER_DAY)  # the first run always counts
    recent = list(
        Verification.objects.filter(
            customer=customer, started_at__gt=timezone.now() - RUN_LIMIT_PERIOD
        )
        .order_by("started_at")
        .values_list("started_at", flat=True)
    )
    if len(recent) >= limit:
        raise RunLimitReached(limit, recent[len(recent) - limit] + RUN_LIMIT_PERIOD)
    if current is not None:
        _verification_wait_closed(current)
    verification = verification_start(customer=customer, again=current is not None)
    return verification, verification != current


def _verification_wait_closed(verification: Verification) -> None:
    async def wait(client: Client) -> None:
        handle = client.get_workflow_handle(verification.workflow_id, run_id=verification.run_id)
        try:
            await handle.result()
        except WorkflowFailureError:
            pass  # terminated or timed out: closed all the same
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # not found: long gone from history
                raise

    gateway.call(wait, timeout=RUN_CLOSE_WAIT_SECONDS)
