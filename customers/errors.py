"""Customers' errors, and their words: no such customer, or a signup that conflicts with an
earlier one."""

from enum import StrEnum

from coffeeshop.errors import NotFound, Refused


class CustomerNotFound(NotFound):
    """No customer has this id."""

    message = "No such customer."

    def __init__(self) -> None:
        super().__init__(self.message)


class CustomerRefusal(StrEnum):
    """Why a signup is refused; the value is the API's `error.code`."""

    REQUEST_ID_CONFLICT = "request_id_conflict"
    ID_TAKEN = "id_taken"


MESSAGES = {
    CustomerRefusal.REQUEST_ID_CONFLICT: "This request_id was already used with a different "
    "customer.",
    CustomerRefusal.ID_TAKEN: "A customer with this id already exists.",
}


class CustomerRefused(Refused):
    """A signup the rules refuse (409)."""

    reason: CustomerRefusal

    def __init__(self, reason: CustomerRefusal) -> None:
        super().__init__(reason, MESSAGES[reason], status=409)
