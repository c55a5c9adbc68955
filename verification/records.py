"""The Verification rows: the database's record of each run. ORM only, no Temporal calls.

Two processes write here and nowhere else: the web process records a run it started, and the
worker records how each run ended (or, when a run closed without saying so, whoever reconciles
it). Both writes are idempotent, so a retry after any crash changes nothing twice.
"""

import uuid
from datetime import datetime

from django.db import IntegrityError, transaction

from customers.models import Customer
from verification.contracts import VerificationState
from verification.models import Verification


def verification_record_started(
    *,
    customer_id: uuid.UUID | str,
    workflow_id: str,
    run_id: str,
    started_at: datetime | None = None,
) -> Verification:
    """The row for a run that has just started; the existing one if it is recorded already.

    Both the web process (after starting the run) and the run's first send (in the worker)
    record it, so a signup that fails between the two still leaves a complete record.
    `started_at` is the run's start by Temporal's clock, as its live status shows it; without
    it, now.
    """
    defaults = {"customer_id": customer_id, "workflow_id": workflow_id}
    if started_at is not None:
        defaults["started_at"] = started_at
    try:
        with transaction.atomic():
            verification, _ = Verification.objects.get_or_create(run_id=run_id, defaults=defaults)
    except IntegrityError:  # recorded by the other process at the same moment
        verification = Verification.objects.get(run_id=run_id)
    return verification


def verification_record_outcome(
    *,
    customer_id: uuid.UUID | str,
    workflow_id: str,
    run_id: str,
    state: VerificationState,
    finished_at: datetime,
    reason: str = "",
    channel: str = "",
) -> None:
    """Write how a run ended, and mark the phone verified if it did. Idempotent."""
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
        if customer is None:
            return  # deleted while verifying; nothing left to record
        verification, _ = Verification.objects.get_or_create(
            run_id=run_id, defaults={"customer": customer, "workflow_id": workflow_id}
        )
        if verification.status != state or verification.finished_at is None:
            verification.status = state
            # The workflow's clock can be a moment behind the row's start, which the first send
            # wrote with the worker's own clock as it ran.
            verification.finished_at = max(finished_at, verification.started_at or finished_at)
            verification.end_reason = reason
            verification.channel = channel or verification.channel
            verification.save(update_fields=["status", "finished_at", "end_reason", "channel"])
        if state == VerificationState.VERIFIED and not customer.phone_verified:
            customer.phone_verified = True
            customer.verified_at = verification.finished_at
            customer.save(update_fields=["phone_verified", "verified_at", "updated_at"])
