"""Verification's numbers on the web process's /metrics (`coffeeshop.web.metrics`).

The runs by status are counted in the database at each scrape, in one GROUP BY: the worker writes
the outcomes, so no web process could count them itself, and the table is right across processes
and restarts. They are gauges, not counters, because deleting a customer deletes their runs:
read them with `delta()` or `deriv()`, never `rate()`. Delivery receipts are counted here, as the
provider's status callback reports them, texts and calls apart. The codes sent are counted by the
worker (`coffeeshop_verification_codes_sent`, by channel, on its own metrics endpoint).
"""

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from django.db.models import Count
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric

from coffeeshop.web.metrics import REGISTRY
from verification.contracts import DeliveryStatus
from verification.models import Verification

logger = logging.getLogger(__name__)

SMS_DELIVERY_RECEIPTS = Counter(
    "coffeeshop_sms_delivery_receipts",
    "Delivery receipts from the SMS provider, by the status they report.",
    ["status"],
    registry=REGISTRY,
)
for _status in DeliveryStatus:  # every status from zero, so ratios have series to divide from
    SMS_DELIVERY_RECEIPTS.labels(_status.value)


CALL_DELIVERY_RECEIPTS = Counter(
    "coffeeshop_call_delivery_receipts",
    "Progress reports on voice calls from the provider, by the delivery status they map to.",
    ["status"],
    registry=REGISTRY,
)
for _status in DeliveryStatus:
    CALL_DELIVERY_RECEIPTS.labels(_status.value)


def sms_delivery_status_observe(status: DeliveryStatus) -> None:
    """Count one delivery receipt, as the provider's status callback reported it."""
    SMS_DELIVERY_RECEIPTS.labels(status.value).inc()


def call_delivery_status_observe(status: DeliveryStatus) -> None:
    """Count one call's status report, as the delivery status it maps to."""
    CALL_DELIVERY_RECEIPTS.labels(status.value).inc()


class VerificationCollector:
    """The runs recorded in the database: all of them, and by status. One query per scrape.

    While the database does not answer, the scrape still succeeds, with
    `coffeeshop_verifications_collected 0` and no counts.
    """

    def collect(self) -> Iterator[Metric]:
        try:
            rows = Verification.objects.order_by().values("status").annotate(runs=Count("pk"))
            counts = {row["status"]: row["runs"] for row in rows}
        except DatabaseError as exc:
            logger.warning("Could not count the verifications for /metrics: %s", exc)
            yield _collected(False)
            return
        yield _collected(True)
        yield GaugeMetricFamily(
            "coffeeshop_verifications_started",
            "Verification runs started, as rows in the database (rows go with a deleted customer).",
            value=sum(counts.values()),
        )
        by_status = GaugeMetricFamily(
            "coffeeshop_verifications",
            "Verification runs in the database, by status: pending, or how the run ended.",
            labels=["status"],
        )
        for status in Verification.Status.values:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status


def _collected(ok: bool) -> Metric:
    return GaugeMetricFamily(
        "coffeeshop_verifications_collected",
        "1 when this scrape could count the verifications in the database, else 0.",
        value=1 if ok else 0,
    )
