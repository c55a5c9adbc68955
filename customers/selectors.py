"""Customer reads."""

import uuid
from collections.abc import Sequence

from customers.errors import CustomerNotFound
from customers.models import Customer


def customer_get(*, customer_id: uuid.UUID) -> Customer:
    """The customer with this id; CustomerNotFound if there is none."""
    try:
        return Customer.objects.get(pk=customer_id)
    except Customer.DoesNotExist:
        raise CustomerNotFound from None


def customer_list_by_ids(
    *, customer_ids: Sequence[uuid.UUID], page_size: int, page_index: int
) -> tuple[list[Customer], bool]:
    """One page of the given customers, oldest first; and whether another page follows."""
    start = page_size * page_index
    rows = list(
        Customer.objects.filter(pk__in=customer_ids).order_by("created_at", "id")[
            start : start + page_size + 1
        ]
    )
    return rows[:page_size], len(rows) > page_size
