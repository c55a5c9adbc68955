"""Log lines as JSON (LOG_FORMAT=json), carrying the ids of the run and customer they are about.

`JsonFormatter` writes one JSON object per line: time, level, logger, message, the exception if
any, and `workflow_id`, `run_id` and `customer_id` when known. It finds them, last wins, in:
the request's URL (`RequestLogContextMiddleware` keeps its `customer_id` while the view runs), the
Temporal activity running (`temporalio.activity.info()`), the `temporal_workflow` and
`temporal_activity` details the SDK's own loggers attach, the request a Django log line is about,
and the log call's `extra=`.

Phone numbers are masked in our messages already; any E.164 number that still reaches a line (in
a database error's text, say) is masked here too. Codes are never logged.
"""

import contextvars
import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from temporalio import activity

from coffeeshop.phones import phone_mask

ID_FIELDS = ("workflow_id", "run_id", "customer_id")
E164 = re.compile(r"\+[1-9]\d{6,14}\b")

_context: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "coffeeshop_log_context", default=None
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; see the module's docstring for its fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": _masked(record.getMessage()),
        }
        entry.update(log_ids(record))
        if record.exc_info:
            entry["exception"] = _masked(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def log_ids(record: logging.LogRecord) -> dict[str, str]:
    """The workflow, run and customer a record is about, as far as anything tells."""
    ids: dict[str, str] = dict(_context.get() or {})
    if activity.in_activity():
        info = activity.info()
        _learn(ids, workflow_id=info.workflow_id, run_id=info.workflow_run_id)
    for attribute in ("temporal_workflow", "temporal_activity"):
        details = getattr(record, attribute, None)
        if isinstance(details, Mapping):
            run_id = details.get("run_id") or details.get("workflow_run_id")
            _learn(ids, workflow_id=details.get("workflow_id"), run_id=run_id)
    # Django's own line about a request's answer is written after the middleware has finished.
    match = getattr(getattr(record, "request", None), "resolver_match", None)
    if match is not None:
        _learn(ids, customer_id=match.kwargs.get("customer_id"))
    _learn(ids, **{field: getattr(record, field, None) for field in ID_FIELDS})
    return {field: ids[field] for field in ID_FIELDS if field in ids}


def _learn(ids: dict[str, str], **values: object) -> None:
    ids.update({field: str(value) for field, value in values.items() if value})


class RequestLogContextMiddleware:
    """Give the log lines of a request for one customer (a `customer_id` in its URL) that id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _context.set(None)
        try:
            return self.get_response(request)
        finally:
            _context.reset(token)

    def process_view(self, request: HttpRequest, view, args, kwargs: dict) -> None:
        customer_id = kwargs.get("customer_id")
        if customer_id:
            _context.set({"customer_id": str(customer_id)})


def _masked(text: str) -> str:
    return E164.sub(lambda match: phone_mask(match.group()), text)
