"""Verification reads (web process): the current run from the database, the live status from
the workflow's query."""

from dataclasses import dataclass
from datetime import datetime

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from coffeeshop.temporal.client import TemporalUnavailable, gateway
from customers.models import Customer
from verification.contracts import STATUS_QUERY, VerificationState, VerificationStatus
from verification.models import Verification


@dataclass(frozen=True)
class VerificationView:
    """What a person or client sees of a verification, from the workflow or, once ended, the DB."""

    verification: Verification
    state: VerificationState
    attempts_remaining: int | None
    sends_remaining: int | None
    code_expires_at: datetime | None
    resend_available_at: datetime | None
    window_ends_at: datetime | None
    live: bool


def verification_get_current(*, customer: Customer) -> Verification | None:
    """The customer's most recent verification run, if any."""
    return Verification.objects.filter(customer=customer).order_by("-started_at", "-id").first()


def verification_get_view(*, customer: Customer) -> VerificationView | None:
    """The current verification as the workflow reports it; from the database once it has ended.

    Raises TemporalUnavailable when a pending run's workflow cannot be queried in time.
    """
    verification = verification_get_current(customer=customer)
    if verification is None:
        return None
    if verification.is_pending:
        status = _verification_query_status(verification)
        if status is not None:
            return VerificationView(
                verification=verification,
                state=status.state,
                attempts_remaining=status.attempts_remaining,
                sends_remaining=status.sends_remaining,
                code_expires_at=status.code_expires_at,
                resend_available_at=status.resend_available_at,
                window_ends_at=status.window_ends_at,
                live=True,
            )
        verification.refresh_from_db()
    return VerificationView(
        verification=verification,
        state=VerificationState(verification.status),
        attempts_remaining=None,
        sends_remaining=None,
        code_expires_at=None,
        resend_available_at=None,
        window_ends_at=None,
        live=False,
    )


def _verification_query_status(verification: Verification) -> VerificationStatus | None:
    async def query(client: Client) -> VerificationStatus | None:
        handle = client.get_workflow_handle(verification.workflow_id, run_id=verification.run_id)
        try:
            return await handle.query(STATUS_QUERY, result_type=VerificationStatus)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise TemporalUnavailable(f"The workflow could not be queried: {exc.message}") from exc
        except WorkflowQueryFailedError as exc:
            # A workflow task failing (a bad deploy, say) makes queries fail until it is fixed.
            raise TemporalUnavailable("The workflow cannot answer right now.") from exc

    return gateway.call(query)
