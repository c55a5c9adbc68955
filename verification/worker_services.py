"""What the worker's activities do (worker process): make a code and send it through a channel.

`activities.py` wraps these thinly; the database rows are written by `records.py`. Nothing here
calls Temporal, and nothing in the web process imports this module.
"""

import logging
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from coffeeshop.emails import email_mask
from coffeeshop.phones import phone_mask
from customers.errors import CustomerNotFound
from customers.models import Customer
from verification.channels import CodeDelivery, channel_send
from verification.codes import code_generate, code_hash
from verification.contracts import Channel, SendCodeResult
from verification.records import verification_record_started

logger = logging.getLogger(__name__)


def verification_send_code(
    *,
    customer_id: str,
    workflow_id: str,
    run_id: str,
    ttl_seconds: int,
    channel: Channel = Channel.SMS,
    send_number: int = 0,
    run_started_at: datetime | None = None,
) -> SendCodeResult:
    """Make a code, send it to the customer through `channel` alone, and return only its hash
    and expiry.

    The run is recorded first if the web process has not recorded it yet. Raises
    `channels.ChannelUnusable` when the customer has no address on that channel, and
    `channels.Undeliverable` when the provider will never reach them on it.
    """
    contact = Customer.objects.filter(pk=customer_id).values_list("phone_number", "email").first()
    if contact is None:
        raise CustomerNotFound  # deleted: no code can be sent
    phone_number, email = contact
    if run_id:
        verification_record_started(
            customer_id=customer_id,
            workflow_id=workflow_id,
            run_id=run_id,
            started_at=run_started_at,
        )
    # The same send, run again after a crash, sends the same code under the same key. Runs begun
    # before sends were numbered ask with send_number 0, and get a fresh code on each attempt.
    send_key = f"{workflow_id}:{run_id}:{send_number}:{channel}" if send_number else ""
    code = code_generate(send_key)
    expires_at = timezone.now() + timedelta(seconds=ttl_seconds)
    message_id = channel_send(
        channel,
        CodeDelivery(
            phone_number=phone_number,
            email=email,
            code=code,
            ttl_seconds=ttl_seconds,
            idempotency_key=send_key or f"{workflow_id}:{expires_at.isoformat()}",
            status_callback=delivery_callback_url(workflow_id),
        ),
    )
    recipient = email_mask(email) if channel == Channel.EMAIL else phone_mask(phone_number)
    logger.info(
        "Sent a verification code by %s to %s",
        channel,
        recipient,
        extra={"workflow_id": workflow_id, "customer_id": customer_id},
    )
    return SendCodeResult(
        code_hash=code_hash(workflow_id=workflow_id, code=code),
        expires_at=expires_at,
        message_id=message_id or "",
    )


def delivery_callback_url(workflow_id: str) -> str | None:
    """Where the provider posts this run's delivery receipts; None without PUBLIC_BASE_URL.

    The run's id rides in the query string, which the provider signs with the rest of the URL.
    """
    if not settings.PUBLIC_BASE_URL:
        return None
    path = reverse("verification:api-delivery-status")
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}{path}?{urlencode({'workflow': workflow_id})}"
