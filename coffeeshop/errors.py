"""The three kinds of expected error every app raises, and nothing else.

`NotFound` is a thing that does not exist; `Refused` is a request the rules turn down;
`Unavailable` is a dependency that did not answer. Apps subclass them; `coffeeshop.web.api_errors`
turns each into the API's JSON error, and `coffeeshop.web.pages` turns `Unavailable` into the 503
page. No Django imports: the workflow's contract may name these too.
"""

from enum import StrEnum


class NotFound(Exception):
    """What the request names does not exist (404)."""


class Refused(Exception):
    """A request the rules refuse. `reason.value` is the API's `error.code`; str() is for people."""

    def __init__(
        self, reason: StrEnum, message: str, *, status: int, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after

    @property
    def code(self) -> str:
        return self.reason.value


class Unavailable(Exception):
    """A dependency did not answer in time; the same request may be retried.

    str() is for the log. Clients read `public_message` if the error has one, else a fixed
    sentence for its `code` (`coffeeshop.web.api_errors`).
    """

    code = "unavailable"
    retry_after = 30
    public_message: str | None = None


class DatabaseUnavailable(Unavailable):
    """The database did not answer (stopped, restarting, or unreachable)."""

    code = "database_unavailable"
    retry_after = 5
