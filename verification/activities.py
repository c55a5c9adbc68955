"""The activities (worker process): thin wrappers around `worker_services`, `records` and
`reconciliation`. The synchronous ones run in the worker's thread pool; all carry ids rather than
model instances, and are safe to retry."""

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from django.db import close_old_connections, connections
from temporalio import activity
from temporalio.exceptions import ApplicationError

from customers.errors import CustomerNotFound
from verification import records, worker_services
from verification.channels import ChannelUnusable, Undeliverable
from verification.contracts import (
    CHANNEL_UNUSABLE_ERROR,
    CUSTOMER_NOT_FOUND_ERROR,
    RECONCILE_ACTIVITY,
    RECORD_OUTCOME_ACTIVITY,
    SEND_CODE_ACTIVITY,
    SMS_UNDELIVERABLE_ERROR,
    ReconcileInput,
    ReconcileResult,
    RecordOutcomeInput,
    SendCodeInput,
    SendCodeResult,
)
from verification.reconciliation import verifications_reconcile

logger = logging.getLogger(__name__)

CODES_SENT_METRIC = "coffeeshop_verification_codes_sent"

P = ParamSpec("P")
R = TypeVar("R")


def _fresh_connections(fn: Callable[P, R]) -> Callable[P, R]:
    """Drop stale or broken DB connections before and after, as Django does around requests;
    after any exception, roll back and drop this thread's connections, so a retry starts clean."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            close_old_connections()
            result = fn(*args, **kwargs)
        except BaseException:
            # The worker cancels a timed-out activity by raising in its thread, wherever it is:
            # even between SQLite's BEGIN IMMEDIATE and Django noting the transaction, which
            # leaves a connection holding the write lock that close_old_connections would keep.
            with activity.shield_thread_cancel_exception():
                _connections_discard()
            raise
        with activity.shield_thread_cancel_exception():
            close_old_connections()
        return result

    return wrapper


def _connections_discard() -> None:
    """Close this thread's connections, rolling back whatever they had open, and forget them:
    the next query opens a new one, free of any half-updated transaction state."""
    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except Exception:
            logger.warning("Closing a database connection failed", exc_info=True)
        finally:
            del connections[connection.alias]


@activity.defn(name=SEND_CODE_ACTIVITY)
@_fresh_connections
def send_verification_code(input: SendCodeInput) -> SendCodeResult:
    try:
        result = worker_services.verification_send_code(
            customer_id=input.customer_id,
            workflow_id=input.workflow_id,
            run_id=input.run_id,
            ttl_seconds=input.ttl_seconds,
            channel=input.channel,
            send_number=input.send_number,
            run_started_at=input.run_started_at,
        )
    except CustomerNotFound as exc:
        raise ApplicationError(
            "The customer no longer exists.", type=CUSTOMER_NOT_FOUND_ERROR, non_retryable=True
        ) from exc
    except ChannelUnusable as exc:
        raise ApplicationError(
            f"The customer cannot be reached by {input.channel}.",
            type=CHANNEL_UNUSABLE_ERROR,
            non_retryable=True,
        ) from exc
    except Undeliverable as exc:
        raise ApplicationError(
            f"The provider will never reach this customer by {input.channel}.",
            exc.reason.value,
            type=SMS_UNDELIVERABLE_ERROR,
            non_retryable=True,
        ) from exc
    # On the worker's Prometheus endpoint, beside the SDK's own metrics.
    activity.metric_meter().create_counter(
        CODES_SENT_METRIC, "Verification codes handed to a provider, by channel."
    ).add(1, {"channel": str(input.channel)})
    return result


@activity.defn(name=RECORD_OUTCOME_ACTIVITY)
@_fresh_connections
def record_verification_outcome(input: RecordOutcomeInput) -> None:
    records.verification_record_outcome(
        customer_id=input.customer_id,
        workflow_id=input.workflow_id,
        run_id=input.run_id,
        state=input.state,
        finished_at=input.finished_at,
        reason=input.reason,
        channel=input.channel.value if input.channel else "",
    )


@activity.defn(name=RECONCILE_ACTIVITY)
async def reconcile_verifications(input: ReconcileInput) -> ReconcileResult:
    # Async, unlike the others: it asks Temporal about runs through the worker's own client.
    reconciled = await verifications_reconcile(
        client=activity.client(), settle_time=timedelta(seconds=input.settle_seconds)
    )
    return ReconcileResult(reconciled=reconciled)


ACTIVITIES = [send_verification_code, record_verification_outcome, reconcile_verifications]
