"""Verification reads (web process): the live status from the workflow, the ended runs from the
database.

A running verification is read from its workflow alone, found by the id derived from the
customer's id: no database query. Only a run that has closed is read from its row.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.common import QueryRejectCondition
from temporalio.service import RPCError, RPCStatusCode

from coffeeshop.temporal.client import TemporalUnavailable, gateway
from verification.contracts import (
    STATUS_QUERY,
    Channel,
    DeliveryStatus,
    Refusal,
    SendRecord,
    VerificationState,
    VerificationStatus,
    workflow_id_for,
)
from verification.errors import VerificationRefused
from verification.models import Verification

# "Start again" starts at most VERIFICATION_MAX_RUNS_PER_DAY runs in any such period.
RUN_LIMIT_PERIOD = timedelta(days=1)


@dataclass(frozen=True)
class VerificationView:
    """What a person or client sees of a verification: live from its workflow while it runs,
    from the database once it has ended."""

    workflow_id: str
    run_id: str
    state: VerificationState
    started_at: datetime | None
    finished_at: datetime | None
    attempts_remaining: int | None
    sends_remaining: int | None
    code_expires_at: datetime | None
    resend_available_at: datetime | None
    window_ends_at: datetime | None
    live: bool
    delivery_status: DeliveryStatus | None = None
    end_reason: str = ""
    channel: Channel | None = None
    sends: tuple[SendRecord, ...] = ()
    next_channel: Channel | None = None
    next_channel_at: datetime | None = None
    channels: tuple[Channel, ...] = ()  # a resend may ask for these
    # The channel that failed for good, and why, when the code before it was kept working.
    fallback_channel: Channel | None = None
    fallback_reason: str = ""

    @classmethod
    def of_status(cls, workflow_id: str, status: VerificationStatus) -> "VerificationView":
        """The view of a running workflow's answer."""
        return cls(
            workflow_id=workflow_id,
            run_id=status.run_id,
            state=status.state,
            started_at=status.started_at,
            finished_at=None,
            attempts_remaining=status.attempts_remaining,
            sends_remaining=status.sends_remaining,
            code_expires_at=status.code_expires_at,
            resend_available_at=status.resend_available_at,
            window_ends_at=status.window_ends_at,
            live=True,
            delivery_status=status.delivery_status,
            end_reason=status.end_reason,
            channel=status.channel,
            sends=tuple(status.sends),
            next_channel=status.next_channel,
            next_channel_at=status.next_channel_at,
            channels=tuple(status.channels),
            fallback_channel=status.fallback_channel,
            fallback_reason=status.fallback_reason,
        )

    @classmethod
    def of_record(cls, verification: Verification) -> "VerificationView":
        """The view of a run as its row records it."""
        return cls(
            workflow_id=verification.workflow_id,
            run_id=verification.run_id,
            state=VerificationState(verification.status),
            started_at=verification.started_at,
            finished_at=verification.finished_at,
            attempts_remaining=None,
            sends_remaining=None,
            code_expires_at=None,
            resend_available_at=None,
            window_ends_at=None,
            live=False,
            end_reason=verification.end_reason,
            channel=Channel(verification.channel) if verification.channel else None,
        )


def verification_get_current(*, customer_id: uuid.UUID | str) -> Verification | None:
    """The customer's most recent run as the database records it, if any."""
    return (
        Verification.objects.filter(customer_id=customer_id).order_by("-started_at", "-id").first()
    )


def verification_get_view(
    *, customer_id: uuid.UUID | str, timeout: float | None = None
) -> VerificationView | None:
    """The customer's current verification: live from a running workflow, else from its row.

    None when no verification has started (or the customer does not exist). Raises
    TemporalUnavailable when Temporal, or a worker for a running workflow, does not answer
    within `timeout` (TEMPORAL_REQUEST_TIMEOUT by default).
    """
    workflow_id = workflow_id_for(str(customer_id))

    async def query(client: Client) -> VerificationStatus | None:
        handle = client.get_workflow_handle(workflow_id)
        try:
            # A closed run is refused by the server at once, with no worker involved.
            return await handle.query(
                STATUS_QUERY,
                result_type=VerificationStatus,
                reject_condition=QueryRejectCondition.NOT_OPEN,
            )
        except WorkflowQueryRejectedError:
            return None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise TemporalUnavailable(f"The workflow could not be queried: {exc.message}") from exc
        except WorkflowQueryFailedError as exc:
            # A workflow task failing (a bad deploy, say) makes queries fail until it is fixed.
            raise TemporalUnavailable("The workflow cannot answer right now.") from exc

    status = gateway.call(query, timeout=timeout)
    if status is not None:
        return VerificationView.of_status(workflow_id, status)
    verification = verification_get_current(customer_id=customer_id)
    return None if verification is None else VerificationView.of_record(verification)


def verification_run_limit_check(*, customer_id: uuid.UUID | str) -> None:
    """Refuse RUN_LIMIT_REACHED, with when it lifts, if the customer may start no run now.

    At most VERIFICATION_MAX_RUNS_PER_DAY runs, the first included, start in any 24 hours. Read
    only: "Start again" checks it before it starts a run, and pages before they offer one.
    """
    limit = max(1, settings.VERIFICATION_MAX_RUNS_PER_DAY)  # the first run always counts
    recent = list(
        Verification.objects.filter(
            customer_id=customer_id, started_at__gt=timezone.now() - RUN_LIMIT_PERIOD
        )
        .order_by("started_at")
        .values_list("started_at", flat=True)
    )
    if len(recent) >= limit:
        retry_at = recent[len(recent) - limit] + RUN_LIMIT_PERIOD
        raise VerificationRefused(
            Refusal.RUN_LIMIT_REACHED,
            limit=limit,
            retry_at=retry_at,
            retry_after=max(1, int((retry_at - timezone.now()).total_seconds())),
        )
