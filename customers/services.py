"""Customer writes (web process). Signing up creates a customer and starts their verification."""

import logging
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, InterfaceError, OperationalError, transaction

from coffeeshop.errors import Unavailable
from customers.errors import CustomerRefusal, CustomerRefused
from customers.models import Customer
from verification.errors import VerificationRefused
from verification.selectors import (
    VerificationView,
    verification_get_current,
    verification_get_view,
)
from verification.services import verification_abandon, verification_start

logger = logging.getLogger(__name__)

# A repeated signup shows the live verification if Temporal answers this fast, else the row.
REPLAY_STATUS_TIMEOUT = 2.0


@dataclass(frozen=True)
class SignUp:
    """A signup's outcome: the customer, whether this call created them, and their verification
    as it stands (the first code on its way, with its expiry once sent)."""

    customer: Customer
    created: bool
    verification: VerificationView | None


def customer_sign_up(
    *,
    first_name: str,
    last_name: str,
    email: str,
    phone_number: str,
    request_id: str | None = None,
    customer_id: uuid.UUID | None = None,
) -> SignUp:
    """Create a customer, start their phone verification, and answer once the code is sent.

    With a request_id the call is idempotent: the same request again returns the same customer
    and finishes anything a failed first try left undone (such as starting the workflow), while a
    different payload is refused REQUEST_ID_CONFLICT (and a client-chosen id in use, ID_TAKEN).
    Without one, a failure to start the verification leaves nothing behind, so the client may
    simply try again. A refusal leaves nothing behind either way, so the corrected request may
    use the same request_id. `phone_number` must be E.164 already.
    """
    fields = {
        "first_name": first_name,
        "last_name": last_name,
        "email": email,
        "phone_number": phone_number,
    }
    if request_id:
        existing = Customer.objects.filter(request_id=request_id).first()
        if existing is not None:
            return _customer_replay(existing, fields, customer_id)
    try:
        with transaction.atomic():
            customer = Customer(id=customer_id or uuid.uuid4(), request_id=request_id, **fields)
            customer.full_clean(validate_unique=False)
            customer.save(force_insert=True)
    except IntegrityError:
        existing = Customer.objects.filter(request_id=request_id).first() if request_id else None
        if existing is None:
            raise CustomerRefused(CustomerRefusal.ID_TAKEN) from None
        return _customer_replay(existing, fields, customer_id)
    try:
        # With a request_id the retry finishes this start, so what it counted stands for it.
        verification = verification_start(customer=customer, refund_on_outage=not request_id)
    except VerificationRefused:
        customer.delete()
        raise
    except Unavailable:
        if not request_id:
            customer.delete()  # a run that started meanwhile finds no customer, and ends
        raise
    except (OperationalError, InterfaceError):
        if not request_id:
            _customer_discard(customer)
        raise
    return SignUp(customer=customer, created=True, verification=verification)


def _customer_discard(customer: Customer) -> None:
    """Undo a signup the database failed in the middle of: its run ends, then its rows go.

    Each step is tried whatever the other did. What the outage keeps is consistent: a customer
    whose run ended, and whose row the reconciler records cancelled.
    """
    try:
        verification_abandon(customer_id=customer.id)
    except Unavailable:
        logger.warning("The failed signup's run could not be ended.", exc_info=True)
    try:
        customer.delete()
    except (OperationalError, InterfaceError):
        logger.warning("The failed signup's customer could not be deleted.", exc_info=True)


def _customer_replay(customer: Customer, fields: dict, customer_id: uuid.UUID | None) -> SignUp:
    same = all(getattr(customer, name) == value for name, value in fields.items())
    if not same or (customer_id is not None and customer_id != customer.id):
        raise CustomerRefused(CustomerRefusal.REQUEST_ID_CONFLICT)
    recorded = verification_get_current(customer_id=customer.id)
    if recorded is None:  # the first try stopped before the verification started
        try:
            verification = verification_start(customer=customer, refund_on_outage=False)
        except VerificationRefused:
            customer.delete()  # refused: nothing of the request is kept
            raise
    else:
        try:
            verification = verification_get_view(
                customer_id=customer.id, timeout=REPLAY_STATUS_TIMEOUT
            )
        except Unavailable:  # the answer can do without the live figures
            verification = VerificationView.of_record(recorded)
    return SignUp(customer=customer, created=False, verification=verification)
