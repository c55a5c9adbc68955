"""What the web process asks of a verification: start, submit, resend, cancel, start again.

Pages, the API, the admin and the customers app call these and nothing else. On the usual path
each is one Temporal call through the process's gateway, bounded in time (a start that meets a
former customer's run, or a closed run, makes a few, in turn). They return the contract's results
and raise only `VerificationRefused` (the rules said no), `CustomerNotFound`, or
`TemporalUnavailable` (Temporal or its worker did not answer): no caller needs to know which
Temporal call sits behind a service.

A running verification is reached by the workflow id derived from the customer's id, so a
wrong code needs no database query while the run is open; a right one reads back that the
customer still exists, and a resend reads the phone number and the latest run to count the
number's sends. The rest of the database is read only once Temporal says the run has closed.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db.models import OuterRef, Subquery
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from coffeeshop.phones import phone_region_allowed
from coffeeshop.temporal.client import TemporalUnavailable, gateway
from customers.errors import CustomerNotFound
from customers.models import Customer
from verification import limits
from verification.codes import code_hash
from verification.contracts import (
    CANCEL_UPDATE,
    CODE_SENT_UPDATE,
    DELIVERY_STATUS_SIGNAL,
    FINAL_RESULTS,
    RESEND_CODE_UPDATE,
    SUBMIT_CODE_UPDATE,
    WORKFLOW_ID_PREFIX,
    WORKFLOW_TYPE,
    CancelInput,
    CancelResult,
    Channel,
    CodeSentInput,
    DeliveryStatus,
    DeliveryStatusInput,
    Refusal,
    ResendCodeInput,
    ResendCodeResult,
    SubmitCodeInput,
    SubmitCodeResult,
    VerificationResult,
    VerificationState,
    VerificationStatus,
    VerifyPhoneInput,
    VerifyPhoneOutcome,
    workflow_id_for,
)
from verification.errors import RequestNotAnswered, VerificationRefused
from verification.models import Verification
from verification.reconciliation import verification_reconcile_run
from verification.records import verification_record_started
from verification.selectors import (
    VerificationView,
    verification_get_current,
    verification_get_view,
    verification_run_limit_check,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

EXECUTION_TIMEOUT_MARGIN = timedelta(hours=1)
# How long a workflow task may take before Temporal gives it to another worker. The default is
# 10 s; a worker killed while it holds a task (sending a code, say) would keep a customer waiting
# that long. 2 s is far above what a task takes here (milliseconds, or a provider call, and the
# SDK heartbeats the task when a local activity runs longer), and puts a crashed worker's
# customers on a healthy one within about 2 s.
WORKFLOW_TASK_TIMEOUT = timedelta(seconds=2)
# How long signup waits for the first code to be sent, at most, and never more than half of
# TEMPORAL_REQUEST_TIMEOUT. Past it the run goes on and the answer says the code is on its way.
CODE_SENT_WAIT_SECONDS = 5.0
# How far Temporal's clock and the database's may disagree. A run that started this much before
# the customer it is met for was created cannot be theirs: the id was someone else's then.
CLOCK_SKEW_MARGIN = timedelta(seconds=2)
# An ended run's workflow closes moments after its outcome is recorded; until it has, its id
# cannot start a new run (the start would find the old one still running).
RUN_CLOSE_WAIT_SECONDS = 5.0


def verification_input(*, customer_id: str) -> VerifyPhoneInput:
    """The workflow's input: the customer, and the limits in force when it starts."""
    return VerifyPhoneInput(
        customer_id=customer_id,
        code_ttl_seconds=settings.VERIFICATION_CODE_TTL,
        max_attempts=settings.VERIFICATION_MAX_ATTEMPTS,
        resend_cooldown_seconds=settings.VERIFICATION_RESEND_COOLDOWN,
        max_sends=settings.VERIFICATION_MAX_SENDS,
        window_seconds=settings.VERIFICATION_WINDOW,
        channels=[Channel(name) for name in settings.VERIFICATION_CHANNELS],
        channel_timeout_seconds=settings.VERIFICATION_CHANNEL_TIMEOUT,
    )


def verification_start(
    *, customer: Customer, after_run_id: str | None = None, refund_on_outage: bool = True
) -> VerificationView:
    """Start the customer's verification and wait, bounded, until its first code is sent.

    One Update-with-Start call: the run starts and answers once the code is on its way, with the
    code's expiry. Idempotent: a retry finds the run the first call started, and is not counted
    against the phone's limits again. Without `after_run_id` a finished run of this customer is
    never replaced; with it (the run that ended) a new run starts. A run left under the id by a
    deleted customer whose id was used again is not this customer's: it is ended and replaced.
    Refuses PHONE_REGION_NOT_ALLOWED and PHONE_RATE_LIMITED.

    If Temporal does not answer, the start may still have happened (and texted): a caller whose
    client retries under the same key passes `refund_on_outage=False`, so that the count stands
    for the retry to find, whether or not the run began. Otherwise it is given back, so that a
    client retrying through an outage does not use up the number's day.
    """
    if not phone_region_allowed(customer.phone_number, settings.PHONE_ALLOWED_REGIONS):
        raise VerificationRefused(Refusal.PHONE_REGION_NOT_ALLOWED)
    # One key per run this call may start: the first, or the one after `after_run_id`, of this
    # customer (not of an earlier one, deleted, whose id was used again).
    start_key = f"{customer.id}:{customer.created_at.isoformat()}:{after_run_id or 'first'}"
    counted = limits.phone_limits_hit_start(phone_number=customer.phone_number, start_key=start_key)
    workflow_id = workflow_id_for(str(customer.id))
    try:
        started = gateway.call(_verification_start_operation(customer, replace=bool(after_run_id)))
        if not after_run_id and _verification_run_of_former_customer(started, customer):
            logger.info(
                "Run %s of a deleted customer held the id; this customer gets a run of their own.",
                started.run_id,
                extra={"workflow_id": workflow_id, "customer_id": str(customer.id)},
            )
            if started.open:
                gateway.call(
                    _verification_terminate_operation(
                        workflow_id,
                        started.run_id,
                        "Its customer was deleted and the id was used again.",
                    )
                )
            started = gateway.call(_verification_start_operation(customer, replace=True))
    except TemporalUnavailable:
        if counted and refund_on_outage:
            limits.phone_limits_refund_start(
                phone_number=customer.phone_number, start_key=start_key
            )
        raise
    verification = verification_record_started(
        customer_id=customer.id,
        workflow_id=workflow_id,
        run_id=started.run_id,
        started_at=started.status.started_at if started.status else started.started_at,
    )
    if started.status is None:
        return VerificationView.of_record(verification)
    return VerificationView.of_status(workflow_id, started.status)


@dataclass(frozen=True)
class _Started:
    """The run a start met or began, with its status if its first code went out in time."""

    run_id: str
    status: VerificationStatus | None
    open: bool
    # When an open run that did not answer in time started, by Temporal's clock.
    started_at: datetime | None = None


def _verification_start_operation(
    customer: Customer, *, replace: bool
) -> Callable[[Client], Awaitable[_Started]]:
    """The Update-with-Start call: an open run is joined; a closed one is replaced only if
    `replace`, else met as it is."""
    workflow_id = workflow_id_for(str(customer.id))
    params = verification_input(customer_id=str(customer.id))
    reuse = (
        WorkflowIDReusePolicy.ALLOW_DUPLICATE if replace else WorkflowIDReusePolicy.REJECT_DUPLICATE
    )

    async def start(client: Client) -> _Started:
        operation = WithStartWorkflowOperation(
            WORKFLOW_TYPE,
            params,
            id=workflow_id,
            task_queue=settings.TEMPORAL_TASK_QUEUE,
            id_reuse_policy=reuse,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            execution_timeout=timedelta(seconds=params.window_seconds) + EXECUTION_TIMEOUT_MARGIN,
            task_timeout=WORKFLOW_TASK_TIMEOUT,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(CODE_SENT_WAIT_SECONDS, settings.TEMPORAL_REQUEST_TIMEOUT / 2)
        try:
            update = await asyncio.wait_for(
                client.start_update_with_start_workflow(
                    CODE_SENT_UPDATE,
                    CodeSentInput(),
                    start_workflow_operation=operation,
                    wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                    result_type=VerificationStatus,
                ),
                deadline - loop.time(),
            )
            status = await asyncio.wait_for(update.result(), max(0.0, deadline - loop.time()))
        except (
            TimeoutError,
            WorkflowUpdateRPCTimeoutOrCancelledError,
            WorkflowAlreadyStartedError,
        ):
            # The code is not sent yet (no worker has taken the run, say), or a finished run
            # holds the id. The start operation knows which run it met, if any.
            try:
                run_id = (await operation.workflow_handle()).result_run_id
            except WorkflowAlreadyStartedError as exc:
                return _Started(run_id=exc.run_id or "", status=None, open=False)
            except (WorkflowUpdateRPCTimeoutOrCancelledError, asyncio.CancelledError):
                run_id = None  # cut off before Temporal answered: ask it
            run_id = run_id or await _verification_run_id(client, workflow_id)
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            started_at = (await handle.describe()).start_time
            return _Started(run_id=run_id, status=None, open=True, started_at=started_at)
        except RPCError:
            # Temporal refused the start (or is gone). The operation keeps the same error for
            # `workflow_handle()`; read there, it is not logged again, with a traceback, as a
            # "Future exception was never retrieved" when the operation is collected.
            with contextlib.suppress(RPCError):
                await operation.workflow_handle()
            raise
        return _Started(run_id=status.run_id, status=status, open=True)

    return start


def _verification_run_of_former_customer(started: _Started, customer: Customer) -> bool:
    """Whether the run a first start met belongs to a customer deleted since, whose id this one
    took: a closed run, or one that answered (so its first send recorded it), with no row (a run
    of this customer's own is recorded by then, and rows go with their customer); or an open run
    that did not answer in time (no worker took it) and started before this customer existed."""
    if started.open and started.status is None:
        return (
            started.started_at is not None
            and started.started_at < customer.created_at - CLOCK_SKEW_MARGIN
        )
    return not Verification.objects.filter(run_id=started.run_id).exists()


def _verification_terminate_operation(
    workflow_id: str, run_id: str | None, reason: str
) -> Callable[[Client], Awaitable[None]]:
    """End a run (the workflow's current one without `run_id`) without running its workflow
    code, so without recording its outcome."""

    async def terminate(client: Client) -> None:
        try:
            await client.get_workflow_handle(workflow_id, run_id=run_id).terminate(reason=reason)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # not found: it has closed meanwhile
                raise

    return terminate


def verification_submit_code(
    *, customer_id: uuid.UUID, code: str, idempotency_key: str | None = None
) -> SubmitCodeResult:
    """Let the workflow judge one code. A retry with the same key is answered, not recounted.

    A run that has ended answers with its final result; a cancelled one refuses
    VERIFICATION_ENDED, since it has no result to give. No run at all refuses NO_VERIFICATION,
    and no such customer raises CustomerNotFound.
    """
    workflow_id = workflow_id_for(str(customer_id))
    hashed = code_hash(workflow_id=workflow_id, code=code)
    # A retry (the same key, the same code) has the same update id, so Temporal answers it with
    # the first answer. The same key with another code has another id, and the run refuses it.
    update_id = (
        f"submit-{idempotency_key}-{hashed[:16]}" if idempotency_key else f"submit-{uuid.uuid4()}"
    )

    async def submit(client: Client) -> SubmitCodeResult:
        return await client.get_workflow_handle(workflow_id).execute_update(
            SUBMIT_CODE_UPDATE,
            SubmitCodeInput(code_hash=hashed, idempotency_key=idempotency_key or ""),
            id=update_id,
            result_type=SubmitCodeResult,
        )

    try:
        answer = _verification_update(submit)
    except _RunClosed:
        verification = _verification_closed(customer_id)
        if verification.is_pending:
            raise TemporalUnavailable("The verification is finishing; try again.") from None
        return _verification_final_answer(verification)
    if answer.result == VerificationResult.SUCCESS and not _customer_exists(customer_id):
        # A run its deleted customer left open (Temporal did not answer the delete's cancel):
        # its outcome had no row to go to, and "verified" would promise a read that finds none.
        raise CustomerNotFound
    return answer


def _customer_exists(customer_id: uuid.UUID) -> bool:
    return Customer.objects.filter(pk=customer_id).exists()


def verification_resend_code(
    *,
    customer_id: uuid.UUID,
    idempotency_key: str | None = None,
    channel: Channel | None = None,
) -> ResendCodeResult:
    """Ask the workflow for a new code, through `channel` if given; the old one stops working.

    A retry with the same key is answered, and sends nothing twice. Refuses NO_VERIFICATION,
    VERIFICATION_ENDED, RESEND_COOLDOWN (with `retry_after`), RESEND_LIMIT_REACHED,
    CHANNEL_NOT_OFFERED and PHONE_RATE_LIMITED; no such customer raises CustomerNotFound.
    """
    latest_run = Verification.objects.filter(customer=OuterRef("pk")).order_by("-started_at", "-id")
    contact = (
        Customer.objects.filter(pk=customer_id)
        .annotate(run_id=Subquery(latest_run.values("run_id")[:1]))
        .values_list("phone_number", "run_id")
        .first()
    )
    if contact is None:
        raise CustomerNotFound
    phone_number, run_id = contact
    workflow_id = workflow_id_for(str(customer_id))
    # As for a code: a retry is answered from the first time; another channel is refused.
    update_id = (
        f"resend-{idempotency_key}-{channel or 'current'}"
        if idempotency_key
        else f"resend-{uuid.uuid4()}"
    )
    # A retry is the same request to the same run: the same key anywhere else sends a text.
    request_key = f"{customer_id}:{run_id}:{update_id}"
    counted = limits.phone_limits_hit_send(phone_number=phone_number, request_key=request_key)

    def refund() -> None:
        if counted:
            limits.phone_limits_refund_send(phone_number=phone_number, request_key=request_key)

    async def resend(client: Client) -> ResendCodeResult:
        return await client.get_workflow_handle(workflow_id).execute_update(
            RESEND_CODE_UPDATE,
            ResendCodeInput(channel=channel, idempotency_key=idempotency_key or ""),
            id=update_id,
            result_type=ResendCodeResult,
        )

    try:
        return _verification_update(resend)
    except _RunClosed:
        refund()
        verification = _verification_closed(customer_id)
        state = None if verification.is_pending else VerificationState(verification.status)
        raise VerificationRefused(Refusal.VERIFICATION_ENDED, state=state) from None
    except VerificationRefused:
        refund()
        raise


def verification_cancel(*, customer: Customer, reason: str = "") -> CancelResult:
    """End the customer's pending verification as cancelled, through the workflow.

    Cancelling a run that has ended changes nothing and says so (`cancelled=False`).
    """
    try:
        return _verification_update(_verification_cancel_operation(customer.id, reason))
    except _RunClosed:
        verification = _verification_closed(customer.id)
        return CancelResult(cancelled=False, state=VerificationState(verification.status))


def verification_cancel_orphaned(*, customer_id: uuid.UUID, reason: str = "") -> bool:
    """End as cancelled, through its workflow, the open run of a customer deleted already; say
    whether there was one. Nothing is recorded: the customer's rows went with them."""
    try:
        return _verification_update(_verification_cancel_operation(customer_id, reason)).cancelled
    except _RunClosed:
        return False


def verification_abandon(*, customer_id: uuid.UUID) -> None:
    """End the run of a signup that failed before it was answered, without recording anything.

    For a signup without a request_id, which no retry can finish: the client signs up again as
    someone new. If the database keeps the customer and the run's row meanwhile, the reconciler
    records the row cancelled. Raises TemporalUnavailable.
    """
    gateway.call(
        _verification_terminate_operation(
            workflow_id_for(str(customer_id)), None, "Its signup failed before it was answered."
        )
    )


def verification_start_again(*, customer: Customer) -> tuple[VerificationView, bool]:
    """Start a new run once the last one has ended; return (its view, started).

    A run that is still pending is returned as it is, so a double submit starts one run. At most
    VERIFICATION_MAX_RUNS_PER_DAY runs, the first included, start in any 24 hours. Refuses
    ALREADY_VERIFIED, RUN_LIMIT_REACHED and PHONE_RATE_LIMITED.
    """
    if customer.phone_verified:
        raise VerificationRefused(Refusal.ALREADY_VERIFIED)
    current = verification_get_view(customer_id=customer.id)
    if current is not None and current.state == VerificationState.PENDING:
        if current.live:
            return current, False
        # Recorded as pending, yet no longer running: record how it really ended first.
        current = VerificationView.of_record(_verification_closed(customer.id))
    verification_run_limit_check(customer_id=customer.id)
    if current is not None:
        _verification_wait_closed(current.workflow_id, current.run_id)
    after_run_id = current.run_id if current is not None else None
    return verification_start(customer=customer, after_run_id=after_run_id), True


def verification_delivery_status_record(
    *, workflow_id: str, message_id: str, status: DeliveryStatus
) -> bool:
    """Pass a provider's delivery receipt to the run that sent the text.

    The run keeps it only if it is about its current code and moves the status on, so repeats
    and late arrivals are harmless. False, and a log line, when no such run is open any more.
    """
    if not workflow_id.startswith(WORKFLOW_ID_PREFIX):
        logger.warning("A delivery receipt named a workflow that is not ours: %r", workflow_id)
        return False

    async def signal(client: Client) -> None:
        await client.get_workflow_handle(workflow_id).signal(
            DELIVERY_STATUS_SIGNAL, DeliveryStatusInput(message_id=message_id, status=status)
        )

    try:
        gateway.call(signal)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        logger.info(
            "A delivery receipt (%s) came for a run that has ended or never was: %s",
            status,
            workflow_id,
            extra={"workflow_id": workflow_id},
        )
        return False
    return True


def _verification_cancel_operation(
    customer_id: uuid.UUID, reason: str
) -> Callable[[Client], Awaitable[CancelResult]]:
    workflow_id = workflow_id_for(str(customer_id))

    async def cancel(client: Client) -> CancelResult:
        return await client.get_workflow_handle(workflow_id).execute_update(
            CANCEL_UPDATE, CancelInput(reason=reason), result_type=CancelResult
        )

    return cancel


class _RunClosed(Exception):
    """No run of the workflow is open, so it takes no updates: the database has the rest."""


def _verification_update(operation: Callable[[Client], Awaitable[T]]) -> T:
    """Run an update through the gateway, turning Temporal's answers into ours.

    A rejected update becomes the VerificationRefused its validator named; a closed or missing
    run becomes _RunClosed. An update not answered in time, by a worker or by Temporal itself
    (the two look alike from here), becomes RequestNotAnswered: Temporal keeps an update it has
    taken until a worker comes back, so that one may still be carried out later.
    """
    try:
        return gateway.call(operation)
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise RequestNotAnswered(
            "Temporal or its worker did not answer the update in time."
        ) from exc
    except WorkflowUpdateFailedError as exc:
        raise _verification_refusal(exc) from exc
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise _RunClosed from exc
        raise


def _verification_refusal(exc: WorkflowUpdateFailedError) -> Exception:
    cause = exc.cause
    try:
        reason = Refusal(cause.type) if isinstance(cause, ApplicationError) else None
    except ValueError:
        reason = None
    if reason is None:
        return exc  # not a rule saying no: a bug, to be logged as one
    details = cause.details
    if reason is Refusal.RESEND_COOLDOWN:
        return VerificationRefused(reason, retry_after=int(details[0]) if details else 1)
    if reason is Refusal.VERIFICATION_ENDED and details:
        return VerificationRefused(reason, state=VerificationState(details[0]))
    return VerificationRefused(reason)


def _verification_closed(customer_id: uuid.UUID | str) -> Verification:
    """The customer's last run, which Temporal says is closed or never was; recorded if not yet.

    Raises CustomerNotFound, or refuses NO_VERIFICATION, when there is no run to speak of.
    """
    verification = verification_get_current(customer_id=customer_id)
    if verification is None:
        if not Customer.objects.filter(pk=customer_id).exists():
            raise CustomerNotFound
        raise VerificationRefused(Refusal.NO_VERIFICATION)
    return _verification_reconcile(verification)


def _verification_final_answer(verification: Verification) -> SubmitCodeResult:
    """What a code submitted after the run ended is answered: its final result, and the attempts
    it had left, as the run's own last answer said (from its outcome in Temporal; 0 once
    Temporal no longer has it). TemporalUnavailable if Temporal does not answer: a guess could
    tell a client more attempts are left than it was told before."""
    state = VerificationState(verification.status)
    result = FINAL_RESULTS.get(state)
    if result is None:
        raise VerificationRefused(Refusal.VERIFICATION_ENDED, state=state)

    async def outcome(client: Client) -> VerifyPhoneOutcome:
        handle = client.get_workflow_handle(
            verification.workflow_id, run_id=verification.run_id, result_type=VerifyPhoneOutcome
        )
        return await handle.result(follow_runs=False)

    try:
        remaining = gateway.call(outcome).attempts_remaining
    except WorkflowFailureError:  # timed out or terminated: no outcome, nor attempts to count
        remaining = None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        remaining = None  # gone past Temporal's retention
    return SubmitCodeResult(result=result, attempts_remaining=remaining or 0)


def _verification_reconcile(verification: Verification) -> Verification:
    """The row, once it records how its closed run really ended (see `reconciliation`)."""
    if not verification.is_pending:
        return verification

    async def reconcile(client: Client) -> Verification:
        return await verification_reconcile_run(client=client, verification=verification)

    return gateway.call(reconcile)


async def _verification_run_id(client: Client, workflow_id: str) -> str:
    """The id of the workflow's current run; TemporalUnavailable if it never started."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise TemporalUnavailable("Temporal did not start the verification in time.") from exc
        raise
    return description.run_id


def _verification_wait_closed(workflow_id: str, run_id: str) -> None:
    async def wait(client: Client) -> None:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        try:
            await handle.result()
        except WorkflowFailureError:
            pass  # terminated or timed out: closed all the same
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # not found: long gone from history
                raise

    gateway.call(wait, timeout=RUN_CLOSE_WAIT_SECONDS)
