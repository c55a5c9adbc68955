"""Reconciliation: make rows that say pending agree with runs that have closed.

A run writes its own outcome before it closes. A row can still say pending for a run that has
closed when the run was terminated (from the Temporal UI, say), hit its execution timeout, or
vanished from Temporal's retention. Three callers reconcile, all through these functions: the
worker's scheduled `ReconcileVerificationsWorkflow` (every VERIFICATION_RECONCILE_INTERVAL), the
`reconcile_verifications` command (once, by hand), and the web tier when a submit finds its
run closed. Async, on the caller's Temporal client; the ORM runs in a thread.
"""

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from verification.contracts import VerificationState, VerifyPhoneOutcome
from verification.models import Verification
from verification.records import verification_record_outcome

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# How a run that closed without recording its outcome is recorded.
CLOSED_RUN_STATES = {
    WorkflowExecutionStatus.TERMINATED: VerificationState.CANCELLED,
    WorkflowExecutionStatus.CANCELED: VerificationState.CANCELLED,
    WorkflowExecutionStatus.TIMED_OUT: VerificationState.EXPIRED,
    WorkflowExecutionStatus.FAILED: VerificationState.FAILED,
}
# Younger pending rows belong to runs that are almost surely still running: not worth a call.
SETTLE_TIME = timedelta(seconds=10)
BATCH_SIZE = 200


async def verification_reconcile_run(*, client: Client, verification: Verification) -> Verification:
    """Record how the row's run really ended, if it has; return the row as it now stands."""
    if not verification.is_pending:
        return verification
    handle = client.get_workflow_handle(
        verification.workflow_id, run_id=verification.run_id, result_type=VerifyPhoneOutcome
    )
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        # Gone past retention. It never verified (that is written before a run closes).
        state, finished_at = VerificationState.EXPIRED, timezone.now()
    else:
        finished_at = description.close_time or timezone.now()
        if description.status == WorkflowExecutionStatus.RUNNING:
            return verification
        if description.status == WorkflowExecutionStatus.COMPLETED:
            outcome = await handle.result(follow_runs=False)
            state = outcome.state
        else:
            state = CLOSED_RUN_STATES.get(description.status, VerificationState.CANCELLED)
    await _in_thread(verification_record_outcome)(
        customer_id=verification.customer_id,
        workflow_id=verification.workflow_id,
        run_id=verification.run_id,
        state=state,
        finished_at=finished_at,
    )
    logger.info("Reconciled run %s of %s: %s", verification.run_id, verification.workflow_id, state)
    await _in_thread(verification.refresh_from_db)()
    return verification


async def verifications_reconcile(*, client: Client, settle_time: timedelta = SETTLE_TIME) -> int:
    """Reconcile one batch of pending rows older than `settle_time`; return how many changed.

    Rows never checked come first, then the ones checked longest ago, so a pass moves on past
    runs still running however many there are: every row is reached within a few passes.
    """
    pending = await _in_thread(_pending_rows)(settle_time)
    changed, running = 0, []
    for verification in pending:
        if (await verification_reconcile_run(client=client, verification=verification)).is_pending:
            running.append(verification.pk)
        else:
            changed += 1
    await _in_thread(_mark_checked)(running)
    return changed


def _pending_rows(settle_time: timedelta) -> list[Verification]:
    settled = timezone.now() - settle_time
    rows = Verification.objects.filter(status=Verification.Status.PENDING, started_at__lt=settled)
    order = (F("checked_at").asc(nulls_first=True), "started_at")
    return list(rows.order_by(*order)[:BATCH_SIZE])


def _mark_checked(pks: list[int]) -> None:
    Verification.objects.filter(pk__in=pks).update(checked_at=timezone.now())


def _in_thread(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`fn` run on a thread, with stale database connections dropped before and after."""

    @functools.wraps(fn)
    def fresh(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(fresh, thread_sensitive=False)
