"""Customer writes (web process). Signing up creates a customer and starts their verification."""

import uuid

from django.db import IntegrityError, transaction

from coffeeshop.errors import Unavailable
from customers.errors import CustomerRefusal, CustomerRefused
from customers.models import Customer
from verification.errors import VerificationRefused
from verification.selectors import verification_get_current
from verification.services import verification_start


def customer_sign_up(
    *,
    first_name: str,
    last_name: str,
    email: str,
    phone_number: str,
    request_id: str | None = None,
    customer_id: uuid.UUID | None = None,
) -> tuple[Customer, bool]:
    """Create a customer and start their phone verification; return (customer, created).

    With a request_id the call is idempotent: the same request again returns the same customer
    and finishes anything a failed first try left undone (such as starting the workflow), while a
    different payload is refused REQUEST_ID_CONFLICT (and a client-chosen id in use, ID_TAKEN).
    Without one, a failure to start the verification leaves nothing behind, so the client may
    simply try again. `phone_number` must be E.164 already.
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
            return _customer_replay(existing, fields, customer_id), False
    try:
        with transaction.atomic():
            customer = Customer(id=customer_id or uuid.uuid4(), request_id=request_id, **fields)
            customer.full_clean(validate_unique=False)
            customer.save(force_insert=True)
    except IntegrityError:
        existing = Customer.objects.filter(request_id=request_id).first() if request_id else None
        if existing is None:
            raise CustomerRefused(CustomerRefusal.ID_TAKEN) from None
        return _customer_replay(existing, fields, customer_id), False
    try:
        verification_start(customer=customer)
    except (Unavailable, VerificationRefused):
        if not request_id:
            customer.delete()
        raise
    return customer, True


def _customer_replay(customer: Customer, fields: dict, customer_id: uuid.UUID | None) -> Customer:
    same = all(getattr(customer, name) == value for name, value in fields.items())
    if not same or (customer_id is not None and customer_id != customer.id):
        raise CustomerRefused(CustomerRefusal.REQUEST_ID_CONFLICT)
    if verification_get_current(customer=customer) is None:
        verification_start(customer=customer)
    return customer
